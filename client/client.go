// Package client is the Go API of a sqlsync replica: open a document, run
// mutations locally, query and subscribe, while a background loop keeps it
// in sync with the coordinator over WebSocket. The CLI, the tests and the
// browser build all use it.
package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hack-pad/hackpadfs"
	osfs "github.com/hack-pad/hackpadfs/os"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/filestore"
	"github.com/sqlsync-go/sqlsync/vfs/lazystore"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// Options say which document to open and how.
//
// The replica's state (snapshot, pending log, client ID and its secret) is
// kept in one of three ways, chosen by setting exactly one of:
//
//   - StateDir: a directory on disk;
//   - FS: a hackpadfs file system (the browser's OPFS, for one);
//   - Store and PendingLog, both (the browser's IndexedDB, for one).
//
// With none of them set the state lives in memory and dies with the Doc.
// Open fails on any other combination (StateDir with FS, Store without
// PendingLog, Store and PendingLog with StateDir or FS, ...), before it takes
// anything over.
type Options struct {
	// URL is the coordinator's sync endpoint (ws://host:port/v1/sync). If
	// empty the document stays offline.
	URL string
	// URLs are more coordinators of the same cluster (sync endpoints, as
	// URL): when a connection attempt fails before the coordinator
	// welcomes the replica, the next attempt goes to the next of URL and
	// URLs, in turn. Status.URL says which one the replica uses.
	URLs []string
	// DocID names the document.
	DocID string
	// Mutator runs the document's mutations locally. Nil opens the replica
	// queue-only (Status.QueueOnly): for a replica that cannot know its
	// document's mutator, its mutations are recorded and pushed without
	// running locally, and take effect when the coordinator's diffs come.
	Mutator engine.Mutator
	// MutatorHash is the SHA-256 (lowercase hex) of the WebAssembly module
	// Mutator runs, or empty for a built-in Go mutator or when unknown. If
	// the coordinator announces a different module (Welcome.MutatorHash),
	// the replica stops pushing: see Status.MutatorMismatch.
	MutatorHash string
	// StateDir keeps the replica's state in this directory on disk, under
	// the document's ID, so it survives restarts. It excludes FS, Store and
	// PendingLog.
	StateDir string
	// FS keeps the replica's state in this file system, under the
	// document's ID. It excludes StateDir, Store and PendingLog.
	FS hackpadfs.FS
	// Store and PendingLog, set together, hold the replica's state
	// themselves; they exclude StateDir and FS. The Doc takes them over:
	// Close closes them (PendingLog if it has a Close method). A
	// PendingLog that is a SecretKeeper binds the client ID to its
	// secret; one that is not leaves the ID unbound (see SecretKeeper).
	Store      vfs.Store
	PendingLog engine.PendingLog
	// Token is sent to the coordinator in Hello.
	Token string
	// MinBackoff and MaxBackoff bound the wait between reconnects;
	// defaults 100 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives the replica's logs; default slog.Default().
	Logger *slog.Logger
	// OnStep, if set, is called as Open passes each step of opening the
	// replica, for startup timings: "state" (snapshot store and pending
	// log open) and "replayed" (the pending mutations replayed: ready).
	OnStep func(step string)
	// Watch, if set, is a watcher installed before the replica connects, as
	// Doc.Watch would install it: it misses no event, not even one that
	// arrives before Open returns (a rejection of a mutation queued by an
	// earlier process, say).
	Watch func(Event)
	// NotifyAfterMutate makes the subscriptions a change touches re-run,
	// and the status event go out, on a goroutine of their own instead of
	// inside Mutate (or the rebase), so Mutate returns without waiting for
	// them: a caller that answers Mutate across a message channel (the
	// browser worker, single-threaded) answers before it sends rows.
	// Changes that queue up meanwhile are merged into one re-run.
	NotifyAfterMutate bool
	// NotifyGate, if set with NotifyAfterMutate, is called by the notifier
	// before each re-run: under GOOS=js, where Go hands control back to
	// JavaScript only once every goroutine waits, a gate that waits for a
	// JavaScript task lets the answer to Mutate go out first.
	NotifyGate func()
	// NotifyEvery, with NotifyAfterMutate, is the least time from the end
	// of one re-run of the subscriptions to the start of the next: a
	// change that comes sooner waits until then, merged with every change
	// that comes meanwhile, so that mutations back to back (or a rebase
	// after each of a stream of diffs) re-run the subscriptions once per
	// NotifyEvery rather than once each, and are not held up by those
	// re-runs. A change after a quiet spell re-runs them at once. Zero
	// re-runs them for every change.
	NotifyEvery time.Duration
	// Dial opens the transport; default: WebSocket.
	Dial Dialer
	// Lazy opens the replica lazily (protocol.CapLazy): its snapshot
	// holds only the pages its queries and mutations have read, in
	// memory, at most CacheBytes of them, least recently used dropped
	// first; a statement that reads a page the replica lacks fetches it
	// from the coordinator, and waits. Diffs carry only the changes of
	// pages it holds. Offline, a statement that needs a page the replica
	// lacks fails with vfs.ErrOffline (a mutation so failed is not
	// recorded). The pending log and identity are kept as without Lazy
	// (StateDir, FS, or memory); the snapshot is not: each Open starts
	// with no pages. Lazy excludes Store; a PendingLog alone (IndexedDB's, in
	// the browser) keeps the pending mutations and identity.
	Lazy bool
	// CacheBytes bounds a lazy replica's pages; 0 means DefaultCacheBytes
	// (and at least lazystore.MinCacheBytes are kept).
	CacheBytes int64
	// Presence asks the coordinator for presence (protocol.CapPresence):
	// the replica publishes its presences (Doc.Presence) and learns the
	// other clients'. Without it a replica takes no part in presence.
	Presence bool
}

// State is the replica's connection state.
type State string

// Connection states.
const (
	Offline    State = "offline"    // not connected (no URL, switched off, or between attempts)
	Connecting State = "connecting" // dialling or waiting for the first diff
	Online     State = "online"     // connected and caught up with what the coordinator sent
	Stopped    State = "stopped"    // the coordinator refused the replica for good (see LastError)
)

// Status is a snapshot of the replica's sync state.
type Status struct {
	State     State
	LSN       uint64 // the snapshot's LSN
	ServerLSN uint64 // the newest LSN the coordinator told of
	Pending   int    // mutations not yet seen applied by the coordinator
	// LocalFailed counts the pending mutations that failed when the
	// replica last replayed them (on open or after a rebase): they have no
	// local effect but stay pending until the coordinator applies or
	// rejects them. Doc.LocalFailures lists them; a status event follows
	// every change of that list.
	LocalFailed int
	LastError   string // the last connection error or refusal
	// URL is the coordinator the replica is connected to, or tries next
	// (Options.URL or one of Options.URLs).
	URL string
	// QueueOnly reports a replica opened without a mutator
	// (Options.Mutator nil): Mutate records and pushes mutations without
	// running them, so queries show them only once the coordinator has
	// applied them, and only the coordinator can reject them.
	QueueOnly bool
	// CoordinatorMutator is the hash of the mutator module the coordinator
	// announced in its last Welcome ("" for a built-in Go mutator).
	CoordinatorMutator string
	// MutatorMismatch reports that the coordinator runs a different
	// mutator module than Options.MutatorHash: the replica still takes
	// the coordinator's diffs, so queries stay correct for everything
	// the coordinator applied, but it pushes nothing (its local results
	// would diverge from the coordinator's), so its pending mutations wait
	// until the document is reopened with the coordinator's module.
	// LastError says which hashes differ; WaitSynced fails with
	// ErrMutatorMismatch while mutations are pending.
	MutatorMismatch bool
	// Presence reports that the coordinator granted presence on the
	// current connection (Options.Presence asked for it).
	Presence bool
}

// Synced reports whether the replica is online with nothing pending and has
// everything the coordinator told of.
func (s Status) Synced() bool {
	return s.State == Online && s.Pending == 0 && s.LSN >= s.ServerLSN
}

// Event is something the app may want to show: a status change or a
// mutation the coordinator rejected.
type Event struct {
	Status   *Status
	Rejected *engine.RejectedError
	// PresenceRefused is a presence update the coordinator refused.
	PresenceRefused *PresenceRefusal
	// Progress tells how far a large download has come: the coordinator
	// streams a diff of many pages (a first sync of a large document, or
	// a replica far behind), and an event follows each frame staged and
	// the download's end (Done).
	Progress *Progress
}

// Progress is how far a streamed download has come. A download that broke
// off resumes where it stood, with the counts it had.
type Progress struct {
	Pages, TotalPages uint64 // pages received, and to receive in all as far as known
	Bytes, TotalBytes uint64 // the same in page bytes
	Done              bool   // the download is applied: queries show it
	// Resumed marks the event a download that broke off sends when it
	// resumes: Pages is what it had staged.
	Resumed bool
}

func progressOf(p syncwire.Progress, done bool) *Progress {
	b, tb := p.Bytes()
	return &Progress{Pages: p.Pages, TotalPages: p.Total, Bytes: b, TotalBytes: tb, Done: done}
}

// Doc is an open document replica.
type Doc struct {
	opts  Options
	eng   *engine.Client
	store vfs.Store
	log   engine.PendingLog
	lg    *slog.Logger
	// secret proves to the coordinator that the replica owns its client
	// ID (Hello.Secret); "" for a PendingLog that keeps none.
	secret string

	mu       sync.Mutex
	status   Status
	failures []engine.LocalFailure // as of the last status event
	watchers map[int]func(Event)
	subs     map[int]*subscription
	nextID   int
	online   bool // the app wants to be online
	kick     chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}
	closed   bool
	closers  []func() error
	pushWake chan struct{}
	// pushBatch is the most mutations in one Push frame; only the sync
	// loop's goroutine uses it.
	pushBatch int
	// With Options.NotifyAfterMutate: the changes waiting for the
	// notifier goroutine, merged, and its wake-up and end.
	notifyMu   sync.Mutex
	notifyNext *engine.Change
	notifyWake chan struct{}
	notifyDone chan struct{}
	// presence is the replica's presences and the others' (presence.go).
	presence *presence
}

// Open opens (creating if needed) the replica of opts.DocID and, if a URL
// is set, starts syncing it.
func Open(ctx context.Context, opts Options) (*Doc, error) {
	if opts.DocID == "" {
		return nil, errors.New("open document: no document ID")
	}
	if opts.URL == "" && len(opts.URLs) > 0 {
		return nil, errors.New("open document: URLs without URL: the first coordinator goes in URL")
	}
	if err := checkStorage(opts); err != nil {
		return nil, fmt.Errorf("open document %s: %w", opts.DocID, err)
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Dial == nil {
		opts.Dial = dialWebSocket
	}
	d := &Doc{
		opts:      opts,
		lg:        opts.Logger.With("doc", opts.DocID),
		watchers:  map[int]func(Event){},
		subs:      map[int]*subscription{},
		online:    opts.URL != "",
		kick:      make(chan struct{}, 1),
		pushWake:  make(chan struct{}, 1),
		pushBatch: pushBatch,
		done:      make(chan struct{}),
		status:    Status{State: Offline, QueueOnly: opts.Mutator == nil, URL: opts.URL},
		presence:  newPresence(),
	}
	step := func(string) {}
	if opts.OnStep != nil {
		step = opts.OnStep
	}
	if err := d.openState(); err != nil {
		d.closeState()
		return nil, fmt.Errorf("open document %s: %w", opts.DocID, err)
	}
	step("state")
	eng, err := engine.OpenClient(ctx, d.store, d.log, opts.Mutator)
	if err != nil {
		d.closeState()
		return nil, fmt.Errorf("open document %s: %w", opts.DocID, err)
	}
	step("replayed")
	if opts.Mutator == nil {
		d.lg.Info("no mutator: mutations are queued and pushed without running locally")
	}
	d.eng = eng
	d.presence.clientID = eng.ClientID()
	d.closers = append([]func() error{eng.Close}, d.closers...)
	d.failures = eng.LocalFailures()
	d.status.LSN, d.status.Pending, d.status.LocalFailed = eng.LSN(), eng.PendingCount(), len(d.failures)
	loopCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	if opts.NotifyAfterMutate {
		d.notifyWake = make(chan struct{}, 1)
		d.notifyDone = make(chan struct{})
		eng.OnChange(d.queueChange)
		go d.notifier(loopCtx)
	} else {
		eng.OnChange(d.changed)
	}
	if opts.Watch != nil {
		d.Watch(opts.Watch)
	}
	go d.syncLoop(loopCtx)
	return d, nil
}

// queueChange hands ch to the notifier goroutine, merged with any change
// still waiting for it.
func (d *Doc) queueChange(ch engine.Change) {
	d.notifyMu.Lock()
	if next := d.notifyNext; next == nil {
		d.notifyNext = &engine.Change{All: ch.All, Tables: maps.Clone(ch.Tables), Failed: ch.Failed}
	} else {
		next.All = next.All || ch.All
		if next.Tables == nil {
			next.Tables = map[string]bool{}
		}
		maps.Copy(next.Tables, ch.Tables)
		next.Failed = ch.Failed
	}
	d.notifyMu.Unlock()
	select {
	case d.notifyWake <- struct{}{}:
	default:
	}
}

// notifier re-runs subscriptions for queued changes until ctx ends, at
// most once per Options.NotifyEvery.
func (d *Doc) notifier(ctx context.Context) {
	defer close(d.notifyDone)
	var last time.Time // when the last re-run ended
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.notifyWake:
		}
		d.notifyMu.Lock()
		queued := d.notifyNext != nil
		d.notifyMu.Unlock()
		if !queued {
			continue // merged into the last re-run
		}
		if wait := d.opts.NotifyEvery - time.Since(last); d.opts.NotifyEvery > 0 && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if d.opts.NotifyGate != nil {
			d.opts.NotifyGate()
		}
		// Taken after the waits: what came meanwhile runs now too.
		d.notifyMu.Lock()
		ch := d.notifyNext
		d.notifyNext = nil
		d.notifyMu.Unlock()
		d.changed(*ch)
		last = time.Now()
	}
}

// checkStorage reports a half-set or conflicting choice of where the
// replica's state lives (see Options).
func checkStorage(opts Options) error {
	switch {
	case opts.Lazy && opts.Store != nil:
		return errors.New("Lazy keeps the snapshot in its own cache: it excludes Store (a PendingLog alone keeps the pending mutations)")
	case opts.Lazy && opts.PendingLog != nil && (opts.StateDir != "" || opts.FS != nil):
		return errors.New("PendingLog replaces StateDir and FS: set one way to keep the state")
	case !opts.Lazy && (opts.Store == nil) != (opts.PendingLog == nil):
		return errors.New("Store and PendingLog go together: set both or neither (or, with Lazy, PendingLog alone)")
	case opts.StateDir != "" && opts.FS != nil:
		return errors.New("StateDir and FS are alternatives: set one")
	case opts.Store != nil && (opts.StateDir != "" || opts.FS != nil):
		return errors.New("Store and PendingLog replace StateDir and FS: set one way to keep the state")
	case opts.CacheBytes < 0:
		return errors.New("CacheBytes is negative")
	}
	return nil
}

// snapshotStore returns full, or for a lazy replica its page cache.
func (d *Doc) snapshotStore(full vfs.Store) vfs.Store {
	if !d.opts.Lazy {
		return full
	}
	store := lazystore.New(cmp.Or(d.opts.CacheBytes, DefaultCacheBytes))
	d.closers = append(d.closers, store.Close)
	return store
}

// openState opens the state storage opts chose; checkStorage has passed.
func (d *Doc) openState() error {
	if d.opts.PendingLog != nil {
		d.store, d.log = d.opts.Store, d.opts.PendingLog
		if d.opts.Lazy {
			d.store = d.snapshotStore(nil)
		} else {
			d.closers = append(d.closers, d.store.Close)
		}
		if c, ok := d.log.(interface{ Close() error }); ok {
			d.closers = append(d.closers, c.Close)
		}
		if k, ok := d.log.(SecretKeeper); ok {
			secret, err := k.ClientSecret()
			if err != nil {
				return fmt.Errorf("client secret: %w", err)
			}
			d.secret = secret
		} else {
			d.lg.Debug("the pending log keeps no client secret: the client ID is not bound to this replica")
		}
		return nil
	}
	fsys := d.opts.FS
	if fsys == nil && d.opts.StateDir != "" {
		root, err := osfs.NewFS().Sub(toFSPath(d.opts.StateDir))
		if err != nil {
			return err
		}
		fsys = root
	}
	if fsys == nil {
		d.store = d.snapshotStore(memstore.New())
		d.log = pendinglog.NewMemory(pendinglog.NewClientID())
		d.secret = newSecret() // lives and dies with the client ID
		return nil
	}
	dir := d.opts.DocID
	if err := hackpadfs.MkdirAll(fsys, dir, 0o755); err != nil {
		return err
	}
	if d.opts.Lazy {
		d.store = d.snapshotStore(nil)
	} else {
		store, err := filestore.Open(fsys, dir+"/snapshot")
		if err != nil {
			return err
		}
		d.store = store
		d.closers = append(d.closers, store.Close)
	}
	log, err := pendinglog.Open(fsys, dir+"/pending")
	if err != nil {
		return err
	}
	d.log = log
	d.closers = append(d.closers, log.Close)
	d.secret, err = loadSecret(fsys, dir+"/"+identityFile, log.ClientID())
	return err
}

func (d *Doc) closeState() error {
	var errs []error
	for _, c := range d.closers {
		errs = append(errs, c())
	}
	d.closers = nil
	return errors.Join(errs...)
}

// ClientID returns the replica's client ID.
func (d *Doc) ClientID() string { return d.eng.ClientID() }

// Engine returns the replica's document engine.
func (d *Doc) Engine() *engine.Client { return d.eng }

// Mutate runs the named mutation locally and queues it for the coordinator.
// args is sent as is if it is []byte or json.RawMessage, else as its JSON.
// When Mutate returns nil the mutation is durable locally and queries see it.
func (d *Doc) Mutate(ctx context.Context, name string, args any) (uint64, error) {
	var raw []byte
	switch a := args.(type) {
	case []byte:
		raw = a
	case json.RawMessage:
		raw = a
	default:
		var err error
		if raw, err = json.Marshal(args); err != nil {
			return 0, fmt.Errorf("mutate %s: encode args: %w", name, err)
		}
	}
	seq, err := d.eng.Mutate(ctx, name, raw)
	if err != nil {
		return 0, err
	}
	if d.opts.NotifyAfterMutate {
		// The status (one more pending) goes out now, not with the
		// deferred re-runs: whoever hears Mutate return must not see a
		// status from before it.
		d.setStatus(func(*Status) {})
	}
	select {
	case d.pushWake <- struct{}{}:
	default:
	}
	return seq, nil
}

// Query runs a read-only statement, pending mutations included.
func (d *Doc) Query(ctx context.Context, sql string, args ...any) (engine.Rows, error) {
	return d.eng.Query(sql, args...)
}

// Status returns the replica's sync state now.
func (d *Doc) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status
	s.LSN, s.Pending = d.eng.LSN(), d.eng.PendingCount()
	s.LocalFailed = len(d.eng.LocalFailures())
	return s
}

// LocalFailures returns the pending mutations that failed when the replica
// last replayed them, in seq order, with the mutator's or SQLite's message.
// Each stays pending, without local effect, until the coordinator applies
// it (its effect then arrives in a diff) or rejects it (a Rejected event).
func (d *Doc) LocalFailures() []engine.LocalFailure {
	return d.eng.LocalFailures()
}

// Watch calls f for every event until the returned function is called.
// f runs on the replica's goroutines and must not block.
func (d *Doc) Watch(f func(Event)) (stop func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := d.nextID
	d.nextID++
	d.watchers[id] = f
	return func() {
		d.mu.Lock()
		delete(d.watchers, id)
		d.mu.Unlock()
	}
}

func (d *Doc) emit(e Event) {
	d.mu.Lock()
	ws := make([]func(Event), 0, len(d.watchers))
	for _, w := range d.watchers {
		ws = append(ws, w)
	}
	d.mu.Unlock()
	for _, w := range ws {
		w(e)
	}
}

// setStatus updates the status and emits it if it changed, or if the list
// of local failures did.
func (d *Doc) setStatus(f func(*Status)) {
	d.mu.Lock()
	failures := d.eng.LocalFailures()
	old := d.status
	f(&d.status)
	d.status.LSN, d.status.Pending, d.status.LocalFailed = d.eng.LSN(), d.eng.PendingCount(), len(failures)
	s := d.status
	changed := !slices.Equal(failures, d.failures)
	d.failures = failures
	d.mu.Unlock()
	if s != old || changed {
		d.emit(Event{Status: &s})
	}
}

// WaitSynced waits until Status().Synced() holds, the replica is stopped,
// its mutator is not the coordinator's while mutations are pending
// (ErrMutatorMismatch), or ctx ends.
func (d *Doc) WaitSynced(ctx context.Context) error {
	ch := make(chan struct{}, 1)
	stop := d.Watch(func(Event) {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	defer stop()
	for {
		s := d.Status()
		if s.Synced() {
			return nil
		}
		if s.State == Stopped {
			return fmt.Errorf("wait for sync: %w: %s", ErrStopped, s.LastError)
		}
		if s.MutatorMismatch && s.Pending > 0 {
			return fmt.Errorf("wait for sync: %w: %s", ErrMutatorMismatch, s.LastError)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for sync (%s, %d pending, LSN %d of %d): %w", s.State, s.Pending, s.LSN, s.ServerLSN, ctx.Err())
		}
	}
}

// ErrStopped reports a replica the coordinator refused for good.
var ErrStopped = errors.New("sync stopped")

// ErrMutatorMismatch reports a replica whose mutator module is not the
// coordinator's: it pushes nothing until reopened with the coordinator's
// module (see Status.MutatorMismatch).
var ErrMutatorMismatch = errors.New("mutator mismatch")

// SetOnline switches syncing on or off, as a "go offline" switch does; local
// mutations go on either way.
func (d *Doc) SetOnline(on bool) {
	d.mu.Lock()
	d.online = on && d.opts.URL != ""
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Close stops syncing and closes the replica.
func (d *Doc) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	<-d.done
	if d.notifyDone != nil {
		<-d.notifyDone
	}
	return d.closeState()
}

// subscription is one live query.
type subscription struct {
	sql    string
	args   []any
	fn     func(engine.Rows, error)
	mu     sync.Mutex
	last   *engine.Rows
	tables map[string]bool // tables the query read last time
	// cancelled is set by the subscription's cancel: a re-run that took
	// the subscription before it was removed calls fn no more.
	cancelled atomic.Bool
}

// affected reports whether ch may alter the subscription's rows.
func (s *subscription) affected(ch engine.Change) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch.All || s.tables == nil {
		return true
	}
	for t := range ch.Tables {
		if s.tables[t] {
			return true
		}
	}
	return false
}

// Subscribe calls fn with the rows of a read-only query now and again after
// every change that alters them, until the returned function is called.
func (d *Doc) Subscribe(sql string, args []any, fn func(engine.Rows, error)) (cancel func()) {
	s := &subscription{sql: sql, args: args, fn: fn}
	d.mu.Lock()
	id := d.nextID
	d.nextID++
	d.subs[id] = s
	d.mu.Unlock()
	d.rerun(s)
	return func() {
		s.cancelled.Store(true) // a re-run already under way calls fn no more
		d.mu.Lock()
		delete(d.subs, id)
		d.mu.Unlock()
	}
}

func (d *Doc) rerun(s *subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelled.Load() {
		return
	}
	rows, tables, err := d.eng.QueryTables(s.sql, s.args...)
	s.tables = tables
	if err == nil && s.last != nil && reflect.DeepEqual(*s.last, rows) {
		return
	}
	if err == nil {
		s.last = &rows
	}
	if s.cancelled.Load() {
		return
	}
	s.fn(rows, err)
}

// changed re-runs, after a local mutation or a rebase, the subscriptions
// whose tables it may have touched.
func (d *Doc) changed(ch engine.Change) {
	d.mu.Lock()
	subs := make([]*subscription, 0, len(d.subs))
	for _, s := range d.subs {
		subs = append(subs, s)
	}
	d.mu.Unlock()
	for _, s := range subs {
		if s.affected(ch) {
			d.rerun(s)
		}
	}
	d.setStatus(func(*Status) {})
	// A rebase may have acknowledged the push in flight.
	select {
	case d.pushWake <- struct{}{}:
	default:
	}
}
