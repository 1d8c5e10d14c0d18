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

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/filestore"
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
	store   *filestore.Store
	ids     *identities
	coord   *engine.Coordinator
	in      chan push
	stop    chan struct{}
	done    chan struct{}

	mu    sync.Mutex
	conns map[*conn]bool
	refs  int // connections and other users holding the document open
	idle  func() bool
}

func openDocument(ctx context.Context, s *Server, id string) (*document, error) {
	store, err := filestore.Open(s.fsys, "docs/"+id)
	if err != nil {
		return nil, fmt.Errorf("open document %s: %w", id, err)
	}
	ids, err := openIdentities(s.fsys, "docs/"+id+"/"+identitiesFile, id)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open document %s: %w", id, err)
	}
	mut := s.cfg.Mutator(id)
	hash := s.modules.add(mut)
	coord, err := engine.OpenCoordinator(ctx, store, mut, engine.CoordinatorOptions{
		MutatorHash:     hash,
		MutationTimeout: s.cfg.MutationTimeout,
		MaxPages:        s.cfg.MaxDocBytes / vfs.PageSize,
	})
	if err != nil {
		ids.close()
		store.Close()
		return nil, fmt.Errorf("open document %s: %w", id, err)
	}
	d := &document{
		hash:    hash,
		mut:     mut,
		id:      id,
		log:     s.log.With("doc", id),
		metrics: s.metrics,
		store:   store,
		ids:     ids,
		coord:   coord,
		in:      make(chan push, 64),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		conns:   map[*conn]bool{},
	}
	go d.run(s.cfg.MaxBatch)
	d.log.Info("document opened", "lsn", coord.LSN())
	return d, nil
}

// run is the document's single writer: it takes every push waiting, applies
// them in one group commit, then wakes the connections.
func (d *document) run(maxBatch int) {
	defer close(d.done)
	ctx := context.Background()
	for {
		var first push
		select {
		case first = <-d.in:
		case <-d.stop:
			return
		}
		pushes := []push{first}
		n := len(first.muts)
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
		d.apply(ctx, pushes)
	}
}

func (d *document) apply(ctx context.Context, pushes []push) {
	var batch []engine.Mutation
	for _, p := range pushes {
		batch = append(batch, p.muts...)
	}
	start := time.Now()
	res, err := d.coord.Apply(ctx, batch)
	m := d.metrics
	m.commitTime.Observe(time.Since(start).Seconds())
	m.batchSize.Observe(float64(len(batch)))
	for _, p := range pushes {
		p.from.queued.Add(-int64(len(p.muts)))
	}
	if err != nil {
		// Nothing was committed: the clients keep the mutations pending and
		// resend them when they reconnect.
		d.log.Error("apply batch", "mutations", len(batch), "err", err)
		for _, p := range pushes {
			p.from.fail(protocol.CodeInternal, "the coordinator could not commit; retry later")
		}
		return
	}
	owner := func(clientID string) *conn {
		for _, p := range pushes {
			if p.from.clientID == clientID {
				return p.from
			}
		}
		return nil
	}
	for _, r := range res.Rejected {
		if c := owner(r.Mutation.ClientID); c != nil {
			msg := r.Err.Error()
			var rej *engine.RejectedError
			if errors.As(r.Err, &rej) {
				msg = rej.Message
			}
			c.reject(protocol.Rejected{Seq: r.Mutation.Seq, Message: msg})
		}
	}
	for _, m := range res.Gaps {
		if c := owner(m.ClientID); c != nil {
			c.fail(protocol.CodeBadRequest, fmt.Sprintf("mutation seq %d skips ahead of the last applied seq", m.Seq))
		}
	}
	m.applied.Add(float64(len(res.Applied)))
	m.rejected.Add(float64(len(res.Rejected)))
	if len(res.Applied) > 0 {
		m.commits.Inc()
		d.log.Debug("committed", "lsn", res.LSN, "applied", len(res.Applied), "rejected", len(res.Rejected))
	}
	d.mu.Lock()
	for c := range d.conns {
		c.wake()
	}
	d.mu.Unlock()
}

// close stops the writer and closes the coordinator and its store.
func (d *document) close() error {
	close(d.stop)
	<-d.done
	err := errors.Join(d.coord.Close(), d.store.Close(), d.ids.close())
	if c, ok := d.mut.(io.Closer); ok {
		err = errors.Join(err, c.Close()) // a module instance's memory
	}
	d.log.Info("document closed", "lsn", d.store.LSN())
	return err
}
