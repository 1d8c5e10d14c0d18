package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/lazystore"
)

// DefaultCacheBytes is a lazy replica's page cache when Options.CacheBytes
// is 0.
const DefaultCacheBytes = 64 << 20

// fetchTimeout bounds the wait for one page reply.
const fetchTimeout = 30 * time.Second

// LazyStats is what a lazy replica fetched and holds (see Options.Lazy).
type LazyStats = lazystore.Stats

// LazyStats returns the lazy replica's counts; ok is false for a replica
// that is not lazy.
func (d *Doc) LazyStats() (LazyStats, bool) {
	s, ok := d.store.(*lazystore.Store)
	if !ok {
		return LazyStats{}, false
	}
	return s.Stats(), true
}

// pageFetcher sends a lazy replica's page requests on one connection and
// hands each reply to the read waiting for it.
type pageFetcher struct {
	ctx context.Context
	t   Transport

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan *protocol.PageReply
}

func newPageFetcher(ctx context.Context, t Transport) *pageFetcher {
	return &pageFetcher{ctx: ctx, t: t, waiting: map[uint64]chan *protocol.PageReply{}}
}

// fetch is a lazystore.Fetcher.
func (f *pageFetcher) fetch(lsn uint64, nos []uint32) (lazystore.Reply, error) {
	ch := make(chan *protocol.PageReply, 1)
	f.mu.Lock()
	f.next++
	id := f.next
	f.waiting[id] = ch
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.waiting, id)
		f.mu.Unlock()
	}()
	if err := writeFrame(f.ctx, f.t, protocol.Frame{PageRequest: &protocol.PageRequest{ID: id, LSN: lsn, Pages: nos}}); err != nil {
		return lazystore.Reply{}, fmt.Errorf("%w: %w", vfs.ErrOffline, err)
	}
	timer := time.NewTimer(fetchTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		out := lazystore.Reply{LSN: r.LSN, Stale: r.Stale, Pages: make([]vfs.Page, len(r.Pages))}
		for i, p := range r.Pages {
			out.Pages[i] = vfs.Page{No: p.No, Data: p.Data}
		}
		return out, nil
	case <-f.ctx.Done():
		return lazystore.Reply{}, fmt.Errorf("%w: the connection ended during the fetch", vfs.ErrOffline)
	case <-timer.C:
		return lazystore.Reply{}, fmt.Errorf("no page reply in %v", fetchTimeout)
	}
}

// deliver hands r to the read waiting for it; a reply nobody waits for
// (its read gave up) is dropped.
func (f *pageFetcher) deliver(r *protocol.PageReply) {
	f.mu.Lock()
	ch := f.waiting[r.ID]
	f.mu.Unlock()
	if ch != nil {
		select {
		case ch <- r:
		default:
		}
	}
}

// frameQueue passes frames from the connection's reader to the session
// without bound, for a lazy replica: the reader must go on reading while
// a statement waits for a page reply, as the session may be waiting for
// that statement to rebase.
type frameQueue struct {
	mu    sync.Mutex
	queue []protocol.Frame
	wake  chan struct{}
}

func newFrameQueue() *frameQueue { return &frameQueue{wake: make(chan struct{}, 1)} }

func (q *frameQueue) put(f protocol.Frame) {
	q.mu.Lock()
	q.queue = append(q.queue, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// forward sends the queued frames to out, in order, until ctx ends.
func (q *frameQueue) forward(ctx context.Context, out chan<- protocol.Frame) {
	for {
		q.mu.Lock()
		var f protocol.Frame
		ok := len(q.queue) > 0
		if ok {
			f = q.queue[0]
			q.queue[0] = protocol.Frame{}
			q.queue = q.queue[1:]
		}
		q.mu.Unlock()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case out <- f:
		case <-ctx.Done():
			return
		}
	}
}

// errNotLazy ends a session whose coordinator does not serve lazy replicas.
var errNotLazy = errors.New("the coordinator does not serve lazy replicas (no lazy capability): open the document without Lazy")
