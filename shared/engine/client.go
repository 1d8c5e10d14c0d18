package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// PendingLog is a client's durable record of its mutations that the
// coordinator has not yet been seen to apply.
type PendingLog interface {
	// ClientID returns the ID of the client the log belongs to.
	ClientID() string
	// Load returns every recorded mutation in seq order.
	Load() ([]Mutation, error)
	// Append records m durably before it returns.
	Append(m Mutation) error
	// Trim forgets the mutations with seq at or below through.
	Trim(through uint64) error
}

// Change says what a local mutation or a rebase may have changed.
type Change struct {
	All    bool            // anything may have changed (a rebase, a schema change)
	Tables map[string]bool // else: the tables written
	// Failed, after a rebase, are the pending mutations that failed to
	// replay (see Client.LocalFailures).
	Failed []LocalFailure
}

// Client is a replica of one document: a snapshot at some LSN from the
// coordinator, the pending log, and a local layer holding the pending
// mutations' effect. Its methods are safe for concurrent use.
type Client struct {
	mu       sync.Mutex
	db       *vfs.Database
	conn     *sqlite3.Conn
	mut      Mutator
	log      PendingLog
	pending  []Mutation
	nextSeq  uint64
	onChange func(Change)
	opts     ClientOptions

	// failed are the pending mutations that failed in the last replay:
	// they stay pending, and the coordinator decides their fate.
	failed []LocalFailure
	// stale says the local layer lacks the pending mutations (a replay
	// failed as a whole): the next Mutate or Query replays them first.
	stale bool
	// moved closes when the snapshot's LSN next changes (see waitLSN).
	moved chan struct{}
	// rerunStale and rerunFetched count reruns after missing pages
	// (Reruns).
	rerunStale, rerunFetched atomic.Uint64

	sp *savepoints

	stmts *stmtCache // the app's queries, prepared
	own   *stmtCache // the engine's own reads, prepared

	// migratedCookie is the snapshot's schema cookie when the migration
	// last ran with nothing pending and changed nothing (migratedOK).
	migratedCookie uint32
	migratedOK     bool

	// deferTrim says the snapshot being rebuilt on is not durable yet:
	// rebuild leaves the pending log's trim, to trimTo, to settle.
	deferTrim bool
	trimTo    uint64

	written map[string]bool // tables written by the mutation running now
	// stmtWrites holds, per SQL text of the mutator's, the tables the
	// authorizer saw written while preparing it (or preparing it again):
	// what a statement run from the mutator's cache writes. curWrites is
	// the entry of the statement running now.
	stmtWrites map[string]map[string]bool
	curWrites  map[string]bool
	read       map[string]bool // tables read by the query being prepared
	refused    bool            // the authorizer refused part of the query being prepared
}

// ClientOptions tune a replica.
type ClientOptions struct {
	// MutationTimeout bounds the time of one mutation, run locally or
	// replayed; 0 means 5 s, as on the coordinator.
	MutationTimeout time.Duration
}

// LocalFailure is a pending mutation that failed when the replica replayed
// it (after a rebase, or on open): it has no effect on the local layer but
// stays pending, for the coordinator to apply or reject.
type LocalFailure struct {
	Seq     uint64
	Name    string
	Message string
}

// OpenClient opens a replica over its snapshot store and pending log, and
// rebuilds the local layer by replaying the pending mutations. It has
// ClientOptions' defaults.
func OpenClient(ctx context.Context, store vfs.Store, log PendingLog, mut Mutator) (*Client, error) {
	return OpenClientWith(ctx, store, log, mut, ClientOptions{})
}

// OpenClientWith is OpenClient with options. A pending mutation that fails
// on replay, however it fails, never keeps the replica from opening: see
// LocalFailures.
//
// A nil mut opens the replica queue-only, for a replica that cannot know its
// document's mutator (opened offline for the first time, say): Mutate
// records mutations without running them, queries see only what the
// coordinator has applied, and the coordinator runs the mutations when they
// are pushed. See QueueOnly.
func OpenClientWith(ctx context.Context, store vfs.Store, log PendingLog, mut Mutator, opts ClientOptions) (*Client, error) {
	if opts.MutationTimeout == 0 {
		opts.MutationTimeout = 5 * time.Second
	}
	db := vfs.NewDatabase(store, vfs.ClientMode)
	conn, err := db.Open()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open client: %w", err)
	}
	sp, err := prepareSavepoints(conn)
	if err != nil {
		conn.Close()
		db.Close()
		return nil, fmt.Errorf("open client: %w", err)
	}
	c := &Client{db: db, conn: conn, mut: mut, log: log, sp: sp, opts: opts,
		stmts: newStmtCache(conn, stmtCacheSize), own: newStmtCache(conn, 4)}
	if sc, ok := mut.(WatchedStatementCache); ok {
		c.stmtWrites = map[string]map[string]bool{}
		sc.CacheStatementsWatched(conn, c.watchStatement)
	}
	c.pending, err = log.Load()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open client: load pending log: %w", err)
	}
	err = conn.SetAuthorizer(func(action sqlite3.AuthorizerActionCode, name3, name4, _, _ string) sqlite3.AuthorizerReturnCode {
		if c.read != nil && !queryMayPrepare(action, name3, name4) {
			c.refused = true
			return sqlite3.AUTH_DENY
		}
		if c.read != nil && action == sqlite3.AUTH_READ {
			c.read[name3] = true
		}
		if table, ok := writes(action, name3); ok {
			if c.written != nil {
				c.written[table] = true
			}
			if c.curWrites != nil {
				// What the mutator's statement being prepared writes,
				// tracked or not (a replay's statements are kept for
				// later mutations).
				c.curWrites[table] = true
			}
		}
		return sqlite3.AUTH_OK
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open client: %w", err)
	}
	var miss *vfs.MissError
	if err := c.rebuild(ctx); err != nil && !errors.As(err, &miss) {
		c.Close()
		return nil, fmt.Errorf("open client: %w", err)
	}
	// A page the replay lacked (a cache that must read it outside a
	// mutator call, see EventLoopMutator): the first query or mutation
	// replays, reading it (stale is set).
	return c, nil
}

// OnChange sets a function called, without the client locked, after each
// local mutation and each rebase.
func (c *Client) OnChange(f func(Change)) {
	c.mu.Lock()
	c.onChange = f
	c.mu.Unlock()
}

// QueueOnly reports whether the replica was opened without a mutator: its
// mutations are recorded and pushed but have no local effect until the
// coordinator's diffs bring it.
func (c *Client) QueueOnly() bool { return c.mut == nil }

// ClientID returns the replica's client ID.
func (c *Client) ClientID() string { return c.log.ClientID() }

// LSN returns the LSN of the replica's snapshot.
func (c *Client) LSN() uint64 { return c.db.Store().LSN() }

// Database returns the replica's database.
func (c *Client) Database() *vfs.Database { return c.db }

// Pending returns a copy of the pending mutations, in seq order.
func (c *Client) Pending() []Mutation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pending)
}

// LocalFailures returns the pending mutations that failed in the latest
// replay, in seq order: each is still pending, without local effect, until
// the coordinator applies or rejects it.
func (c *Client) LocalFailures() []LocalFailure {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.failed)
}

// PendingCount returns the number of pending mutations.
func (c *Client) PendingCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Mutate runs the named mutation locally and records it in the pending log.
// When it returns nil the mutation is durable and queries see its effect.
// A mutation that fails locally, in the mutator or at COMMIT (a deferred
// constraint), returns a *RejectedError and leaves no trace: no record, no
// effect, and its seq goes to the next mutation.
//
// On a queue-only replica (see QueueOnly) the mutation is only recorded:
// it has no local effect, and only the coordinator can reject it.
//
// The record is appended only after the local COMMIT, so it is durable only
// if the COMMIT succeeded. A crash between the two loses both the effect
// (the local layer is rebuilt from the log on open) and the seq, which no
// one has seen; a record whose append failed is undone the same way.
//
// On a lazy replica (a vfs.Partial store) a mutation that reads a page
// changed since the snapshot runs again once the snapshot has it (see
// lazy.go); one that needs a page the replica lacks while offline fails
// with vfs.ErrOffline, and is not recorded.
func (c *Client) Mutate(ctx context.Context, name string, args []byte) (uint64, error) {
	var seq uint64
	err := c.retryMiss(ctx, func() (err error) {
		seq, err = c.mutate(ctx, name, args)
		return err
	})
	return seq, err
}

func (c *Client) mutate(ctx context.Context, name string, args []byte) (uint64, error) {
	c.mu.Lock()
	c.db.TakeMiss()
	if err := c.freshen(ctx); err != nil {
		c.mu.Unlock()
		return 0, fmt.Errorf("mutate %s: %w", name, err)
	}
	m := Mutation{ClientID: c.log.ClientID(), Seq: c.nextSeq, Name: name, Args: args}
	if c.mut == nil {
		if err := c.log.Append(m); err != nil {
			c.mu.Unlock()
			return 0, fmt.Errorf("mutate %s: append to pending log: %w", name, err)
		}
		c.pending = append(c.pending, m)
		c.nextSeq++
		notify := c.onChange
		c.mu.Unlock()
		if notify != nil {
			notify(Change{}) // nothing changed locally; one more pending
		}
		return m.Seq, nil
	}
	c.written = map[string]bool{}
	mctx, cancel := withTimeout(ctx, c.opts.MutationTimeout)
	err := c.withNoWait(func() error {
		return inTx(c.conn, func() error {
			if err := c.sp.run(mctx, c.mut, m); err != nil {
				return err
			}
			// A read that failed for want of a page, whatever the
			// mutator made of the error, must not commit.
			if miss := c.db.TakeMiss(); miss != nil {
				return miss
			}
			return nil
		})
	})
	cancel()
	written := c.written
	c.written, c.curWrites = nil, nil
	if miss := c.missed(err); miss != nil {
		c.mu.Unlock()
		return 0, fmt.Errorf("mutate %s: %w", name, miss)
	}
	if err != nil {
		c.mu.Unlock()
		var rej *RejectedError
		var broken *brokenTxError
		var commit *commitError
		switch {
		case errors.As(err, &rej):
		case errors.As(err, &broken), errors.As(err, &commit):
			// The transaction ended with the mutation: rolled back,
			// like any rejection.
			err = &RejectedError{Seq: m.Seq, Name: m.Name, Message: err.Error()}
		}
		return 0, fmt.Errorf("mutate %s: %w", name, err)
	}
	if err := c.log.Append(m); err != nil {
		// The effect is committed to the local layer but not recorded:
		// undo it by replaying what is recorded.
		err = fmt.Errorf("mutate %s: append to pending log: %w", name, err)
		if dropErr := c.db.DropLocal(); dropErr != nil {
			c.stale = true
		} else if rbErr := c.rebuild(ctx); rbErr != nil {
			c.stale = true
		}
		c.mu.Unlock()
		return 0, err
	}
	c.pending = append(c.pending, m)
	c.nextSeq++
	notify := c.onChange
	c.mu.Unlock()
	if notify != nil {
		notify(Change{All: written[""], Tables: written})
	}
	return m.Seq, nil
}

// freshen replays the pending mutations if an earlier replay failed as a
// whole, so a mutation or query never sees a local layer without them.
// +checklocks:c.mu
func (c *Client) freshen(ctx context.Context) error {
	if !c.stale {
		return nil
	}
	if err := c.db.DropLocal(); err != nil {
		return err
	}
	return c.rebuild(ctx)
}

// Rebase applies diffs that arrived together from the coordinator: it drops
// the local layer, applies their union to the snapshot in one atomic step,
// forgets the pending mutations the coordinator has applied, and replays the
// rest. Diffs must follow each other and the first must not start after the
// snapshot's LSN; diffs the snapshot already has are skipped.
func (c *Client) Rebase(ctx context.Context, diffs ...Diff) error {
	c.mu.Lock()
	merged, ok, err := mergeDiffs(c.db.Store().LSN(), diffs)
	if err != nil || !ok {
		c.mu.Unlock()
		return err
	}
	// A lazy replica's diffs carry only the pages it holds: new pages
	// are fetched when read.
	if _, lazy := c.db.Store().(vfs.Partial); !lazy {
		if err := checkGrowth(merged, c.db.Store().PageCount()); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	// The diff is durable on the coordinator: show it first, and make the
	// snapshot durable after (where the store can wait), so the fsync is
	// not on the path of a change to the screen. Until then the pending
	// log keeps the mutations the diff acknowledges (rebuild defers the
	// trim): a crash in between reopens to the old snapshot with them.
	sync, err := c.db.ApplyDiffDeferred(merged.Commit)
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("rebase: %w", err)
	}
	if err := c.replayOnSnapshot(ctx, sync); err != nil {
		return fmt.Errorf("rebase: %w", err)
	}
	return nil
}

// replayOnSnapshot replays the pending mutations the coordinator has not
// applied on a snapshot just replaced, tells the watcher, and, if the
// store applied it deferred, makes it durable with sync (the pending log
// keeps the mutations it acknowledges until then). The caller holds c.mu,
// which it releases.
func (c *Client) replayOnSnapshot(ctx context.Context, sync func() error) error {
	c.snapshotMoved()
	c.deferTrim = sync != nil
	err := c.rebuild(ctx)
	c.deferTrim = false
	var miss *vfs.MissError
	if errors.As(err, &miss) {
		// A lazy replica lacks a page the replay reads: the next query or
		// mutation replays (freshen), fetching it, waiting if need be.
		err = nil
	}
	notify := c.onChange
	failed := slices.Clone(c.failed)
	c.mu.Unlock()
	if err == nil && notify != nil {
		notify(Change{All: true, Failed: failed})
	}
	if sync != nil {
		err = errors.Join(err, c.settle(sync))
	}
	return err
}

// ApplyStaged ends a streamed diff: like Rebase, but the diff's pages are
// in the store's stage (see vfs.Stager), and c brings the last of them
// with the LSN and page count. The stage is committed in one atomic,
// durable step; then the pending mutations the coordinator has not applied
// are replayed on top.
func (c *Client) ApplyStaged(ctx context.Context, commit vfs.Commit) error {
	c.mu.Lock()
	if err := c.db.CommitStaged(commit); err != nil {
		c.mu.Unlock()
		return fmt.Errorf("apply streamed diff: %w", err)
	}
	if err := c.replayOnSnapshot(ctx, nil); err != nil {
		return fmt.Errorf("apply streamed diff: %w", err)
	}
	return nil
}

// settle makes a deferred snapshot durable, then trims the pending log of
// the mutations it acknowledges.
func (c *Client) settle(sync func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := sync(); err != nil {
		return fmt.Errorf("make the snapshot durable: %w", err)
	}
	if c.trimTo == 0 {
		return nil
	}
	if err := c.log.Trim(c.trimTo); err != nil {
		return fmt.Errorf("trim pending log: %w", err)
	}
	c.trimTo = 0
	return nil
}

// mergeDiffs coalesces diffs into one from the snapshot at lsn; ok is false
// when the snapshot already has them all.
func mergeDiffs(lsn uint64, diffs []Diff) (Diff, bool, error) {
	var out Diff
	pages := map[uint32][]byte{}
	have := false
	for _, d := range diffs {
		if d.LSN <= lsn {
			continue
		}
		if d.From > lsn {
			return Diff{}, false, fmt.Errorf("rebase: diff %d..%d onto snapshot %d: %w", d.From, d.LSN, lsn, ErrDiffGap)
		}
		if !have {
			out.From = d.From
		}
		have = true
		for no := range pages {
			if no > d.PageCount {
				delete(pages, no)
			}
		}
		for _, p := range d.Pages {
			pages[p.No] = p.Data
		}
		out.LSN, out.PageCount = d.LSN, d.PageCount
		lsn = d.LSN
	}
	if !have {
		return Diff{}, false, nil
	}
	for _, no := range slices.Sorted(maps.Keys(pages)) {
		out.Pages = append(out.Pages, vfs.Page{No: no, Data: pages[no]})
	}
	return out, true, nil
}

// checkGrowth refuses a diff that grows the database past count pages
// without carrying every new page. A true fast-forward diff always carries
// them, as pages that came into being count as changed; trusting a bare page
// count instead would let one bad frame make the store zero-fill up to 2^32
// pages.
func checkGrowth(d Diff, count uint32) error {
	if d.PageCount <= count {
		return nil
	}
	var have uint32
	for _, p := range d.Pages {
		if p.No > count && p.No <= d.PageCount {
			have++
		}
	}
	if want := d.PageCount - count; have != want {
		return fmt.Errorf("rebase: %w: the diff grows the database from %d to %d pages but carries %d of the %d new pages",
			vfs.ErrBadCommit, count, d.PageCount, have, want)
	}
	return nil
}

// rebuild drops acknowledged mutations and replays the rest over a fresh
// local layer. The local layer must be empty.
// +checklocks:c.mu
func (c *Client) rebuild(ctx context.Context) error {
	last, err := c.lastSeq()
	if miss := c.missed(err); miss != nil {
		c.stale = true
		return fmt.Errorf("replay: %w", miss)
	}
	if err != nil {
		return err
	}
	i := 0
	for i < len(c.pending) && c.pending[i].Seq <= last {
		i++
	}
	if i > 0 {
		if c.deferTrim {
			c.trimTo = max(c.trimTo, last)
		} else if err := c.log.Trim(last); err != nil {
			return fmt.Errorf("trim pending log: %w", err)
		}
		c.pending = slices.Clone(c.pending[i:])
	}
	c.nextSeq = last + 1
	if n := len(c.pending); n > 0 {
		c.nextSeq = max(c.nextSeq, c.pending[n-1].Seq+1)
	}
	if c.mut == nil {
		// Queue-only: nothing to replay, the snapshot is all there is.
		c.failed, c.stale = nil, false
		return nil
	}
	// On a schema it has already found current the migration changes
	// nothing (Mutator.Migrate): skip it while the snapshot's schema cookie
	// is the one it last left untouched, and with nothing to replay skip
	// the transaction too. Parsing its DDL was most of the cost of showing
	// another client's change.
	cookie, hasCookie := c.schemaCookie()
	current := hasCookie && c.migratedOK && c.migratedCookie == cookie
	if len(c.pending) == 0 && current {
		c.failed, c.stale = nil, false
		return nil
	}
	// Replay in one transaction, each mutation in its own savepoint. The
	// migration runs first so a replica that has never seen the coordinator
	// can still work offline; on an up-to-date schema it changes nothing.
	//
	// A pending mutation can fail here however it likes, even by breaking
	// the transaction (a write interrupted by the time limit, running out
	// of memory): then the replay starts over without it. It stays
	// pending either way; the coordinator decides its fate.
	skip := map[uint64]string{}
	fast := len(c.pending) > 1
	for {
		var failed []LocalFailure
		var broken *brokenTxError
		err := c.withNoWait(func() error {
			return inTx(c.conn, func() error {
				if !current {
					if err := c.mut.Migrate(ctx, c.conn); err != nil {
						return &migrateError{err}
					}
				}
				// Usually every pending mutation still succeeds: replay them
				// all in one savepoint, and only if one fails go again one
				// savepoint each.
				if fast {
					if done, err := c.sp.runAll(ctx, c.mut, c.pending, c.opts.MutationTimeout); done || err != nil {
						return err
					}
				}
				for i, m := range c.pending {
					if msg, ok := skip[m.Seq]; ok {
						failed = append(failed, LocalFailure{Seq: m.Seq, Name: m.Name, Message: msg})
						continue
					}
					mctx, cancel := withTimeout(ctx, c.opts.MutationTimeout)
					err := c.sp.run(mctx, c.mut, m)
					cancel()
					var rej *RejectedError
					var b *brokenTxError
					switch {
					case err == nil:
					case ctx.Err() != nil:
						return ctx.Err() // not the mutation's doing
					case errors.As(err, &rej):
						failed = append(failed, LocalFailure{Seq: m.Seq, Name: m.Name, Message: rej.Message})
					case errors.As(err, &b):
						return &brokenTxError{index: i, err: b.err}
					default:
						return err
					}
				}
				return nil
			})
		})
		c.curWrites = nil
		if miss := c.missed(err); miss != nil {
			// Not the mutations' doing: replay them all again later
			// (freshen), once the page can be had.
			if err == nil {
				if derr := c.db.DropLocal(); derr != nil {
					return derr
				}
			}
			c.stale = true
			return fmt.Errorf("replay: %w", miss)
		}
		var mig *migrateError
		switch {
		case err == nil:
			c.failed = failed
			c.stale = false
			if !current {
				// Only a run with nothing replayed shows whether the
				// migration alone changed anything.
				c.migratedCookie, c.migratedOK = cookie, hasCookie && len(c.pending) == 0 && !c.db.HasLocal()
			}
			return nil
		case ctx.Err() != nil, errors.As(err, &mig):
			c.stale = true
			return err
		case errors.As(err, &broken) && broken.index < 0:
			fast = false // find which one, one savepoint each
			continue
		case errors.As(err, &broken):
			m := c.pending[broken.index]
			skip[m.Seq] = "the mutation broke its transaction: " + broken.err.Error()
			fast = false
			continue
		case len(skip) < len(c.pending):
			// Nothing to pin it on (the COMMIT itself failed): open with
			// no pending mutation applied rather than not at all.
			for _, m := range c.pending {
				if _, ok := skip[m.Seq]; !ok {
					skip[m.Seq] = "the replay failed: " + err.Error()
				}
			}
			fast = false
			continue
		default:
			c.stale = true
			return err
		}
	}
}

// migrateError is a mutator that could not migrate the document.
type migrateError struct{ err error }

func (e *migrateError) Error() string { return "migrate: " + e.err.Error() }
func (e *migrateError) Unwrap() error { return e.err }

// lastSeq reads, from the snapshot, the last seq of this client the
// coordinator applied. The local layer must be empty.
// +checklocks:c.mu
func (c *Client) lastSeq() (uint64, error) {
	rows, err := c.own.run(`SELECT count(*) FROM sqlite_schema WHERE name = ?`, ClientsTable)
	if err != nil {
		return 0, fmt.Errorf("read last seq: %w", err)
	}
	if rows.Values[0][0].(int64) == 0 {
		return 0, nil
	}
	rows, err = c.own.run(lastSeqSQL, c.log.ClientID())
	if err != nil {
		return 0, fmt.Errorf("read last seq: %w", err)
	}
	return parseLastSeq(rows, c.log.ClientID())
}

// ErrNotReadOnly reports a query that would write: writes go through mutations.
var ErrNotReadOnly = errors.New("statement writes: use a mutation")

// Query runs a read-only statement on the replica, pending mutations included.
func (c *Client) Query(sql string, args ...any) (Rows, error) {
	rows, _, err := c.QueryTables(sql, args...)
	return rows, err
}

// QueryTables is Query that also returns the tables the statement reads, to
// decide which changes can alter its result.
//
// On a lazy replica a query that reads a page changed since the snapshot
// runs again once the snapshot has it (see lazy.go).
func (c *Client) QueryTables(sql string, args ...any) (Rows, map[string]bool, error) {
	var rows Rows
	var tables map[string]bool
	err := c.retryMiss(context.Background(), func() (err error) {
		rows, tables, err = c.queryTables(sql, args...)
		return err
	})
	return rows, tables, err
}

func (c *Client) queryTables(sql string, args ...any) (Rows, map[string]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.db.TakeMiss()
	if err := c.freshen(context.Background()); err != nil {
		if miss := c.missed(err); miss != nil {
			return Rows{}, nil, fmt.Errorf("query: %w", miss)
		}
		return Rows{}, nil, fmt.Errorf("query: %w", err)
	}
	c.read, c.refused = map[string]bool{}, false
	rows, err := c.query(sql, args...)
	tables := c.read
	c.read = nil
	if miss := c.missed(err); miss != nil {
		return Rows{}, nil, fmt.Errorf("query: %w", miss)
	}
	return rows, tables, err
}

// queryMayPrepare reports whether a query may contain the action the
// authorizer is asked about. sqlite3_stmt_readonly holds for statements that
// write nothing to the file but change the connection: BEGIN or SAVEPOINT
// would leave it in a transaction, so no mutation or rebase could run, and
// ATTACH or a pragma given a value (query_only, locking_mode, ...) would
// change how it works for every later mutation.
func queryMayPrepare(action sqlite3.AuthorizerActionCode, name3, name4 string) bool {
	switch action {
	case sqlite3.AUTH_TRANSACTION, sqlite3.AUTH_SAVEPOINT, sqlite3.AUTH_ATTACH, sqlite3.AUTH_DETACH:
		return false
	case sqlite3.AUTH_PRAGMA:
		return name4 == "" || queryPragmas[strings.ToLower(name3)]
	}
	return true
}

// queryPragmas are the pragmas that take an argument and only read.
var queryPragmas = map[string]bool{
	"foreign_key_check": true, "foreign_key_list": true, "index_info": true, "index_list": true,
	"index_xinfo": true, "integrity_check": true, "quick_check": true, "table_info": true,
	"table_list": true, "table_xinfo": true,
}

// +checklocks:c.mu
func (c *Client) query(sql string, args ...any) (Rows, error) {
	e, err := c.stmts.get(sql, func(e *cachedStmt) error {
		if !e.Stmt.ReadOnly() {
			return ErrNotReadOnly
		}
		e.Val = maps.Clone(c.read)
		return nil
	})
	if err != nil {
		if c.refused && !errors.Is(err, ErrNotReadOnly) {
			return Rows{}, fmt.Errorf("query: %w: %v", ErrNotReadOnly, err)
		}
		return Rows{}, fmt.Errorf("query: %w", err)
	}
	// Preparing filled c.read on a miss; on a hit the cache knows. If the
	// schema changed, SQLite prepares the statement again as it steps, and
	// the authorizer adds what it reads now (or refuses it).
	maps.Copy(c.read, e.Val)
	rows, err := sqlrows.Collect(e.Stmt, args...)
	if err != nil {
		c.stmts.drop(sql)
		if c.refused {
			return Rows{}, fmt.Errorf("query: %w: %v", ErrNotReadOnly, err)
		}
		return Rows{}, fmt.Errorf("query: %w", err)
	}
	if len(c.read) != len(e.Val) {
		e.Val = maps.Clone(c.read)
	}
	return rows, nil
}

// writes reports the table an authorizer action writes: "" for a schema
// change, which every query may see.
func writes(action sqlite3.AuthorizerActionCode, name3 string) (table string, ok bool) {
	switch action {
	case sqlite3.AUTH_INSERT, sqlite3.AUTH_UPDATE, sqlite3.AUTH_DELETE:
		return name3, true
	case sqlite3.AUTH_CREATE_TABLE, sqlite3.AUTH_DROP_TABLE, sqlite3.AUTH_ALTER_TABLE,
		sqlite3.AUTH_CREATE_INDEX, sqlite3.AUTH_DROP_INDEX, sqlite3.AUTH_CREATE_VIEW, sqlite3.AUTH_DROP_VIEW:
		return "", true
	}
	return "", false
}

// stmtWritesMax bounds the SQL texts whose written tables a replica
// remembers; past it the record starts over, and a kept statement it no
// longer knows counts as writing everything.
const stmtWritesMax = 1024

// watchStatement hears of each statement the mutator runs, before it is
// prepared (kept false) or run from the mutator's cache (kept true). It
// runs inside the mutator's call, which holds c.mu.
//
// Statements of migrations and replays are recorded too, though those
// calls track no writes: what they prepare is kept for later mutations.
func (c *Client) watchStatement(sql []byte, kept bool) {
	c.curWrites = nil
	w, seen := c.stmtWrites[string(sql)]
	if kept && c.written != nil {
		if !seen {
			c.written[""] = true // forgotten (the record started over): assume everything
		} else {
			maps.Copy(c.written, w)
		}
	}
	if !seen {
		if kept {
			return // its preparation went unheard: record nothing partial
		}
		if len(c.stmtWrites) >= stmtWritesMax {
			clear(c.stmtWrites)
		}
		w = map[string]bool{}
		c.stmtWrites[string(sql)] = w
	}
	// Preparing it now, or SQLite preparing a kept one again as it steps
	// after a schema change, reports through the authorizer into w.
	c.curWrites = w
}

// schemaCookie reads the snapshot's schema cookie (the header field SQLite
// changes with every schema change); ok is false for an empty snapshot.
// +checklocks:c.mu
func (c *Client) schemaCookie() (cookie uint32, ok bool) {
	store := c.db.Store()
	if store.PageCount() == 0 {
		return 0, false
	}
	var page [vfs.PageSize]byte
	if err := store.ReadPage(1, page[:]); err != nil {
		return 0, false
	}
	return binary.BigEndian.Uint32(page[40:44]), true
}

// Close closes the replica's connection. The store and log stay open.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var forget error
	if sc, ok := c.mut.(WatchedStatementCache); ok {
		// Before the connection closes: it cannot while they are kept.
		forget = sc.ForgetStatements(c.conn)
	}
	err := errors.Join(forget, c.stmts.close(), c.own.close(), c.sp.close(), c.conn.Close())
	c.db.Close()
	return err
}
