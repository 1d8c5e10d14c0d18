package server

import (
	"fmt"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
)

// Bounds of the diffs a document keeps once prepared (see diffCache): at
// most diffCacheFroms of them, all to its newest LSN, and at most
// diffCacheBudget encoded bytes among them. The deflated copies gorilla
// adds when the diffs are sent are smaller than that again, as a rule.
const (
	diffCacheFroms  = 8
	diffCacheBudget = 8 << 20
)

// diffCache lets the connections of one document that are at the same LSN
// share one prepared diff: computed, split into frames, encoded and, through
// websocket.PreparedMessage, deflated once per compression setting rather
// than once per connection. gorilla negotiates permessage-deflate without
// context takeover, so each message is compressed on its own and the same
// frame deflates to the same bytes for every connection.
//
// A diff is keyed by (from, to): the client's LSN and the document's LSN
// when the connection asked. The first connection to ask prepares it; the
// others asking meanwhile wait for it (single flight). Once prepared it is
// kept only while to is the newest LSN asked for, within diffCacheFroms
// and diffCacheBudget: the first ask for a newer LSN drops the rest, so
// the cache holds one generation, which the next commit replaces. A diff
// not kept is still shared by the connections that waited for it.
//
// The zero diffCache is ready to use.
type diffCache struct {
	mu       sync.Mutex
	newest   uint64 // the greatest to asked for
	kept     int    // entries kept (finished, to newest)
	bytes    int    // their encoded bytes
	entries  map[diffKey]*diffEntry
	prepared int // diffs prepared, for tests
}

// diffKey names a diff: from and to, and whether the connections asking
// take only whole diffs (see prepareDiff).
type diffKey struct {
	from, to uint64
	whole    bool
}

// diffEntry is one diff, prepared once; ready closes when lsn, frames and
// err are set, and they do not change after.
type diffEntry struct {
	ready chan struct{}
	lsn   uint64 // the LSN the diff brings its receiver to (≥ the key's to)
	// frames are the diff's; none, without an error, when it is too large
	// to send whole to connections that take streams (see prepareDiff).
	frames []preparedFrame
	err    error
	size   int  // encoded bytes of frames
	kept   bool // counted in diffCache.kept and bytes
}

// preparedFrame is one encoded Diff frame, ready to send to any connection.
type preparedFrame struct {
	msg  *websocket.PreparedMessage
	size int // encoded (CBOR) bytes, before deflate
}

// get returns the diff from LSN from for a connection that saw the
// document at LSN to and takes only whole diffs or not, preparing it with
// prepare unless another connection has or is. It returns false if done
// closes while it waits.
func (c *diffCache) get(from, to uint64, whole bool, prepare func(from uint64) (uint64, []preparedFrame, error), done <-chan struct{}) (*diffEntry, bool) {
	k := diffKey{from, to, whole}
	c.mu.Lock()
	if to > c.newest {
		c.newest = to
		for k, e := range c.entries {
			if k.to < to {
				c.drop(k, e)
			}
		}
	}
	if e, ok := c.entries[k]; ok {
		c.mu.Unlock()
		select {
		case <-e.ready:
			return e, true
		case <-done:
			return nil, false
		}
	}
	e := &diffEntry{ready: make(chan struct{})}
	if c.entries == nil {
		c.entries = map[diffKey]*diffEntry{}
	}
	c.entries[k] = e
	c.prepared++
	c.mu.Unlock()

	e.lsn, e.frames, e.err = prepare(from)
	for _, f := range e.frames {
		e.size += f.size
	}
	close(e.ready)

	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.entries[k] != e:
		// Dropped meanwhile: the document moved on.
	case e.err != nil || k.to < c.newest || c.kept >= diffCacheFroms || c.bytes+e.size > diffCacheBudget:
		delete(c.entries, k)
	default:
		e.kept = true
		c.kept++
		c.bytes += e.size
	}
	return e, true
}

// drop removes entry e, under c.mu. Connections waiting for it still get it.
func (c *diffCache) drop(k diffKey, e *diffEntry) {
	if e.kept {
		c.kept--
		c.bytes -= e.size
	}
	delete(c.entries, k)
}

// stats returns the entries kept, their encoded bytes, the entries in the
// map (kept or being prepared) and the diffs prepared so far.
func (c *diffCache) stats() (kept, bytes, entries, prepared int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kept, c.bytes, len(c.entries), c.prepared
}

// prepareDiff computes the diff from LSN from to the newest LSN and
// prepares its frames for sending: the diff's LSN and the frames, in order.
// Unless whole, a diff of syncwire.StreamMinPages pages or more is not
// read: it returns no frames, and the connections stream it (sendStream).
// So whether a diff streams is counted once per LSN, as its frames are
// prepared once, however many connections are at it.
func (d *document) prepareDiff(from uint64, whole bool) (uint64, []preparedFrame, error) {
	if !whole && d.coord.Changed(from) >= syncwire.StreamMinPages {
		return from, nil, nil
	}
	diff, err := d.coord.Diff(from)
	if err != nil {
		return from, nil, fmt.Errorf("diff from LSN %d: %w", from, err)
	}
	parts := syncwire.Frames(diff, syncwire.PagesPerFrame)
	frames := make([]preparedFrame, len(parts))
	for i, part := range parts {
		b, err := protocol.Encode(protocol.Frame{Diff: part})
		if err != nil {
			return from, nil, fmt.Errorf("encode diff %d..%d, frame %d: %w", from, diff.LSN, i, err)
		}
		msg, err := websocket.NewPreparedMessage(websocket.BinaryMessage, b)
		if err != nil {
			return from, nil, fmt.Errorf("prepare diff %d..%d, frame %d: %w", from, diff.LSN, i, err)
		}
		frames[i] = preparedFrame{msg: msg, size: len(b)}
	}
	return diff.LSN, frames, nil
}
