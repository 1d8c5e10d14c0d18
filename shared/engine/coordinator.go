package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// ClientsTable is the table, inside every document, where the coordinator
// records the last seq it applied for each client.
const ClientsTable = "__sqlsync_clients"

const clientsSchema = `CREATE TABLE IF NOT EXISTS ` + ClientsTable + `(
	client_id TEXT PRIMARY KEY NOT NULL,
	last_seq INTEGER NOT NULL
) WITHOUT ROWID`

// CoordinatorOptions tune a coordinator document.
type CoordinatorOptions struct {
	// MutationTimeout bounds the time of one mutation's SQL; 0 means 5 s.
	MutationTimeout time.Duration
	// BatchTimeout bounds the time one Apply spends starting mutations:
	// those it leaves no time for come back in Result.Deferred. The first
	// mutation of each Apply always gets its whole MutationTimeout, so
	// every Apply makes progress. 0 means twice MutationTimeout.
	BatchTimeout time.Duration
	// MaxPages bounds the document's size in pages: a mutation that would
	// grow it beyond is rejected. 0 means no limit.
	MaxPages int64
	// MaxHeapBytes bounds the memory SQLite may use for the document's
	// writer: a mutation that needs more fails alone. 0 means 512 MiB.
	MaxHeapBytes int64
	// MutatorHash, if set, names the mutator module; the document records
	// the hash it was last migrated with in MetaTable.
	MutatorHash string
	// RecordRejections, if set, is called inside each of Apply's
	// transactions that rejects mutations, just before its COMMIT, with
	// the LSN the commit will have and the rejections: to record them
	// durably beside the document, so that no rejection is lost in a crash
	// after the commit. An error rolls the transaction back (the Apply
	// fails, or defers the rest if an earlier commit landed). If the
	// COMMIT then fails, undo is called; after a crash, records beyond
	// the document's LSN are the caller's to forget.
	RecordRejections func(lsn uint64, rejected []Rejection) (undo func(), err error)
}

// MetaTable is the table, inside every document, where the coordinator
// records facts about the document itself, such as the mutator it was last
// migrated with (key "mutator_hash").
const MetaTable = "__sqlsync_meta"

const metaSchema = `CREATE TABLE IF NOT EXISTS ` + MetaTable + `(
	key TEXT PRIMARY KEY NOT NULL,
	value ANY
) WITHOUT ROWID`

// Coordinator is the authority of one document: it puts mutations in one
// order, applies them, and serves fast-forward diffs. Apply must not be
// called concurrently; Diff and the read methods may run alongside it.
type Coordinator struct {
	db   *vfs.Database
	conn *sqlite3.Conn // the single writer
	mut  Mutator
	opts CoordinatorOptions

	lastSeq map[string]uint64 // cache of ClientsTable; reloaded after a failed commit

	versions versionCache
	diffs    diffCache
	sp       *savepoints
	own      *stmtCache // the coordinator's own statements on conn, prepared

	readMu sync.Mutex
	read   *sqlite3.Conn // for Query and Dump, opened on first use
}

// Rejection is a mutation the coordinator applied as a no-op because the
// mutator refused it.
type Rejection struct {
	Mutation Mutation
	Err      error
}

// Result is what one Apply did.
type Result struct {
	LSN      uint64     // the LSN after the commit (unchanged if nothing was written)
	Applied  []Mutation // accepted and rejected mutations, in the coordinator's order
	Rejected []Rejection
	// Gaps are mutations skipped because their seq was not the next one for
	// their client: the client must resend from its first pending seq.
	Gaps []Mutation
	// Deferred are mutations not run because the batch's time budget ran
	// out, in order: neither applied nor rejected. Apply them in a later
	// batch (before anything newer from the same clients).
	Deferred []Mutation
}

// OpenCoordinator opens a coordinator document over store and brings its
// schema up to date with mut.
func OpenCoordinator(ctx context.Context, store vfs.Store, mut Mutator, opts CoordinatorOptions) (*Coordinator, error) {
	if opts.MutationTimeout == 0 {
		opts.MutationTimeout = 5 * time.Second
	}
	if opts.BatchTimeout == 0 {
		opts.BatchTimeout = 2 * opts.MutationTimeout
	}
	db := vfs.NewDatabase(store, vfs.CoordinatorMode)
	conn, err := db.Open()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open coordinator: %w", err)
	}
	if opts.MaxHeapBytes == 0 {
		opts.MaxHeapBytes = 512 << 20
	}
	conn.HardHeapLimit(opts.MaxHeapBytes)
	sp, err := prepareSavepoints(conn)
	if err != nil {
		conn.Close()
		db.Close()
		return nil, fmt.Errorf("open coordinator: %w", err)
	}
	c := &Coordinator{db: db, conn: conn, mut: mut, opts: opts, sp: sp, own: newStmtCache(conn, 4)}
	if sc, ok := mut.(StatementCache); ok {
		sc.CacheStatements(conn) // Close forgets them
	}
	count := store.PageCount()
	db.OnCommit(func(cm vfs.Commit) {
		c.versions.record(cm, count)
		c.diffs.committed(cm.LSN)
		count = cm.PageCount
	})
	if err := c.migrate(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("open coordinator: %w", err)
	}
	return c, nil
}

func (c *Coordinator) migrate(ctx context.Context) error {
	return inTx(c.conn, func() error {
		if err := c.conn.Exec(clientsSchema); err != nil {
			return fmt.Errorf("create clients table: %w", err)
		}
		if err := c.mut.Migrate(ctx, c.conn); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if c.opts.MutatorHash == "" {
			return nil
		}
		if err := c.conn.Exec(metaSchema); err != nil {
			return fmt.Errorf("create meta table: %w", err)
		}
		// Written only when it changes, so reopening commits nothing.
		err := sqlrows.Exec(c.conn, `INSERT INTO `+MetaTable+`(key, value) VALUES ('mutator_hash', ?)
			ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE value IS NOT excluded.value`, c.opts.MutatorHash)
		if err != nil {
			return fmt.Errorf("record mutator hash: %w", err)
		}
		return nil
	})
}

// MutatorHash returns the hash of the mutator module the document was last
// migrated with, or "".
func (c *Coordinator) MutatorHash() (string, error) {
	rows, err := sqlrows.Query(c.conn, `SELECT value FROM `+MetaTable+` WHERE key = 'mutator_hash'`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return "", nil
		}
		return "", err
	}
	if len(rows.Values) == 0 {
		return "", nil
	}
	h, _ := rows.Values[0][0].(string)
	return h, nil
}

// LSN returns the document's newest LSN.
func (c *Coordinator) LSN() uint64 { return c.db.Store().LSN() }

// Database returns the document's database.
func (c *Coordinator) Database() *vfs.Database { return c.db }

// LastSeq returns the last seq applied for clientID, as committed. Like
// the other read methods it may run alongside Apply: it reads the
// committed document, not the writer's cache.
func (c *Coordinator) LastSeq(clientID string) (uint64, error) {
	rows, err := c.Query(lastSeqSQL, clientID)
	if err != nil {
		return 0, fmt.Errorf("last seq of %s: %w", clientID, err)
	}
	return parseLastSeq(rows, clientID)
}

// LastSeqs returns the last seq applied for each of ids that has one, as
// committed (as LastSeq does, in one query).
func (c *Coordinator) LastSeqs(ids []string) (map[string]uint64, error) {
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("last seqs: %w", err)
	}
	rows, err := c.Query(`SELECT client_id, last_seq FROM `+ClientsTable+` WHERE client_id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, fmt.Errorf("last seqs: %w", err)
	}
	seqs := make(map[string]uint64, len(rows.Values))
	for _, r := range rows.Values {
		id, _ := r[0].(string)
		seq, err := parseLastSeq(Rows{Values: [][]any{r[1:]}}, id)
		if err != nil {
			return nil, err
		}
		seqs[id] = seq
	}
	return seqs, nil
}

// lastSeqSQL reads one client's last seq from ClientsTable.
const lastSeqSQL = `SELECT last_seq FROM ` + ClientsTable + ` WHERE client_id = ?`

// parseLastSeq returns the last seq lastSeqSQL read for clientID: 0 if the
// client has none. The table is data from elsewhere (a mutator may have
// written anything there): a value that is not an integer is an error.
func parseLastSeq(rows Rows, clientID string) (uint64, error) {
	if len(rows.Values) == 0 {
		return 0, nil
	}
	seq, ok := rows.Values[0][0].(int64)
	if !ok {
		return 0, fmt.Errorf("last seq of %s: %w: %s holds %v", clientID, ErrBadClientsTable, ClientsTable, rows.Values[0][0])
	}
	return uint64(seq), nil
}

func (c *Coordinator) loadLastSeq() error {
	if c.lastSeq != nil {
		return nil
	}
	rows, err := sqlrows.Query(c.conn, `SELECT client_id, last_seq FROM `+ClientsTable)
	if err != nil {
		return fmt.Errorf("load clients table: %w", err)
	}
	lastSeq := make(map[string]uint64, len(rows.Values))
	for _, r := range rows.Values {
		// A mutator can write anything into the table: an error, not a crash.
		id, okID := r[0].(string)
		seq, okSeq := r[1].(int64)
		if !okID || !okSeq {
			return fmt.Errorf("load clients table: %w: row (%v, %v)", ErrBadClientsTable, r[0], r[1])
		}
		lastSeq[id] = uint64(seq)
	}
	c.lastSeq = lastSeq
	return nil
}

// ErrBadClientsTable reports a clients table row that is not a text client
// ID with an integer last seq.
var ErrBadClientsTable = errors.New("bad clients table")

// Apply applies a batch of mutations, from any clients, in order. Each runs
// in its own savepoint: a mutation that fails (in the mutator, in SQL, at
// the time or memory limit, or by leaving a deferred constraint violated,
// which would fail the COMMIT) is rolled back alone and still advances its
// client's last seq. Mutations already applied are dropped. Usually the
// batch is one durable commit; a mutation that breaks the transaction makes
// it more than one (see applySome). An error means nothing was committed.
//
// The batch's time is bounded by BatchTimeout: mutations it leaves no time
// for are returned in Result.Deferred, not run, for a later Apply.
func (c *Coordinator) Apply(ctx context.Context, batch []Mutation) (Result, error) {
	if err := c.loadLastSeq(); err != nil {
		return Result{}, err
	}
	budget, cancel := context.WithTimeout(ctx, c.opts.BatchTimeout)
	defer cancel()
	var total Result
	committed := false
	for len(batch) > 0 {
		if budget.Err() != nil {
			total.Deferred = append(total.Deferred, batch...)
			break
		}
		n, stop, res, err := c.applySome(ctx, budget, batch, !committed)
		if err != nil {
			if !committed {
				return Result{}, err
			}
			// Earlier parts are committed: report them, and leave
			// the rest to a later Apply.
			total.Deferred = append(total.Deferred, batch...)
			break
		}
		committed = true
		total.Applied = append(total.Applied, res.Applied...)
		total.Rejected = append(total.Rejected, res.Rejected...)
		total.Gaps = append(total.Gaps, res.Gaps...)
		batch = batch[n:]
		if stop {
			total.Deferred = append(total.Deferred, batch...)
			break
		}
	}
	total.LSN = c.LSN()
	return total, nil
}

// errBudget is a mutation cut short by its batch's time budget.
var errBudget = errors.New("the batch's time budget ran out")

// applySome commits a prefix of batch, n mutations long; stop says the
// budget ran out and the rest must wait for a later Apply.
//
// A mutation that breaks the transaction itself (SQLite rolls the whole
// transaction back when, say, a write is interrupted by the time limit) is
// poisoned: the mutations before it run again, it is rejected without
// running, and the commit ends there; the caller goes on with the rest. So
// a broken mutation costs its own time limit once, never once per mutation
// in the batch, and nothing else in the batch is lost.
//
// New mutations start only while budget lasts; one the budget cuts short
// before its own time limit is deferred, with all after it, not rejected.
func (c *Coordinator) applySome(ctx, budget context.Context, batch []Mutation, fresh bool) (n int, stop bool, res Result, err error) {
	end := len(batch)
	poisoned, poison := -1, ""
	retry := false  // re-running a prefix that ran before: not bounded by budget
	var undo func() // what RecordRejections recorded for this attempt
	for {
		res, n, stop = Result{}, end, false
		updated := map[string]uint64{}
		first := fresh // the first mutation of an Apply is not bounded by budget
		err = inTx(c.conn, func() error {
			for i, m := range batch[:end] {
				last, ok := updated[m.ClientID]
				if !ok {
					last = c.lastSeq[m.ClientID]
				}
				switch {
				case m.Seq <= last:
					continue // a resend of a mutation already applied
				case m.Seq != last+1:
					res.Gaps = append(res.Gaps, m)
					continue
				}
				if i == poisoned {
					m.Refused = poison
				}
				mctx := budget
				if retry || first {
					mctx = ctx
				}
				unbounded := retry || first
				first = false
				if mctx.Err() != nil {
					n, stop = i, true
					break
				}
				start := time.Now()
				err := c.applyOne(mctx, m)
				if err != nil && ctx.Err() != nil {
					// The caller gave up: not the mutation's failure.
					return fmt.Errorf("mutation %s: %w", m.ID(), ctx.Err())
				}
				if err != nil && !unbounded && budget.Err() != nil && time.Since(start) < c.opts.MutationTimeout {
					// Cut short by the batch's budget, not by its own
					// limit: not its failure.
					var b *brokenTxError
					if errors.As(err, &b) {
						return &brokenTxError{index: i, err: errBudget}
					}
					n, stop = i, true
					break
				}
				if err != nil {
					var rej *RejectedError
					var b *brokenTxError
					switch {
					case errors.As(err, &rej):
						res.Rejected = append(res.Rejected, Rejection{Mutation: m, Err: rej})
					case errors.As(err, &b):
						return &brokenTxError{index: i, err: b.err}
					default:
						return err
					}
				}
				updated[m.ClientID] = m.Seq
				res.Applied = append(res.Applied, m)
			}
			for id, seq := range updated {
				_, err := c.own.run(recordLastSeqSQL, id, seq)
				if err != nil {
					return fmt.Errorf("record last seq: %w", err)
				}
			}
			if c.opts.RecordRejections != nil && len(res.Rejected) > 0 {
				var err error
				if undo, err = c.opts.RecordRejections(c.LSN()+1, res.Rejected); err != nil {
					return fmt.Errorf("record rejections: %w", err)
				}
			}
			return nil
		})
		if err != nil && undo != nil {
			undo() // recorded, then the COMMIT failed
		}
		undo = nil
		var broken *brokenTxError
		if !errors.As(err, &broken) {
			break
		}
		// Each retry ends the commit earlier, so this terminates.
		retry, fresh = true, false
		if errors.Is(broken.err, errBudget) {
			end, poisoned = broken.index, -1
			if end == 0 {
				return 0, true, Result{}, nil
			}
			continue
		}
		end, poisoned = broken.index+1, broken.index
		poison = "the mutation broke its transaction: " + broken.err.Error()
	}
	if err != nil {
		c.lastSeq = nil // reload: the cache may be ahead of what was committed
		return 0, false, Result{}, fmt.Errorf("apply batch: %w", err)
	}
	for id, seq := range lastSeqs(res) {
		c.lastSeq[id] = seq
	}
	if end < len(batch) && poisoned < 0 {
		stop = true // a prefix re-run after the budget broke a mutation
	}
	return n, stop, res, nil
}

// lastSeqs returns the last seq per client that res applied.
func lastSeqs(res Result) map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range res.Applied {
		out[m.ClientID] = max(out[m.ClientID], m.Seq)
	}
	return out
}

// recordLastSeqSQL records the last seq applied for a client, in the commit
// that applies it.
const recordLastSeqSQL = `INSERT INTO ` + ClientsTable + `(client_id, last_seq) VALUES (?, ?)
	ON CONFLICT(client_id) DO UPDATE SET last_seq = excluded.last_seq`

// applyOne runs m in a savepoint, within its own time limit. A
// *RejectedError means m was rolled back and the transaction can go on; a
// *brokenTxError means it cannot.
func (c *Coordinator) applyOne(ctx context.Context, m Mutation) error {
	if m.Refused != "" {
		return &RejectedError{Seq: m.Seq, Name: m.Name, Message: m.Refused}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.MutationTimeout)
	defer cancel()
	mut := c.mut
	if c.opts.MaxPages > 0 {
		mut = sizeLimited{Mutator: mut, maxPages: c.opts.MaxPages}
	}
	return c.sp.run(ctx, mut, m)
}

// sizeLimited fails a mutation that leaves the document over maxPages pages.
type sizeLimited struct {
	Mutator
	maxPages int64
}

// ErrTooBig reports a mutation that would grow a document past its limit.
var ErrTooBig = errors.New("document size limit")

func (s sizeLimited) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if err := s.Mutator.Mutate(ctx, conn, name, args); err != nil {
		return err
	}
	rows, err := sqlrows.Query(conn, `PRAGMA page_count`)
	if err != nil {
		return err
	}
	if n := rows.Values[0][0].(int64); n > s.maxPages {
		return fmt.Errorf("%w: the document would have %d pages of %d bytes, over the limit of %d", ErrTooBig, n, vfs.PageSize, s.maxPages)
	}
	return nil
}

// callMutator runs the mutator, turning a panic into the mutation's error:
// a Go mutator's bug, or SQLite running out of memory (the driver panics on
// SQLITE_NOMEM), must fail that mutation only.
func callMutator(ctx context.Context, conn *sqlite3.Conn, mut Mutator, m Mutation) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("mutator panicked: %v", r)
		}
	}()
	return mut.Mutate(ctx, conn, m.Name, m.Args)
}

// inTx runs f in an immediate transaction on conn, committing if f succeeds.
func inTx(conn *sqlite3.Conn, f func() error) error {
	if err := conn.Exec(`BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := f(); err != nil {
		if !conn.GetAutocommit() {
			conn.Exec(`ROLLBACK`)
		}
		return err
	}
	if err := conn.Exec(`COMMIT`); err != nil {
		if !conn.GetAutocommit() {
			conn.Exec(`ROLLBACK`)
		}
		return &commitError{err}
	}
	return nil
}

// commitError is a COMMIT that failed; the transaction is rolled back.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// Diff returns the fast-forward diff from LSN from to the newest LSN: the
// newest copy of each page changed after from, and the page count. Its cost
// is proportional to the pages changed. Where the coordinator still knows
// the receiver's copy of a page, Bases holds it.
//
// Calls for the same from while the document stays at one LSN share one
// diff, read once (see diffCache), so callers must not change it.
func (c *Coordinator) Diff(from uint64) (Diff, error) {
	return c.diffs.get(from, c.db.Store().LSN(), func() (Diff, error) { return c.diff(from) })
}

// diff computes Diff.
func (c *Coordinator) diff(from uint64) (Diff, error) {
	d, err := DiffFrom(c.db.Store(), from)
	if err != nil {
		return d, err
	}
	for _, p := range d.Pages {
		if b := c.versions.base(p.No, from, d.LSN); b != nil {
			if d.Bases == nil {
				d.Bases = map[uint32][]byte{}
			}
			d.Bases[p.No] = b
		}
	}
	return d, nil
}

// Diff is a fast-forward diff: applied to a replica at LSN From, it brings the
// replica to LSN Commit.LSN.
type Diff struct {
	From uint64
	vfs.Commit
	// Bases holds, for some pages, the receiver's copy at From, so a
	// transport may send those pages as deltas. Receivers ignore it.
	Bases map[uint32][]byte
}

// diffPasses bounds the passes DiffFrom reads without holding commits off.
const diffPasses = 4

// DiffFrom reads the fast-forward diff from LSN from out of store, as one
// version of the store, while commits go on.
//
// The first pass reads the pages changed after from; each later pass
// rereads only the pages changed since the previous pass began, until one
// pass sees the LSN hold still. A pass is short after the first (it reads
// what a few commits wrote), so this rarely takes more than two; after
// diffPasses, a store that is a [vfs.ChangeReader] reads the rest with
// commits held off, so a diff finishes however fast commits come. Other
// stores go on passing until one holds still.
func DiffFrom(store vfs.Store, from uint64) (Diff, error) {
	return diffFrom(store, from, nil, nil)
}

// DiffHeld is DiffFrom for a lazy replica (see protocol.CapLazy): it
// carries only the changed pages held reports true for, the pages the
// replica holds. Its LSN and page count are DiffFrom's. From LSN 0 every
// page has changed: the diff asks held of each page number instead of
// having the store list them all.
func DiffHeld(store vfs.Store, from uint64, held func(no uint32) bool) (Diff, error) {
	if from != 0 {
		return diffFrom(store, from, held, nil)
	}
	first := []uint32{}
	for no, n := uint32(1), store.PageCount(); no <= n; no++ {
		if held(no) {
			first = append(first, no)
		}
	}
	return diffFrom(store, from, held, first)
}

// diffFrom is DiffFrom of the pages keep reports true for, or all if keep
// is nil; with first set, the first pass reads those pages instead of the
// pages changed after from (it must list every kept one that did).
func diffFrom(store vfs.Store, from uint64, keep func(no uint32) bool, first []uint32) (Diff, error) {
	lsn := store.LSN()
	if from > lsn {
		return Diff{}, fmt.Errorf("diff from %d: %w: the document is at %d", from, ErrFuture, lsn)
	}
	pages := map[uint32][]byte{}
	read := func(nos []uint32) error {
		for _, no := range nos {
			if (keep != nil && !keep(no)) || no > store.PageCount() {
				continue // (a page above the count: cut since it was listed)
			}
			buf := pages[no]
			if buf == nil {
				buf = make([]byte, vfs.PageSize)
				pages[no] = buf
			}
			if err := store.ReadPage(no, buf); err != nil {
				return fmt.Errorf("diff from %d: %w", from, err)
			}
		}
		return nil
	}
	// A page read during a pass is read again by the next pass if it
	// changed after that pass's since: so when a pass holds still at lsn,
	// every page is as of lsn and the set is what changed after from.
	since := from
	var count uint32
	cr, _ := store.(vfs.ChangeReader)
	for pass := 0; ; pass++ {
		if cr != nil && pass == diffPasses {
			c, err := cr.ReadChanged(since)
			if err != nil {
				return Diff{}, fmt.Errorf("diff from %d: %w", from, err)
			}
			for _, p := range c.Pages {
				if keep == nil || keep(p.No) {
					pages[p.No] = p.Data
				}
			}
			lsn, count = c.LSN, c.PageCount
			break
		}
		if pass > 0 {
			lsn = store.LSN()
		}
		nos := first
		if pass > 0 || first == nil {
			nos = store.ChangedSince(since)
		}
		if err := read(nos); err != nil {
			return Diff{}, err
		}
		count = store.PageCount()
		if store.LSN() == lsn {
			break
		}
		since = lsn
	}
	d := Diff{From: from, Commit: vfs.Commit{LSN: lsn, PageCount: count}}
	for _, no := range slices.Sorted(maps.Keys(pages)) {
		// Pages beyond the count were cut by a commit after their read.
		if no <= count {
			d.Pages = append(d.Pages, vfs.Page{No: no, Data: pages[no]})
		}
	}
	return d, nil
}

// ReadPagesAt reads the pages nos of store as of LSN at, for a lazy
// replica at that LSN (protocol.PageRequest): pages holds those that have
// not changed since at, and stale the others (changed since, or beyond the
// page count now), which the replica can read only once it has reached lsn,
// the store's LSN after the read. It reads each page once and costs, beyond
// that, a ChangedSince(at).
func ReadPagesAt(store vfs.Store, at uint64, nos []uint32) (lsn uint64, pages []vfs.Page, stale []uint32, err error) {
	if now := store.LSN(); at > now {
		return 0, nil, nil, fmt.Errorf("read pages at %d: %w: the document is at %d", at, ErrFuture, now)
	}
	// A page read before ChangedSince that it does not list had not
	// changed after at when ChangedSince ran, so neither when it was read.
	got := make([]vfs.Page, 0, len(nos))
	for _, no := range nos {
		if no > store.PageCount() {
			stale = append(stale, no)
			continue
		}
		buf := make([]byte, vfs.PageSize)
		if err := store.ReadPage(no, buf); err != nil {
			return 0, nil, nil, fmt.Errorf("read pages at %d: %w", at, err)
		}
		got = append(got, vfs.Page{No: no, Data: buf})
	}
	changed := map[uint32]bool{}
	for _, no := range store.ChangedSince(at) {
		changed[no] = true
	}
	lsn, count := store.LSN(), store.PageCount()
	for _, p := range got {
		if changed[p.No] || p.No > count {
			stale = append(stale, p.No)
		} else {
			pages = append(pages, p)
		}
	}
	slices.Sort(stale)
	return lsn, pages, stale, nil
}

// ErrFuture reports a replica that claims an LSN the document has not reached.
var ErrFuture = errors.New("LSN ahead of the document")

// Query runs a read-only query on the coordinator's copy.
func (c *Coordinator) Query(sql string, args ...any) (Rows, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if err := c.openRead(); err != nil {
		return Rows{}, err
	}
	return sqlrows.Query(c.read, sql, args...)
}

// +checklocks:c.readMu
func (c *Coordinator) openRead() error {
	if c.read != nil {
		return nil
	}
	conn, err := c.db.Open()
	if err != nil {
		return err
	}
	c.read = conn
	return nil
}

// Close closes the document's connections. The store stays open.
func (c *Coordinator) Close() error {
	c.readMu.Lock()
	if c.read != nil {
		c.read.Close()
	}
	c.readMu.Unlock()
	var forget error
	if sc, ok := c.mut.(StatementCache); ok {
		// Before the connection closes: it cannot while they are kept.
		forget = sc.ForgetStatements(c.conn)
	}
	err := errors.Join(forget, c.own.close(), c.sp.close(), c.conn.Close())
	c.db.Close()
	return err
}
