package vfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// Mode says where a [Database] sends the pages of a committed transaction.
type Mode int

const (
	// ClientMode keeps commits in the local layer, over a read-only snapshot.
	ClientMode Mode = iota
	// CoordinatorMode makes every commit the next LSN of the store.
	CoordinatorMode
)

// Database is one SQLite database file served by the sqlsync VFS: a [Store]
// (the snapshot, or the coordinator's copy) with, in client mode, a local
// layer over it. Connections open it with [Database.Open].
type Database struct {
	name  string
	store Store
	mode  Mode

	mu      sync.Mutex
	local   *overlay // client mode: pages written since the snapshot; nil when empty
	batch   *overlay // the atomic write in progress, if any
	gen     uint32   // bumped for every change; see changeCounter
	commits uint64   // coordinator: commits made through this database

	onCommit func(Commit) // coordinator: called, under mu, after each durable commit

	// miss is the first page a Partial store could not read since the
	// last TakeMiss: SQLite sees only an I/O error.
	miss *MissError
	// noWait: a page a Holder store lacks fails at once (ErrMustFetch).
	noWait bool

	locks lockState
}

// overlay is a sparse set of pages over the layers below it.
type overlay struct {
	pages map[uint32][]byte
	count uint32 // page count with this overlay applied
	floor uint32 // lowest page count since the overlay began: pages above it it lacks read as zeros
}

func newOverlay(count uint32) *overlay {
	return &overlay{pages: map[uint32][]byte{}, count: count, floor: count}
}

func (o *overlay) truncate(count uint32) {
	for no := range o.pages {
		if no > count {
			delete(o.pages, no)
		}
	}
	o.count = count
	o.floor = min(o.floor, count)
}

var (
	registryMu sync.Mutex
	registry   = map[string]*Database{}
	nextID     atomic.Uint64
)

// NewDatabase serves store as a database in the given mode until Close.
func NewDatabase(store Store, mode Mode) *Database {
	d := &Database{
		name:  "db" + strconv.FormatUint(nextID.Add(1), 10),
		store: store,
		mode:  mode,
	}
	registryMu.Lock()
	registry[d.name] = d
	registryMu.Unlock()
	return d
}

// OnCommit sets a function called after each durable coordinator commit, with
// the database locked: it must not use the database.
func (d *Database) OnCommit(f func(Commit)) {
	d.mu.Lock()
	d.onCommit = f
	d.mu.Unlock()
}

// Store returns the store under the database.
func (d *Database) Store() Store { return d.store }

// Open opens a new connection to the database, set up for sqlsync: 4 KiB
// pages, batch-atomic commits, temporary files in memory.
func (d *Database) Open() (*sqlite3.Conn, error) {
	return d.open(sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE | sqlite3.OPEN_URI)
}

// OpenReadOnly opens a new read-only connection to the database: SQLite
// refuses every write on it, and so does the VFS (no write lock, no page
// written). While it reads, like any reader, commits of the database's
// other connections wait.
func (d *Database) OpenReadOnly() (*sqlite3.Conn, error) {
	return d.open(sqlite3.OPEN_READONLY | sqlite3.OPEN_URI)
}

func (d *Database) open(flags sqlite3.OpenFlag) (*sqlite3.Conn, error) {
	conn, err := sqlite3.OpenFlags("file:"+d.name+"?vfs="+VFSName, flags)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// cache_spill off keeps a whole transaction in the page cache, so it
	// always reaches the VFS as one atomic batch.
	err = conn.Exec(`PRAGMA page_size=4096; PRAGMA temp_store=memory; PRAGMA cache_spill=off`)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("set up connection: %w", err)
	}
	// A commit waits for readers of other connections to finish.
	if err := conn.BusyTimeout(10 * time.Second); err != nil {
		conn.Close()
		return nil, fmt.Errorf("set up connection: %w", err)
	}
	return conn, nil
}

// Close stops serving the database. Open connections must be closed first.
// The store is not closed.
func (d *Database) Close() error {
	registryMu.Lock()
	delete(registry, d.name)
	registryMu.Unlock()
	return nil
}

// HasLocal reports whether the local layer holds any page.
func (d *Database) HasLocal() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.local != nil && (len(d.local.pages) > 0 || d.local.count != d.store.PageCount())
}

// DropLocal discards the local layer, in constant time. No connection may be
// in a transaction.
func (d *Database) DropLocal() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.locks.idle(); err != nil {
		return fmt.Errorf("drop local layer: %w", err)
	}
	d.local = nil
	d.gen++
	return nil
}

// ApplyDiff drops the local layer and applies c to the snapshot, atomically
// and durably. No connection may be in a transaction.
func (d *Database) ApplyDiff(c Commit) error {
	_, err := d.applyDiff(c, false)
	return err
}

// ApplyDiffDeferred is ApplyDiff for a commit durable elsewhere (a diff from
// the coordinator): if the store is a DeferredApplier, c reads at once and
// sync makes it durable; else it is durable on return and sync is nil.
func (d *Database) ApplyDiffDeferred(c Commit) (sync func() error, err error) {
	return d.applyDiff(c, true)
}

func (d *Database) applyDiff(c Commit, deferred bool) (sync func() error, err error) {
	return d.replaceSnapshot("apply diff", c, func() (func() error, error) {
		if da, ok := d.store.(DeferredApplier); ok && deferred {
			return da.SyncApplied, da.ApplyDeferred(c)
		}
		return nil, d.store.Apply(c)
	})
}

// CommitStaged drops the local layer and makes the store's stage visible
// with c (see Stager.CommitStaged), atomically and durably. The store must
// be a Stager; no connection may be in a transaction.
func (d *Database) CommitStaged(c Commit) error {
	st, ok := d.store.(Stager)
	if !ok {
		return fmt.Errorf("commit staged pages: %T cannot stage", d.store)
	}
	_, err := d.replaceSnapshot("commit staged pages", c, func() (func() error, error) {
		return nil, st.CommitStaged(c)
	})
	return err
}

// replaceSnapshot drops the local layer and has apply write c to the
// store, once no connection is in a transaction and c is valid at the
// snapshot's LSN: a commit the store would refuse must not cost the local
// layer. It returns apply's sync, nil if apply fails.
func (d *Database) replaceSnapshot(what string, c Commit, apply func() (sync func() error, err error)) (func() error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.locks.idle(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := c.Validate(d.store.LSN()); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	d.local = nil
	d.gen++
	sync, err := apply()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return sync, nil
}

// Bytes returns the whole database file as the store holds it, without the
// local layer: what a replica and the coordinator compare for convergence.
func (d *Database) Bytes() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.store.PageCount()
	out := make([]byte, int(n)*PageSize)
	for no := uint32(1); no <= n; no++ {
		if err := d.store.ReadPage(no, out[int(no-1)*PageSize:int(no)*PageSize]); err != nil {
			return nil, fmt.Errorf("read database: %w", err)
		}
	}
	return out, nil
}

// count is the page count seen by connections, with every layer applied.
// +checklocks:d.mu
func (d *Database) count() uint32 {
	switch {
	case d.batch != nil:
		return d.batch.count
	case d.local != nil:
		return d.local.count
	}
	return d.store.PageCount()
}

// readPage copies the newest version of page no into buf.
// +checklocks:d.mu
func (d *Database) readPage(no uint32, buf []byte) error {
	for _, o := range [...]*overlay{d.batch, d.local} {
		if o == nil {
			continue
		}
		if p, ok := o.pages[no]; ok {
			copy(buf, p)
			return nil
		}
		if no > o.floor {
			clear(buf)
			return nil
		}
	}
	if no > d.store.PageCount() {
		clear(buf)
		return nil
	}
	var err error
	if h, ok := d.store.(Holder); ok && d.noWait && !h.Holds(no) {
		err = &MissError{Page: no, Err: ErrMustFetch}
	} else {
		err = d.store.ReadPage(no, buf)
	}
	var miss *MissError
	if errors.As(err, &miss) && d.miss == nil {
		d.miss = miss
	}
	return err
}

// SetNoWait sets whether a read of a page a Holder store lacks fails at
// once, with a MissError wrapping ErrMustFetch, instead of waiting for the
// store to fetch it: for statements run where waiting would block the
// reply (a mutator called from the browser's event loop).
func (d *Database) SetNoWait(on bool) {
	d.mu.Lock()
	d.noWait = on
	d.mu.Unlock()
}

// TakeMiss returns the first page a Partial store could not read since the
// last call, if any: the statement that read it failed with an I/O error,
// which is not the statement's doing.
func (d *Database) TakeMiss() *MissError {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.miss
	d.miss = nil
	return m
}

// writeLayer returns the overlay that writes go to, starting one if needed.
// +checklocks:d.mu
func (d *Database) writeLayer() *overlay {
	if d.batch != nil {
		return d.batch
	}
	// A write outside an atomic batch (SQLite does not make these with our
	// pragmas) still commits atomically on its own.
	if d.mode == CoordinatorMode {
		d.batch = newOverlay(d.count())
		return d.batch
	}
	if d.local == nil {
		d.local = newOverlay(d.store.PageCount())
	}
	return d.local
}

// commitBatch ends the atomic write in progress, making it part of the local
// layer (client mode) or the next LSN of the store (coordinator mode).
// +checklocks:d.mu
func (d *Database) commitBatch() error {
	b := d.batch
	if b == nil {
		return nil
	}
	d.batch = nil
	if d.mode == ClientMode {
		if d.local == nil {
			d.local = newOverlay(d.store.PageCount())
		}
		if b.floor < d.local.count {
			d.local.truncate(b.floor)
		}
		maps.Copy(d.local.pages, b.pages)
		d.local.count = b.count
		d.gen++
		return nil
	}
	c := Commit{LSN: d.store.LSN() + 1, PageCount: b.count}
	for _, no := range slices.Sorted(maps.Keys(b.pages)) {
		if no <= b.count {
			c.Pages = append(c.Pages, Page{No: no, Data: b.pages[no]})
		}
	}
	// Pages cut off by a truncation and grown back without being written
	// must read as zeros in every replica too.
	for no := b.floor + 1; no <= b.count && b.floor < d.store.PageCount(); no++ {
		if _, ok := b.pages[no]; !ok && no <= d.store.PageCount() {
			c.Pages = append(c.Pages, Page{No: no, Data: make([]byte, PageSize)})
		}
	}
	slices.SortFunc(c.Pages, func(a, b Page) int { return int(a.No) - int(b.No) })
	if len(c.Pages) == 0 && c.PageCount == d.store.PageCount() {
		return nil
	}
	if err := d.store.Apply(c); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	d.gen++
	d.commits++
	if d.onCommit != nil {
		d.onCommit(c)
	}
	return nil
}

// changeCounter is the file change counter (page 1, bytes 24..27) that file f
// reads. SQLite trusts its page cache while this value is unchanged, and with
// batch-atomic writes it never bumps the value itself, so the VFS presents
// the number of changes f did not make: any commit by another connection or
// any swap of layers changes it, while f's own commits keep f's cache warm.
//
// The count is doubled because when f's own commit rewrites page 1 (the file
// grew, say), SQLite writes there, and remembers, the counter it last read
// plus one: a single change after that must not present that very value, or
// SQLite keeps pages cached from before the change.
// +checklocks:d.mu
func (d *Database) changeCounter(f *file) uint32 {
	return 2 * (d.gen - f.ownCommits)
}

// patchChangeCounter overwrites the change counter bytes within buf, which
// holds the file bytes starting at off.
func patchChangeCounter(buf []byte, off int64, counter uint32) {
	const at = 24
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], counter)
	for i := range 4 {
		if p := at + int64(i) - off; p >= 0 && p < int64(len(buf)) {
			buf[p] = b[i]
		}
	}
}
