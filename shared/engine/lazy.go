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
func (c *Client) retryMiss(ctx context.Context, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		var miss *vfs.MissError
		if !errors.As(err, &miss) || miss.LSN == 0 || attempt == missRetries {
			return err
		}
		if werr := c.waitLSN(ctx, miss.LSN); werr != nil {
			return fmt.Errorf("%w (waiting for LSN %d: %v)", err, miss.LSN, werr)
		}
	}
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
