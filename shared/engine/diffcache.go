package engine

import (
	"sync"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// diffCacheBudget bounds the page bytes of the diffs a document keeps for
// sharing once computed. A larger diff is still shared by the calls that
// wait for it while it is computed.
const diffCacheBudget = 32 << 20

// diffCache lets the receivers at one LSN share one computed diff: a call
// for the diff from LSN from, made when the newest LSN is to, takes the
// diff another call for (from, to) has computed or is computing. Bases
// depend on (from, to) alone, so the whole diff is shared; callers must not
// change it. Only diffs to the newest LSN are kept: each commit drops the
// older ones, so at most one diff per distinct from is kept.
type diffCache struct {
	mu       sync.Mutex
	newest   uint64 // the LSN of the last commit seen
	bytes    int    // page bytes of the finished diffs in calls
	calls    map[diffKey]*diffCall
	computed int // diffs computed, for tests
}

type diffKey struct{ from, to uint64 }

// diffCall is one diff computation; done closes when d and err are set.
type diffCall struct {
	done chan struct{}
	d    Diff
	err  error
	kept int // page bytes counted in diffCache.bytes, once finished and kept
}

// get returns the diff from from for a caller that saw the newest LSN at
// to, computing it with compute unless another call has or is.
func (c *diffCache) get(from, to uint64, compute func() (Diff, error)) (Diff, error) {
	k := diffKey{from, to}
	c.mu.Lock()
	if call, ok := c.calls[k]; ok {
		c.mu.Unlock()
		<-call.done
		return call.d, call.err
	}
	call := &diffCall{done: make(chan struct{})}
	if c.calls == nil {
		c.calls = map[diffKey]*diffCall{}
	}
	c.calls[k] = call
	c.computed++
	c.mu.Unlock()

	call.d, call.err = compute()
	close(call.done)

	size := len(call.d.Pages) * vfs.PageSize
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls[k] != call {
		return call.d, call.err // dropped by a commit meanwhile
	}
	if call.err != nil || to < c.newest || c.bytes+size > diffCacheBudget {
		delete(c.calls, k)
	} else {
		call.kept = size
		c.bytes += size
	}
	return call.d, call.err
}

// committed drops the diffs to LSNs older than lsn, the LSN of a commit:
// no caller asks for them again.
func (c *diffCache) committed(lsn uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.newest = max(c.newest, lsn)
	for k, call := range c.calls {
		if k.to < lsn {
			c.bytes -= call.kept
			delete(c.calls, k)
		}
	}
}
