package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// docIDPattern is what a document ID may look like: it names a directory
// under the data directory, so it can never hold a path separator or be
// "." or "..".
var docIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// ErrBadDocID reports a document ID outside docIDPattern.
var ErrBadDocID = errors.New("bad document ID: want 1 to 128 of A-Z a-z 0-9 . _ - , not starting with a dot")

// ValidDocID reports whether id can name a document.
func ValidDocID(id string) error {
	if !docIDPattern.MatchString(id) {
		return fmt.Errorf("%w: %q", ErrBadDocID, id)
	}
	return nil
}

// push is a batch of mutations from one connection.
type push struct {
	from *conn
	muts []engine.Mutation
}

// document is one open coordinator document with its single writer
// goroutine. Connections hand it pushes; after every commit it wakes them so
// each sends its client the diff it lacks.
type document struct {
	id      string
	hash    string // the mutator module's hash, "" for a Go mutator
	mut     engine.Mutator
	log     *slog.Logger
	metrics *metrics
	store   vfs.Store
	ids     *identities
	rejlog  *rejectionLog // the writer's
	coord   *engine.Coordinator
	diffs   diffCache   // the diffs the connections send, prepared once
	insp    docActivity // recent commits and rejections, for the inspector
	in      chan push
	stop    chan struct{}
	done    chan struct{}

	// presence is what the connections publish of themselves, ephemeral
	// and never written (see presence.go).
	presence *presenceHub

	kept        *rejections // the server's, for the clients not told of theirs yet
	afterCommit func()      // the server's (tests)
	stepDown    func()      // the server's stepDown of this document
	lease       *lease      // in a cluster: the document's lease, set before it is shared
	down        bool        // the writer's: the document stepped down

	mu    sync.Mutex // also orders kept's records with joins (see join)
	conns map[*conn]bool
	refs  int // connections and other users holding the document open
	idle  func() bool
	// published is the LSN up to which every commit's rejections are
	// kept and queued on the connections; publishedCh closes and is
	// replaced when it moves. A connection sends no diff past it (see
	// waitPublished): the commit is visible (coord.LSN) a moment before
	// apply has queued its rejections.
	published   uint64
	publishedCh chan struct{}
}

func openDocument(ctx context.Context, s *Server, id string) (*document, error) {
	if err := hackpadfs.MkdirAll(s.fsys, "docs/"+id, 0o755); err != nil {
		return nil, fmt.Errorf("open document %s: %w", id, err)
	}
	store, err := s.cfg.Journal.OpenStore(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("open document %s: %w", id, err)
	}
	lines := s.linesOf(ctx, id)
	ids, err := openIdentities(lines, id)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open document %s: %w", id, err)
	}
	rejlog, kept, err := openRejectionLog(lines, store.LSN())
	if err != nil {
		ids.close()
		store.Close()
		return nil, fmt.Errorf("open document %s: %w", id, err)
	}
	mut := s.cfg.Mutator(id)
	hash := s.modules.add(mut)
	coord, err := engine.OpenCoordinator(ctx, store, mut, engine.CoordinatorOptions{
		MutatorHash:      hash,
		MutationTimeout:  s.cfg.MutationTimeout,
		BatchTimeout:     s.cfg.BatchTimeout,
		MaxPages:         s.cfg.MaxDocBytes / vfs.PageSize,
		RecordRejections: rejlog.record,
	})
	if err != nil {
		rejlog.close()
		ids.close()
		store.Close()
		return nil, fmt.Errorf("open document %s: %w", id, err)
	}
	for _, l := range kept {
		s.kept.add(id, l.Client, l.LSN, protocol.Rejected{Seq: l.Seq, Message: l.Message})
	}
	d := &document{
		hash:    hash,
		mut:     mut,
		id:      id,
		log:     s.log.With("doc", id),
		metrics: s.metrics,
		store:   store,
		ids:     ids,
		rejlog:  rejlog,
		coord:   coord,
		in:      make(chan push, 64),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		conns:   map[*conn]bool{},
		kept:    &s.kept,

		presence: newPresenceHub(s.cfg.Presence, s.metrics.presence, s.log.With("doc", id)),

		afterCommit: s.afterCommit,

		published:   coord.LSN(),
		publishedCh: make(chan struct{}),
	}
	d.stepDown = func() { s.stepDown(d) }
	go d.run(s.cfg.MaxBatch)
	d.log.Info("document opened", "lsn", coord.LSN())
	return d, nil
}

// run is the document's single writer: it takes every push waiting, applies
// them in one group commit, then wakes the connections. Mutations a group
// commit left out for lack of time (engine.Result.Deferred) go first in the
// next one, before any newer push, so each client's mutations keep their
// order and every mutation is applied or rejected in the end.
func (d *document) run(maxBatch int) {
	defer close(d.done)
	ctx := context.Background()
	var carry []push // deferred by the last group commit, in order
	for {
		pushes := carry
		n := 0
		for _, p := range carry {
			n += len(p.muts)
		}
		if len(carry) == 0 {
			select {
			case first := <-d.in:
				pushes = []push{first}
				n = len(first.muts)
			case <-d.stop:
				return
			}
		} else {
			select {
			case <-d.stop:
				// The clients still have them pending and resend
				// them to the next coordinator.
				d.log.Info("closing with deferred mutations", "mutations", n)
				return
			default:
			}
		}
	drain:
		for n < maxBatch {
			select {
			case p := <-d.in:
				pushes = append(pushes, p)
				n += len(p.muts)
			default:
				break drain
			}
		}
		carry = d.apply(ctx, pushes)
		if d.down {
			return
		}
	}
}

// fenced returns why the document's journal refuses commits, if it does
// because another coordinator has written the document or because it
// cannot know whether its last commit landed (see Journal): the document
// must be reopened from the journal.
func (d *document) fenced() error {
	if f, ok := d.store.(interface{ Stale() error }); ok {
		return f.Stale()
	}
	return nil
}

// apply applies pushes in one group commit and returns what the commit
// deferred, as pushes holding the suffix of their mutations left to apply.
func (d *document) apply(ctx context.Context, pushes []push) []push {
	var batch []engine.Mutation
	for _, p := range pushes {
		batch = append(batch, p.muts...)
	}
	start, from := time.Now(), d.coord.LSN()
	res, err := d.coord.Apply(ctx, batch)
	if err == nil {
		d.insp.record(d.store, from, res, time.Since(start))
	}
	if err == nil && d.afterCommit != nil {
		d.afterCommit()
	}
	m := d.metrics
	m.commitTime.Observe(time.Since(start).Seconds())
	m.batchSize.Observe(float64(len(batch)))
	var carry []push
	if err == nil && len(res.Deferred) > 0 {
		var ok bool
		if carry, ok = deferredPushes(pushes, res.Deferred); !ok {
			// Not what Apply promises; the clients resend them.
			d.log.Error("deferred mutations are not the batch's suffix", "deferred", len(res.Deferred))
			for _, m := range res.Deferred {
				for _, p := range pushes {
					if p.from.clientID == m.ClientID {
						p.from.fail(protocol.CodeInternal, "the coordinator could not apply every mutation; retry later")
					}
				}
			}
		}
	}
	// The mutations carried over are still waiting to be applied.
	queued := map[*conn]int64{}
	for _, p := range pushes {
		queued[p.from] -= int64(len(p.muts))
	}
	for _, p := range carry {
		queued[p.from] += int64(len(p.muts))
	}
	for c, n := range queued {
		c.queued.Add(n)
	}
	if fence := d.fenced(); err != nil && fence != nil {
		// Another coordinator wrote the document: this copy is stale.
		// Nothing of the batch was committed; the clients resend it to
		// the document reopened from the journal.
		d.log.Warn("the journal refuses this copy of the document (another coordinator took it over, or a commit's outcome is unknown): stepping down", "err", fence)
		d.metrics.stepDowns.WithLabelValues("fenced").Inc()
		d.down = true
		d.stepDown()
		return nil
	}
	if err != nil {
		// Nothing was committed: the clients keep the mutations pending and
		// resend them when they reconnect.
		d.log.Error("apply batch", "mutations", len(batch), "err", err)
		for _, p := range pushes {
			p.from.fail(protocol.CodeInternal, "the coordinator could not commit; retry later")
		}
		d.mu.Lock()
		d.publish()
		d.mu.Unlock()
		return nil
	}
	owner := func(clientID string) *conn {
		for _, p := range pushes {
			if p.from.clientID == clientID {
				return p.from
			}
		}
		return nil
	}
	// Every rejection is kept for its client and queued on each of the
	// client's connections, under d.mu so that a connection joining now
	// (join) finds it either kept or queued: a client that was offline, or
	// whose connection dropped before the Rejected frame went out, is told
	// when it reconnects.
	d.mu.Lock()
	for _, r := range res.Rejected {
		fr := rejectedFrame(r)
		d.kept.add(d.id, r.Mutation.ClientID, res.LSN, fr)
		for c := range d.conns {
			if c.clientID == r.Mutation.ClientID {
				c.reject(fr)
			}
		}
	}
	d.publish()
	d.mu.Unlock()
	if len(res.Rejected) > 0 {
		if err := d.rejlog.compact(func() []rejectionLine { return d.kept.lines(d.id) }); err != nil {
			d.log.Error("rewrite rejections file", "err", err) // it keeps growing; nothing is lost
		}
	}
	for _, m := range res.Gaps {
		if c := owner(m.ClientID); c != nil {
			c.fail(protocol.CodeBadRequest, fmt.Sprintf("mutation seq %d skips ahead of the last applied seq", m.Seq))
		}
	}
	m.applied.Add(float64(len(res.Applied)))
	m.rejected.Add(float64(len(res.Rejected)))
	if len(res.Deferred) > 0 {
		m.deferred.Add(float64(len(res.Deferred)))
		d.log.Debug("batch time budget ran out", "applied", len(res.Applied), "deferred", len(res.Deferred))
	}
	if len(res.Applied) > 0 {
		m.commits.Inc()
		d.log.Debug("committed", "lsn", res.LSN, "applied", len(res.Applied), "rejected", len(res.Rejected))
	}
	d.mu.Lock()
	for c := range d.conns {
		c.wake()
	}
	d.mu.Unlock()
	return carry
}

// join adds c, a connection of client clientID whose snapshot is at lsn,
// to the document's connections, unless it already has maxConns, and
// queues on it the kept rejections of the client that lsn has not seen, to
// go out before the first diff. Under d.mu, as apply keeps and queues them,
// so each rejection reaches c once: kept before, or queued after.
func (d *document) join(c *conn, lsn uint64, maxConns int) (full bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.conns) >= maxConns {
		return true
	}
	d.conns[c] = true
	for _, r := range d.kept.since(d.id, c.clientID, lsn) {
		c.reject(r)
	}
	return false
}

// publish marks the commits so far as published: their rejections are
// kept and queued. Called by the writer, under d.mu, after it queued them.
func (d *document) publish() {
	if lsn := d.coord.LSN(); lsn > d.published {
		d.published = lsn
		close(d.publishedCh)
		d.publishedCh = make(chan struct{})
	}
}

// waitPublished waits until the rejections of every commit up to lsn are
// queued on the connections (publish), so that a diff to lsn may follow
// them. It is short: the writer publishes right after each commit. It
// returns false if done closed first.
func (d *document) waitPublished(lsn uint64, done <-chan struct{}) bool {
	for {
		d.mu.Lock()
		ok, ch := d.published >= lsn, d.publishedCh
		d.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-d.done:
			// The writer has stopped, after publishing its last commit.
			return true
		case <-done:
			return false
		}
	}
}

// deferredPushes maps deferred, which Coordinator.Apply returns as a suffix
// of the batch made of pushes, back onto pushes: the returned pushes hold,
// in order, the mutations still to apply, each with the connection that
// sent it. ok is false if deferred is not the batch's suffix.
func deferredPushes(pushes []push, deferred []engine.Mutation) (out []push, ok bool) {
	skip := -len(deferred) // of the first push kept: mutations applied
	i := len(pushes)
	for skip < 0 && i > 0 {
		i--
		skip += len(pushes[i].muts)
	}
	if skip < 0 {
		return nil, false
	}
	k := 0
	for j, p := range pushes[i:] {
		muts := p.muts
		if j == 0 {
			muts = muts[skip:]
		}
		for _, m := range muts {
			if d := deferred[k]; d.ClientID != m.ClientID || d.Seq != m.Seq {
				return nil, false
			}
			k++
		}
		if len(muts) > 0 {
			out = append(out, push{from: p.from, muts: muts})
		}
	}
	return out, true
}

// close stops the writer and closes the coordinator and its store.
func (d *document) close() error {
	close(d.stop)
	<-d.done
	d.presence.close()
	err := errors.Join(d.coord.Close(), d.store.Close(), d.ids.close(), d.rejlog.close())
	d.kept.forget(d.id) // in its file, for the next open
	if d.lease != nil {
		d.lease.end() // after the last commit: the next owner reads it
		d.metrics.leases.Dec()
	}
	if c, ok := d.mut.(io.Closer); ok {
		err = errors.Join(err, c.Close()) // a module instance's memory
	}
	d.log.Info("document closed", "lsn", d.store.LSN())
	return err
}
