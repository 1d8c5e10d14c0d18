package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Cluster lets several coordinators share documents journaled in one
// JetStream stream (JetStreamJournal): each document has one owner at a
// time, the node holding its lease in a KV bucket, and only the owner
// opens it; the other nodes forward their clients' connections to it. A
// lease lasts TTL unless renewed (every TTL/3 while the document is open),
// so a dead owner's documents move to another node within TTL of its last
// renewal; a closed document's lease is released at once. The lease is
// for liveness only: safety is the journal's fence, which refuses a
// deposed owner's next commit even while it still runs.
type Cluster struct {
	// KV is the lease bucket (see EnsureLeases).
	KV jetstream.KeyValue
	// URL is this node's HTTP address as other nodes reach it
	// (http://host:port), where they forward connections.
	URL string
	// TTL is how long a lease lasts unrenewed; default 3 s.
	TTL time.Duration

	node string // this process's lease holder ID, random
}

// LeaseBucket is the KV bucket of document leases.
const LeaseBucket = "SQLSYNC_OWNERS"

// EnsureLeases creates (or updates) the lease bucket, whose keys expire
// ttl after their last write, kept in replicas copies.
func EnsureLeases(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   LeaseBucket,
		History:  1,
		TTL:      ttl,
		Storage:  jetstream.FileStorage,
		Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("lease bucket: %w", err)
	}
	return kv, nil
}

// leaseValue is what a lease says: who holds it, and where to reach it.
type leaseValue struct {
	Node string `json:"node"`
	URL  string `json:"url"`
}

// lease is this node's hold on one document.
type lease struct {
	c   *Cluster
	key string
	val []byte
	rev atomic.Uint64 // the epoch: the revision of the last write

	stop context.CancelFunc // ends keep, set by start
	done chan struct{}      // closed when keep has returned
}

func newLease(c *Cluster, key string, val []byte, rev uint64) *lease {
	l := &lease{c: c, key: key, val: val}
	l.rev.Store(rev)
	return l
}

// notOwnerError says another node owns a document.
type notOwnerError struct{ url string }

func (e *notOwnerError) Error() string { return "the document is owned by the coordinator at " + e.url }

func (c *Cluster) init() error {
	if c.TTL == 0 {
		c.TTL = 3 * time.Second
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	c.node = hex.EncodeToString(b[:])
	return nil
}

// leaseKey is a document's key: KV keys allow fewer characters than IDs.
func leaseKey(docID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(docID))
}

// take takes docID's lease for this node, or returns a *notOwnerError
// naming the node that holds it. It gives up after a few seconds of a
// lease that is neither free nor held (a key being expired or deleted
// while JetStream elects a leader).
func (c *Cluster) take(ctx context.Context, docID string) (*lease, error) {
	val, err := json.Marshal(leaseValue{Node: c.node, URL: c.URL})
	if err != nil {
		return nil, err
	}
	key := leaseKey(docID)
	ctx, cancel := context.WithTimeout(ctx, max(5*time.Second, 2*c.TTL))
	defer cancel()
	pause := func() error {
		select {
		case <-ctx.Done():
			return fmt.Errorf("take the lease of %s: %w", docID, ctx.Err())
		case <-time.After(20 * time.Millisecond):
			return nil
		}
	}
	for {
		rev, err := c.KV.Create(ctx, key, val)
		if err == nil {
			return newLease(c, key, val, rev), nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("take the lease of %s: %w", docID, err)
		}
		e, err := c.KV.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			// Released or expired meanwhile: try again, after a pause.
			if err := pause(); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("read the lease of %s: %w", docID, err)
		}
		var held leaseValue
		if err := json.Unmarshal(e.Value(), &held); err != nil {
			return nil, fmt.Errorf("read the lease of %s: %w", docID, err)
		}
		if held.Node == c.node {
			// Ours from before (a release that failed): renew it.
			rev, err := c.KV.Update(ctx, key, val, e.Revision())
			if err != nil {
				if err := pause(); err != nil {
					return nil, err
				}
				continue
			}
			return newLease(c, key, val, rev), nil
		}
		return nil, &notOwnerError{url: held.URL}
	}
}

// start keeps l renewed until end (see keep).
func (l *lease) start(log *slog.Logger, lost func()) {
	ctx, stop := context.WithCancel(context.Background())
	l.stop, l.done = stop, make(chan struct{})
	go func() {
		defer close(l.done)
		l.keep(ctx, log, lost)
	}()
}

// end stops renewing l and releases it, unless it was lost; it returns
// once that is done.
func (l *lease) end() {
	l.stop()
	<-l.done
}

// keep renews l every TTL/3 until ctx ends, then releases it. It calls
// lost, once, if the lease is gone (renewed by no one for TTL, or taken
// over): the document must step down.
func (l *lease) keep(ctx context.Context, log *slog.Logger, lost func()) {
	t := time.NewTicker(l.c.TTL / 3)
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			l.release(log)
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, l.c.TTL/3)
		rev, err := l.c.KV.Update(rctx, l.key, l.val, l.rev.Load())
		cancel()
		switch {
		case err == nil:
			l.rev.Store(rev)
			renewed = time.Now()
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound),
			time.Since(renewed) >= l.c.TTL:
			log.Warn("lease lost: stepping down", "err", err)
			lost()
			<-ctx.Done()
			return
		default:
			log.Warn("renew lease", "err", err) // try again until TTL runs out
		}
	}
}

// release gives l up, so that another node may take the document at once.
func (l *lease) release(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), l.c.TTL)
	defer cancel()
	if err := l.c.KV.Delete(ctx, l.key, jetstream.LastRevision(l.rev.Load())); err != nil {
		log.Warn("release lease", "err", err) // it expires by itself
	}
}
