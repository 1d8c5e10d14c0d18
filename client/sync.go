package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/lazystore"
)

// Transport carries binary frames to and from the coordinator.
type Transport interface {
	// Read returns the next frame.
	Read(ctx context.Context) ([]byte, error)
	// Write sends one frame.
	Write(ctx context.Context, frame []byte) error
	// Close ends the connection.
	Close() error
}

// Dialer opens a transport to url.
type Dialer func(ctx context.Context, url string) (Transport, error)

// RefusedError is a Close frame from the coordinator.
type RefusedError struct {
	Code   string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("coordinator closed the connection: %s: %s", e.Code, e.Reason)
}

// permanent reports whether reconnecting cannot help.
func (e *RefusedError) permanent() bool {
	switch e.Code {
	case protocol.CodeUnauthorized, protocol.CodeForbidden, protocol.CodeVersion, protocol.CodeIdentity:
		return true
	}
	return false
}

// pushBatch bounds the mutations in one Push frame. A coordinator may take
// fewer (its --max-mutations-per-frame, --max-frame-bytes or rate burst):
// each time it closes the connection with CodeLimit the replica halves its
// batch for the next connections, down to one mutation, so a replica with
// many pending mutations is not refused for ever.
const pushBatch = 256

// syncLoop connects, syncs until the connection ends, and reconnects with
// jittered exponential backoff, until the Doc closes.
func (d *Doc) syncLoop(ctx context.Context) {
	defer close(d.done)
	backoff := d.opts.MinBackoff
	for ctx.Err() == nil {
		d.mu.Lock()
		online := d.online
		d.mu.Unlock()
		if !online {
			d.setStatus(func(s *Status) { s.State = Offline })
			select {
			case <-d.kick:
			case <-ctx.Done():
			}
			continue
		}
		d.setStatus(func(s *Status) { s.State = Connecting })
		welcomed, err := d.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if welcomed {
			backoff = d.opts.MinBackoff
		} else if len(d.opts.URLs) > 0 {
			// This coordinator would not have us: the next one.
			d.setStatus(func(s *Status) { s.URL = d.nextURL(s.URL) })
		}
		var refused *RefusedError
		if errors.As(err, &refused) && refused.Code == protocol.CodeLimit && d.pushBatch > 1 {
			d.pushBatch /= 2
		}
		if errors.As(err, &refused) && refused.permanent() {
			d.lg.Warn("sync stopped", "err", err)
			d.setStatus(func(s *Status) { s.State, s.LastError = Stopped, err.Error() })
			select {
			case <-d.kick: // SetOnline tries again
			case <-ctx.Done():
			}
			continue
		}
		d.lg.Debug("sync connection ended", "err", err)
		d.setStatus(func(s *Status) {
			s.State = Offline
			if err != nil {
				s.LastError = err.Error()
			}
		})
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, d.opts.MaxBackoff)
		select {
		case <-time.After(wait):
		case <-d.kick:
		case <-ctx.Done():
		}
	}
}

// nextURL returns the coordinator after url in Options.URL and URLs.
func (d *Doc) nextURL(url string) string {
	all := append([]string{d.opts.URL}, d.opts.URLs...)
	for i, u := range all {
		if u == url {
			return all[(i+1)%len(all)]
		}
	}
	return d.opts.URL
}

// session runs one connection until it fails, the app goes offline, or ctx
// ends. welcomed reports whether the coordinator accepted the Hello.
func (d *Doc) session(ctx context.Context) (welcomed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	url := d.Status().URL
	t, err := d.opts.Dial(ctx, url)
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", url, err)
	}
	defer t.Close()
	hello := protocol.Hello{Version: protocol.Version, DocID: d.opts.DocID, ClientID: d.eng.ClientID(), LSN: d.eng.LSN(), Token: d.opts.Token, Secret: d.secret}
	if d.opts.Presence {
		hello.Capabilities = []string{protocol.CapPresence}
	}
	store := d.eng.Database().Store()
	// A store that can stage takes large diffs streamed, and resumes one
	// that broke off.
	var recv *syncwire.StreamReceiver
	if st, ok := store.(vfs.Stager); ok {
		if recv, err = syncwire.NewStreamReceiver(st, store.LSN); err != nil {
			return false, err
		}
		hello.Capabilities = append(hello.Capabilities, protocol.CapStream)
		hello.Resume = recv.Resume()
		if p, ok := recv.Progress(); ok && hello.Resume != nil {
			d.lg.Info("resuming download", "pages", p.Pages, "of", p.Total)
			e := progressOf(p, false)
			e.Resumed = true
			d.emit(Event{Progress: e})
		}
	}
	// A lazy replica asks for pages as its statements read them, and
	// says which it holds, whose changes it takes.
	lazy, _ := store.(*lazystore.Store)
	var fetcher *pageFetcher
	if lazy != nil {
		hello.Capabilities = append(hello.Capabilities, protocol.CapLazy)
		hello.Held = protocol.HeldBitmap(lazy.Held())
		fetcher = newPageFetcher(ctx, t)
		defer lazy.SetFetcher(nil)
	}
	if err := writeFrame(ctx, t, protocol.Frame{Hello: &hello}); err != nil {
		return false, err
	}
	frames := make(chan protocol.Frame, 16)
	send := func(f protocol.Frame) bool {
		select {
		case frames <- f:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if lazy != nil {
		q := newFrameQueue()
		go q.forward(ctx, frames)
		send = func(f protocol.Frame) bool { q.put(f); return true }
	}
	// Frames of a streamed diff are large (1 MiB) and staging each takes
	// an fsync: the reader runs at most streamAhead of them ahead of the
	// staging, so that a download's memory stays a few frames (the
	// network waits meanwhile, in the socket's buffers and TCP's window).
	ahead := make(chan struct{}, streamAhead)
	readErr := make(chan error, 1)
	go func() {
		for {
			b, err := t.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			f, err := protocol.Decode(b, protocol.Limits{MaxFrameBytes: 64 << 20})
			if err != nil {
				readErr <- fmt.Errorf("bad frame from coordinator: %w", err)
				return
			}
			if f.PageReply != nil && fetcher != nil {
				fetcher.deliver(f.PageReply)
				continue
			}
			if f.Diff != nil && f.Diff.Stream != nil {
				select {
				case ahead <- struct{}{}: // taken back once the frame is staged
				case <-ctx.Done():
					return
				}
			}
			if !send(f) {
				return
			}
		}
	}()
	pushErr := make(chan error, 1)
	presenceErr := make(chan error, 1)
	defer d.presenceEnded()
	asm := &syncwire.Assembler{Base: store.ReadPage, BaseCount: store.PageCount}
	for {
		var f protocol.Frame
		select {
		case f = <-frames:
		case err := <-readErr:
			// Stage the frames of a stream read before the connection
			// broke: a resumed stream goes on after them.
			for {
				select {
				case g := <-frames:
					if g.Diff != nil && g.Diff.Stream != nil && g.Diff.More {
						if serr := d.streamFrame(ctx, recv, ahead, g.Diff); serr != nil {
							return welcomed, errors.Join(err, serr)
						}
					}
					continue
				default:
				}
				return welcomed, err
			}
		case err := <-pushErr:
			return welcomed, err
		case err := <-presenceErr:
			return welcomed, err
		case <-d.kick:
			d.mu.Lock()
			online := d.online
			d.mu.Unlock()
			if !online {
				return welcomed, nil
			}
			continue
		case <-ctx.Done():
			return welcomed, ctx.Err()
		}
		switch {
		case f.Close != nil:
			return welcomed, &RefusedError{Code: f.Close.Code, Reason: f.Close.Reason}
		case f.Welcome != nil:
			if welcomed {
				return true, errors.New("second welcome from coordinator")
			}
			welcomed = true
			if lazy != nil {
				if !protocol.HasCapability(f.Welcome.Capabilities, protocol.CapLazy) {
					return true, errNotLazy
				}
				lazy.SetFetcher(fetcher.fetch)
			}
			theirs, ours := f.Welcome.MutatorHash, d.opts.MutatorHash
			mismatch := theirs != "" && ours != "" && theirs != ours
			presence := d.opts.Presence && protocol.HasCapability(f.Welcome.Capabilities, protocol.CapPresence)
			if presence {
				limits := d.presence.connected(f.Welcome.Presence)
				go func() { presenceErr <- d.presenceLoop(ctx, t, limits) }()
			}
			d.setStatus(func(s *Status) {
				s.Presence = presence
				s.ServerLSN = f.Welcome.LSN
				if d.eng.LSN() >= f.Welcome.LSN {
					s.State = Online
				}
				s.CoordinatorMutator, s.MutatorMismatch = theirs, mismatch
				if mismatch {
					s.LastError = mismatchMessage(theirs, ours)
				}
			})
			if mismatch {
				// Keep taking diffs, push nothing: the coordinator would
				// run these mutations with its own mutator, correctly, but
				// this replica's local results would diverge from its.
				d.lg.Warn("mutator mismatch: not pushing", "coordinator", theirs, "replica", ours)
			} else {
				batch := d.pushBatch
				go func() { pushErr <- d.pushLoop(ctx, t, batch) }()
			}
		case f.Rejected != nil:
			d.emit(Event{Rejected: d.rejection(*f.Rejected)})
		case d.presenceFrame(f):
		case f.Diff != nil && f.Diff.Stream != nil:
			if err := d.streamFrame(ctx, recv, ahead, f.Diff); err != nil {
				return welcomed, err
			}
		case f.Diff != nil:
			if err := asm.Add(f.Diff); err != nil {
				return welcomed, err
			}
			// Coalesce: take every diff frame already waiting, then rebase
			// once for all of them.
		more:
			for {
				select {
				case g := <-frames:
					if g.Diff != nil && g.Diff.Stream != nil {
						if err := d.rebase(ctx, asm.Take()); err != nil {
							return welcomed, err
						}
						if err := d.streamFrame(ctx, recv, ahead, g.Diff); err != nil {
							return welcomed, err
						}
						continue
					}
					if g.Diff == nil {
						// Not a diff: handle it after this rebase.
						if err := d.rebase(ctx, asm.Take()); err != nil {
							return welcomed, err
						}
						if g.Rejected != nil {
							d.emit(Event{Rejected: d.rejection(*g.Rejected)})
							continue
						}
						if d.presenceFrame(g) {
							continue
						}
						if g.Close != nil {
							return welcomed, &RefusedError{Code: g.Close.Code, Reason: g.Close.Reason}
						}
						return welcomed, fmt.Errorf("unexpected %s frame", g.Kind())
					}
					if err := asm.Add(g.Diff); err != nil {
						return welcomed, err
					}
				default:
					break more
				}
			}
			if err := d.rebase(ctx, asm.Take()); err != nil {
				return welcomed, err
			}
		default:
			return welcomed, fmt.Errorf("unexpected %s frame", f.Kind())
		}
	}
}

// mismatchMessage is Status.LastError for a mutator mismatch.
func mismatchMessage(coordinator, replica string) string {
	return fmt.Sprintf("the coordinator runs mutator %s, this replica runs %s: reopen the document (reload) to run the coordinator's; its mutations are not pushed until then",
		shortHash(coordinator), shortHash(replica))
}

// shortHash abbreviates a SHA-256 hex hash for messages.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func (d *Doc) rebase(ctx context.Context, diffs []engine.Diff) error {
	if len(diffs) == 0 {
		return nil
	}
	if err := d.eng.Rebase(ctx, diffs...); err != nil {
		return err
	}
	last := diffs[len(diffs)-1].LSN
	d.setStatus(func(s *Status) {
		s.ServerLSN = max(s.ServerLSN, last)
		if d.eng.LSN() >= s.ServerLSN {
			s.State = Online
		}
	})
	return nil
}

// streamAhead bounds the frames of a streamed diff read but not yet
// staged.
const streamAhead = 2

// streamFrame stages one frame of a streamed diff and reports progress;
// the last frame applies the stream.
func (d *Doc) streamFrame(ctx context.Context, recv *syncwire.StreamReceiver, ahead <-chan struct{}, f *protocol.Diff) error {
	defer func() { <-ahead }() // the reader may read the next
	if recv == nil {
		return fmt.Errorf("%w: a streamed diff to a replica that did not ask for one", syncwire.ErrBadDiff)
	}
	commit, p, err := recv.Add(f)
	if err != nil {
		return err
	}
	if commit == nil {
		d.emit(Event{Progress: progressOf(p, false)})
		return nil
	}
	if err := d.eng.ApplyStaged(ctx, *commit); err != nil {
		if errors.Is(err, vfs.ErrBadCommit) {
			// A stream that does not fit together (a coordinator's bug, or
			// its store replaced) must not be resumed: the next starts over.
			err = errors.Join(err, recv.Drop())
		}
		return err
	}
	d.emit(Event{Progress: progressOf(p, true)})
	d.setStatus(func(s *Status) {
		s.ServerLSN = max(s.ServerLSN, commit.LSN)
		if d.eng.LSN() >= s.ServerLSN {
			s.State = Online
		}
	})
	return nil
}

func (d *Doc) rejection(r protocol.Rejected) *engine.RejectedError {
	e := &engine.RejectedError{Seq: r.Seq, Message: r.Message}
	for _, m := range d.eng.Pending() {
		if m.Seq == r.Seq {
			e.Name = m.Name
		}
	}
	return e
}

// pushLoop sends pending mutations not yet sent on this connection, at most
// batchSize in a frame, then waits for more. It sends a push only once the
// coordinator has applied (or rejected) every mutation sent before, as the
// diffs show: one push in flight. So a replica with a long backlog goes at
// the pace of the coordinator's commits and, under a rate limit, at the
// rate, which the coordinator applies as backpressure; it never runs ahead
// of the limit and is never closed for it. Mutations made while a push is
// in flight go together in the next.
func (d *Doc) pushLoop(ctx context.Context, t Transport, batchSize int) error {
	var sent uint64
	for {
		var batch []protocol.Mutation
		inFlight := false
		for _, m := range d.eng.Pending() {
			if m.Seq <= sent {
				inFlight = true
				break
			}
			batch = append(batch, protocol.Mutation{Seq: m.Seq, Name: m.Name, Args: m.Args})
			if len(batch) == batchSize {
				break
			}
		}
		if !inFlight && len(batch) > 0 {
			if err := writeFrame(ctx, t, protocol.Frame{Push: &protocol.Push{Mutations: batch}}); err != nil {
				return err
			}
			sent = batch[len(batch)-1].Seq
			continue
		}
		select {
		case <-d.pushWake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func writeFrame(ctx context.Context, t Transport, f protocol.Frame) error {
	b, err := protocol.Encode(f)
	if err != nil {
		return fmt.Errorf("encode %s: %w", f.Kind(), err)
	}
	if err := t.Write(ctx, b); err != nil {
		return fmt.Errorf("send %s: %w", f.Kind(), err)
	}
	return nil
}
