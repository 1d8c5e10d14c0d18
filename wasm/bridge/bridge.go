// Package bridge is the browser worker's view of a [client.Doc]: byte and
// JSON values in and out, so that the syscall/js glue in package main stays
// a thin layer of conversions, and everything here runs under plain go test.
//
// Values cross as JSON. Query parameters are a JSON array of null, booleans,
// numbers (integral ones bind as INTEGER), strings and {"$blob": base64}
// objects; rows come back as {"columns": [...], "rows": [[...], ...]} with
// the same encoding, +-Infinity as 1e999 and -1e999 (which JSON.parse reads
// back as infinities), NaN as null.
package bridge

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/pagecache"
)

// Config is what the app passes to open a document.
type Config struct {
	// URL is the coordinator's sync endpoint; empty keeps the document
	// offline.
	URL string `json:"url"`
	// DocID names the document.
	DocID string `json:"docId"`
	// Storage is "opfs", "indexeddb", "memory", or "" to pick the best the
	// browser has; the worker's main package resolves it.
	Storage string `json:"storage"`
	// Token is sent to the coordinator.
	Token string `json:"token"`
	// Mutator names a registered mutator. It is ignored when Module is
	// set. With neither, the replica opens queue-only: its mutations are
	// recorded and pushed without running locally (Status.QueueOnly), for
	// a document whose mutator the worker cannot get (offline, nothing
	// cached).
	Mutator string `json:"mutator"`
	// MutatorHash is the SHA-256 (lowercase hex) of Module, when the worker
	// has checked it (it fetched the module by hash, or took it from its
	// cache under that hash); empty: computed here.
	MutatorHash string `json:"mutatorHash"`
	// Module, if set, is the document's WebAssembly mutator module, run by
	// ModuleRuntime instead of a registered mutator. The worker passes it
	// beside the JSON config.
	Module []byte `json:"-"`
	// Offline opens the document with syncing switched off.
	Offline bool `json:"offline"`
	// Presence takes part in presence (client.Options.Presence): the
	// worker publishes each tab's presence (SetPresence) and hears the
	// others' (events of type "presence").
	Presence bool `json:"presence"`
	// Lazy opens the replica lazily (client.Options.Lazy): it starts
	// with no pages, fetches those its statements read from the
	// coordinator and keeps at most CacheBytes of them in memory. Its
	// state must then hold no Store (an IndexedDB snapshot): FS keeps the
	// pending log and identity, or a PendingLog alone (IndexedDB), or
	// nothing keeps them (memory). A mutator Module's SQL runs inside a
	// call from JavaScript, where a page fetch cannot be waited for (its
	// reply is a JavaScript event): pages it lacks are fetched between
	// attempts of the call (engine.EventLoopMutator).
	Lazy bool `json:"lazy"`
	// CacheBytes bounds a lazy replica's pages (client.Options.CacheBytes),
	// or the pages an IndexedDB replica with a Module keeps in memory
	// (vfs/pagecache); 0 means client.DefaultCacheBytes.
	CacheBytes int64 `json:"cacheBytes"`
	// OnStep, if set, is called as Open passes each step, for startup
	// timings: "mutator" (the mutator built), "cached" (an IndexedDB
	// snapshot given its page cache), then client.Options.OnStep's steps.
	OnStep func(step string) `json:"-"`
	// NotifyGate is client.Options.NotifyGate: the worker's main package
	// sets it to wait for a JavaScript task.
	NotifyGate func() `json:"-"`
}

// MutatorFactory builds the mutator for a document.
type MutatorFactory func(ctx context.Context, cfg Config) (engine.Mutator, error)

var (
	regMu    sync.Mutex
	registry = map[string]MutatorFactory{}
)

// ModuleRuntime builds a document's mutator from its WebAssembly module
// (Config.Module); the browser build sets it (package wasm/jsmutator).
var ModuleRuntime func(ctx context.Context, cfg Config, logger *slog.Logger) (engine.Mutator, error)

// RegisterMutator makes a Go mutator available by name, for a program that
// compiles its mutator into its browser build (the project's own build
// registers none: documents run their WebAssembly modules).
func RegisterMutator(name string, f MutatorFactory) {
	regMu.Lock()
	defer regMu.Unlock()
	registry[name] = f
}

// Mutators returns the registered mutator names, sorted.
func Mutators() []string {
	regMu.Lock()
	defer regMu.Unlock()
	var names []string
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// State is where a replica keeps its state: FS, or Store and Log, or none
// of them for memory.
type State struct {
	FS    hackpadfs.FS
	Store vfs.Store
	Log   engine.PendingLog
	// Kind names the storage for status reports ("opfs", ...).
	Kind string
}

// Error is an error with a stable code for the JavaScript side.
type Error struct {
	code string
	err  error
}

// Error returns the underlying error's message.
func (e *Error) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.err }

// Code returns the error's code: bad_request, rejected, not_read_only,
// mutator (the document's mutator module failed to load),
// presence_too_large, offline (a lazy replica lacks a page the statement
// needs and cannot fetch it: vfs.ErrOffline), closed or internal.
func (e *Error) Code() string { return e.code }

func coded(code string, err error) error { return &Error{code: code, err: err} }

// classify gives err the code the JavaScript side acts on.
func classify(err error) error {
	var rej *engine.RejectedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &rej):
		return coded("rejected", err)
	case errors.Is(err, engine.ErrNotReadOnly):
		return coded("not_read_only", err)
	case errors.Is(err, vfs.ErrOffline):
		return coded("offline", err)
	}
	return coded("internal", err)
}

// notifyEvery is the least time between two re-runs of a document's
// subscriptions (client.Options.NotifyEvery): about a frame of a 60 Hz
// display, the most often a page shows new rows anyway. Mutations back to
// back then re-run the live queries, and send the page their rows, once per
// frame instead of once each: those re-runs cost time in proportion to
// their rows (4 ms a mutation for a 270-item list in the todo demo,
// Chromium on 2 cores), and the worker runs one thing at a time, so each
// held up the next mutation. A mutation after a quiet spell (a person
// typing) has its rows re-run at once, as before.
const notifyEvery = 16 * time.Millisecond

// Doc is an open document.
type Doc struct {
	doc   *client.Doc
	mut   engine.Mutator
	kind  string
	emit  func([]byte)
	watch func()
	// presence stops the presence watch, if the document takes part.
	presence func()

	mu     sync.Mutex
	subs   map[int]func()
	nextID int
}

// Open opens the document cfg names over state. emit receives every event
// as JSON: {"type":"status","status":{...}} or {"type":"rejected","seq":n,
// "name":..., "message":...}; it runs on the replica's goroutines and must
// not block.
func Open(ctx context.Context, cfg Config, state State, logger *slog.Logger, emit func([]byte)) (*Doc, error) {
	if cfg.DocID == "" {
		return nil, coded("bad_request", errors.New("open document: no document ID"))
	}
	if cfg.Lazy && state.Store != nil {
		return nil, coded("bad_request", errors.New("open document: a lazy replica keeps its snapshot in its page cache, not in a Store"))
	}
	if cfg.CacheBytes < 0 {
		return nil, coded("bad_request", fmt.Errorf("open document: cacheBytes %d is negative", cfg.CacheBytes))
	}
	step := func(string) {}
	if cfg.OnStep != nil {
		step = cfg.OnStep
	}
	mut, err := mutatorFor(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	step("mutator")
	if len(cfg.Module) > 0 && state.Store != nil && !cfg.Lazy {
		// The module's SQL runs inside a call from JavaScript, where an
		// IndexedDB read (a promise) would deadlock: its pages come from
		// a cache in memory, and one the cache lacks is read outside the
		// call, which then runs again (engine.EventLoopMutator).
		store, err := pagecache.New(state.Store, cmp.Or(cfg.CacheBytes, client.DefaultCacheBytes))
		if err == nil {
			err = store.Warm() // a document that fits is all in memory, as before
		}
		if err != nil {
			closeMutator(mut)
			return nil, coded("internal", fmt.Errorf("open document: %w", err))
		}
		state.Store = store
		step("cached")
	}
	opts := client.Options{
		URL:         cfg.URL,
		DocID:       cfg.DocID,
		Mutator:     mut,
		MutatorHash: moduleHash(cfg),
		FS:          state.FS,
		Store:       state.Store,
		PendingLog:  state.Log,
		Token:       cfg.Token,
		Presence:    cfg.Presence,
		Lazy:        cfg.Lazy,
		CacheBytes:  cfg.CacheBytes,
		Logger:      logger,
		OnStep:      cfg.OnStep,
		// The worker answers doc.mutate before the page gets the rows the
		// mutation changed: the re-runs wait for cfg.NotifyGate, and come
		// at most once per notifyEvery.
		NotifyAfterMutate: true,
		NotifyGate:        cfg.NotifyGate,
		NotifyEvery:       notifyEvery,
	}
	doc, err := client.Open(ctx, opts)
	if err != nil {
		closeMutator(mut)
		return nil, coded("internal", err)
	}
	if cfg.Offline {
		doc.SetOnline(false)
	}
	d := &Doc{doc: doc, mut: mut, kind: state.Kind, emit: emit, subs: map[int]func(){}}
	d.watch = doc.Watch(d.event)
	if cfg.Presence {
		d.presence = doc.WatchPresence(d.presenceEvent)
	}
	return d, nil
}

// mutatorFor builds the document's mutator: its module, the registered
// mutator cfg names, or nil (queue-only) for neither.
func mutatorFor(ctx context.Context, cfg Config, logger *slog.Logger) (engine.Mutator, error) {
	if len(cfg.Module) > 0 {
		if ModuleRuntime == nil {
			return nil, coded("bad_request", errors.New("open document: this build cannot run WebAssembly mutator modules"))
		}
		mut, err := ModuleRuntime(ctx, cfg, logger)
		if err != nil {
			return nil, coded("mutator", fmt.Errorf("open document: %w", err))
		}
		return mut, nil
	}
	name := cfg.Mutator
	if name == "" {
		return nil, nil
	}
	regMu.Lock()
	factory := registry[name]
	regMu.Unlock()
	if factory == nil {
		return nil, coded("bad_request", fmt.Errorf("open document: no mutator %q (have %v)", name, Mutators()))
	}
	mut, err := factory(ctx, cfg)
	if err != nil {
		return nil, coded("internal", fmt.Errorf("open document: mutator %s: %w", name, err))
	}
	return mut, nil
}

// moduleHash returns the SHA-256 (hex) of cfg.Module, or "" for none (a
// registered Go mutator), which the coordinator's hash is compared with:
// cfg.MutatorHash when the worker has checked it already, else computed.
func moduleHash(cfg Config) string {
	if len(cfg.Module) == 0 {
		return ""
	}
	if cfg.MutatorHash != "" {
		return cfg.MutatorHash
	}
	sum := sha256.Sum256(cfg.Module)
	return hex.EncodeToString(sum[:])
}

func closeMutator(mut engine.Mutator) {
	if c, ok := mut.(io.Closer); ok {
		c.Close()
	}
}

// Status is the JSON form of a replica's status.
type Status struct {
	State     client.State `json:"state"`
	LSN       uint64       `json:"lsn"`
	ServerLSN uint64       `json:"serverLsn"`
	Pending   int          `json:"pending"`
	LastError string       `json:"lastError"`
	Synced    bool         `json:"synced"`
	Storage   string       `json:"storage"`
	ClientID  string       `json:"clientId"`
	// LocalFailed counts, and LocalFailures lists, the pending mutations
	// that failed when the replica last replayed them: still pending,
	// without local effect, until the coordinator decides.
	LocalFailed   int            `json:"localFailed"`
	LocalFailures []LocalFailure `json:"localFailures"`
	// MutatorMismatch reports that the coordinator runs another mutator
	// module (CoordinatorMutator, its hash) than the replica: nothing is
	// pushed until the document is reopened with it (see
	// client.Status.MutatorMismatch).
	MutatorMismatch    bool   `json:"mutatorMismatch"`
	CoordinatorMutator string `json:"coordinatorMutator"`
	// QueueOnly reports a replica opened without a mutator: mutations
	// are pushed without running locally (see client.Status.QueueOnly).
	QueueOnly bool `json:"queueOnly"`
	// Presence reports that the coordinator granted presence on the
	// current connection (see client.Status.Presence).
	Presence bool `json:"presence"`
}

// LocalFailure is the JSON form of a pending mutation that failed locally.
type LocalFailure struct {
	Seq     uint64 `json:"seq"`
	Name    string `json:"name"`
	Message string `json:"message"`
}

func (d *Doc) status(s client.Status) Status {
	failures := []LocalFailure{}
	for _, f := range d.doc.LocalFailures() {
		failures = append(failures, LocalFailure{Seq: f.Seq, Name: f.Name, Message: f.Message})
	}
	return Status{State: s.State, LSN: s.LSN, ServerLSN: s.ServerLSN, Pending: s.Pending, LastError: s.LastError, Synced: s.Synced(),
		Storage: d.kind, ClientID: d.doc.ClientID(), LocalFailed: len(failures), LocalFailures: failures,
		MutatorMismatch: s.MutatorMismatch, CoordinatorMutator: s.CoordinatorMutator, QueueOnly: s.QueueOnly, Presence: s.Presence}
}

// event turns a replica event into JSON for emit.
func (d *Doc) event(e client.Event) {
	var v any
	switch {
	case e.Status != nil:
		v = map[string]any{"type": "status", "status": d.status(*e.Status)}
	case e.Rejected != nil:
		v = map[string]any{"type": "rejected", "seq": e.Rejected.Seq, "name": e.Rejected.Name, "message": e.Rejected.Message}
	case e.PresenceRefused != nil:
		r := e.PresenceRefused
		v = map[string]any{"type": "presenceRefused", "key": r.Key, "code": r.Code, "reason": r.Reason}
	case e.Progress != nil:
		p := e.Progress
		v = map[string]any{"type": "progress", "stage": "document", "loaded": p.Bytes, "total": p.TotalBytes,
			"pages": p.Pages, "totalPages": p.TotalPages, "done": p.Done, "resumed": p.Resumed}
	default:
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	d.emit(b)
}

// Status returns the replica's status as JSON.
func (d *Doc) Status() []byte {
	b, _ := json.Marshal(d.status(d.doc.Status()))
	return b
}

// Mutate runs mutation name with args (bytes the mutator decodes; JSON for
// the todo mutator) and returns its seq once it is durable locally.
func (d *Doc) Mutate(ctx context.Context, name string, args []byte) (uint64, error) {
	if name == "" {
		return 0, coded("bad_request", errors.New("mutate: no mutation name"))
	}
	seq, err := d.doc.Mutate(ctx, name, args)
	return seq, classify(err)
}

// Query runs a read-only statement with params (a JSON array, or empty) and
// returns its rows as JSON.
func (d *Doc) Query(ctx context.Context, sql string, params []byte) ([]byte, error) {
	args, err := DecodeParams(params)
	if err != nil {
		return nil, coded("bad_request", fmt.Errorf("query: %w", err))
	}
	rows, err := d.doc.Query(ctx, sql, args...)
	if err != nil {
		return nil, classify(err)
	}
	return EncodeRows(rows), nil
}

// Subscribe calls fn with the rows of a read-only query now (before it
// returns) and after every change that alters them, until Unsubscribe.
func (d *Doc) Subscribe(sql string, params []byte, fn func(rows []byte, err error)) (int, error) {
	args, err := DecodeParams(params)
	if err != nil {
		return 0, coded("bad_request", fmt.Errorf("subscribe: %w", err))
	}
	d.mu.Lock()
	d.nextID++
	id := d.nextID
	d.mu.Unlock()
	cancel := d.doc.Subscribe(sql, args, func(rows engine.Rows, err error) {
		if err != nil {
			fn(nil, classify(err))
			return
		}
		fn(EncodeRows(rows), nil)
	})
	d.mu.Lock()
	d.subs[id] = cancel
	d.mu.Unlock()
	return id, nil
}

// Unsubscribe ends subscription id.
func (d *Doc) Unsubscribe(id int) {
	d.mu.Lock()
	cancel := d.subs[id]
	delete(d.subs, id)
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Peer is the JSON form of a presence (client.Peer): State is the
// presence's JSON value itself.
type Peer struct {
	ID       string          `json:"id"`
	ClientID string          `json:"clientId"`
	ReadOnly bool            `json:"readOnly"`
	Local    bool            `json:"local"`
	Key      string          `json:"key,omitempty"`
	State    json.RawMessage `json:"state"`
}

// presenceEvent emits every presence of the document, the replica's own
// (the worker's tabs, by key) included: each tab takes out its own.
func (d *Doc) presenceEvent(peers []client.Peer) {
	out := make([]Peer, len(peers))
	for i, p := range peers {
		out[i] = Peer{ID: p.ID, ClientID: p.ClientID, ReadOnly: p.ReadOnly, Local: p.Local, Key: p.Key, State: p.State}
	}
	b, err := json.Marshal(map[string]any{"type": "presence", "peers": out})
	if err != nil {
		return
	}
	d.emit(b)
}

// SetPresence publishes state (JSON) as the presence key (a tab's); an
// empty state clears it. A state over the coordinator's limit fails with
// code presence_too_large, one that is not JSON with bad_request.
func (d *Doc) SetPresence(key string, state []byte) error {
	p := d.doc.PresenceOf(key)
	if len(state) == 0 {
		return p.Clear()
	}
	err := p.Set(json.RawMessage(state))
	switch {
	case errors.Is(err, client.ErrPresenceTooLarge):
		return coded("presence_too_large", err)
	case err != nil:
		return coded("bad_request", err)
	}
	return nil
}

// LazyStats is the JSON form of what a lazy replica fetched and holds
// (client.LazyStats).
type LazyStats struct {
	Fetches      int   `json:"fetches"`      // page requests (round trips to the coordinator)
	PagesFetched int   `json:"pagesFetched"` // pages received in replies
	Prefetched   int   `json:"prefetched"`   // of them, siblings nobody had asked for yet
	Stale        int   `json:"stale"`        // misses of a page changed since the snapshot's LSN
	Evicted      int   `json:"evicted"`      // pages dropped to stay within the cache bound
	CachedPages  int   `json:"cachedPages"`  // pages held now
	CachedBytes  int64 `json:"cachedBytes"`  // their bytes
	CacheBytes   int64 `json:"cacheBytes"`   // the bound
}

// LazyStats returns the lazy replica's counts as JSON (LazyStats), or
// null for a replica that is not lazy.
func (d *Doc) LazyStats() []byte {
	s, ok := d.doc.LazyStats()
	if !ok {
		return []byte("null")
	}
	b, _ := json.Marshal(LazyStats{Fetches: s.Fetches, PagesFetched: s.PagesFetched, Prefetched: s.Prefetched, Stale: s.Stale,
		Evicted: s.Evicted, CachedPages: s.CachedPages, CachedBytes: s.CachedBytes, CacheBytes: s.CacheBytes})
	return b
}

// SetOnline switches syncing on or off.
func (d *Doc) SetOnline(on bool) { d.doc.SetOnline(on) }

// ClientID returns the replica's client ID.
func (d *Doc) ClientID() string { return d.doc.ClientID() }

// Close ends every subscription and closes the replica.
func (d *Doc) Close() error {
	d.mu.Lock()
	subs := d.subs
	d.subs = map[int]func(){}
	d.mu.Unlock()
	for _, cancel := range subs {
		cancel()
	}
	d.watch()
	if d.presence != nil {
		d.presence()
	}
	err := d.doc.Close()
	closeMutator(d.mut)
	return err
}
