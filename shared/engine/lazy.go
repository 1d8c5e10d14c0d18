package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// A lazy replica's snapshot (a vfs.Partial store) fetches the pages a
// statement reads as it reads them. A page that changed after the
// snapshot's LSN cannot be had as of it: the statement fails, not by its
// own doing, and runs again once a diff has brought the snapshot to the
// LSN the coordinator named (the diff is on its way: the coordinator sends
// it before the page reply). A page missing while the replica is offline
// fails the statement with vfs.ErrOffline; a mutation that fails so is not
// recorded.

// missRetries bounds the reruns of one call after stale pages.
const missRetries = 8

// fetchRetries bounds the reruns of one call after pages fetched between
// attempts (EventLoopMutator): one a page.
const fetchRetries = 4096

// EventLoopMutator is a Mutator whose calls run inside a call from an event
// loop (a module on the browser's WebAssembly engine, under GOOS=js, whose
// SQL comes back into Go through JavaScript): a read there that waited for
// the network would wait for ever, as the reply is an event of that loop.
// On a lazy replica, a page such a mutator's statements lack fails the
// call at once (vfs.ErrMustFetch): the replica fetches it outside the call
// and runs the call again, as many times as pages are missing.
type EventLoopMutator interface {
	Mutator
	InEventLoop() bool
}

// noWait reports whether reads during mutator calls must not wait.
func (c *Client) noWait() bool {
	m, ok := c.mut.(EventLoopMutator)
	return ok && m.InEventLoop()
}

// withNoWait runs f with the database's reads not waiting if the mutator
// must not (see EventLoopMutator).
// +checklocks:c.mu
func (c *Client) withNoWait(f func() error) error {
	if !c.noWait() {
		return f()
	}
	c.db.SetNoWait(true)
	defer c.db.SetNoWait(false)
	return f()
}

// missWait bounds the wait for the diff a stale page needs.
const missWait = 30 * time.Second

// missed returns the page miss behind err, if any: in err's chain, or
// recorded by the database (SQLite reports only an I/O error).
func (c *Client) missed(err error) *vfs.MissError {
	var miss *vfs.MissError
	if errors.As(err, &miss) {
		c.db.TakeMiss()
		return miss
	}
	return c.db.TakeMiss()
}

// retryMiss runs op until it fails other than by a stale page, waiting
// each time for the snapshot to reach the LSN the page needs.
//
// A page that must be fetched between attempts (vfs.ErrMustFetch) is
// fetched here, where waiting is fine, and op runs again.
func (c *Client) retryMiss(ctx context.Context, op func() error) error {
	stale, fetched := 0, 0
	for {
		err := op()
		var miss *vfs.MissError
		if !errors.As(err, &miss) {
			return err
		}
		if errors.Is(miss, vfs.ErrMustFetch) && fetched < fetchRetries {
			fetched++
			c.rerunFetched.Add(1)
			if ferr := c.fetch(miss.Page); ferr != nil {
				if errors.As(ferr, &miss) && miss.LSN > 0 {
					// Changed since the snapshot: wait, as below.
				} else {
					return fmt.Errorf("%w (fetching it: %w)", err, ferr)
				}
			} else {
				continue
			}
		}
		if miss.LSN == 0 || stale == missRetries {
			return err
		}
		stale++
		c.rerunStale.Add(1)
		if werr := c.waitLSN(ctx, miss.LSN); werr != nil {
			return fmt.Errorf("%w (waiting for LSN %d: %v)", err, miss.LSN, werr)
		}
	}
}

// fetch reads page no of a Partial snapshot, so that the store fetches it
// if it lacks it. It runs without c.mu: a diff may come in meanwhile, and
// the store knows to keep the page only if it is as of its LSN.
func (c *Client) fetch(no uint32) error {
	store := c.db.Store()
	if no == 0 || no > store.PageCount() {
		return nil // the next attempt reads what the page count is now
	}
	return store.ReadPage(no, make([]byte, vfs.PageSize))
}

// Reruns returns how many times the replica ran a statement or mutation
// again after a page it lacked: stale (changed since its snapshot, run
// again once a diff came in) and fetched (fetched outside a mutator call
// that could not wait, see EventLoopMutator).
func (c *Client) Reruns() (stale, fetched uint64) {
	return c.rerunStale.Load(), c.rerunFetched.Load()
}

// waitLSN waits until the snapshot is at lsn or later.
func (c *Client) waitLSN(ctx context.Context, lsn uint64) error {
	ctx, cancel := context.WithTimeout(ctx, missWait)
	defer cancel()
	for {
		c.mu.Lock()
		at, moved := c.db.Store().LSN(), c.moved
		if moved == nil {
			moved = make(chan struct{})
			c.moved = moved
		}
		c.mu.Unlock()
		if at >= lsn {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// snapshotMoved wakes the calls waiting for the snapshot's LSN.
// +checklocks:c.mu
func (c *Client) snapshotMoved() {
	if c.moved != nil {
		close(c.moved)
		c.moved = nil
	}
}
