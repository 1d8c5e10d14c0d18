// Package filestore is a durable, crash-safe [vfs.Store] kept in a directory
// of a [hackpadfs.FS]: the os file system, an in-memory one, IndexedDB, ...
//
// # Files
//
// A store directory holds three files (and a lock file, see Locking):
//
//   - data: the base pages; page n at offset (n-1)*PageSize.
//   - lsns: the base page LSNs; 8 bytes little-endian per page, the LSN at
//     which that page last changed, so that ChangedSince stays exact across
//     restarts.
//   - log: the commit log, appended to by every Apply (and by Stage,
//     CommitStaged and DropStaged, see Staging).
//
// The log starts with a 24-byte header, all integers little-endian:
//
//	magic "SQSL" | format version u32 (1 or 2) | baseLSN u64 | basePageCount u32 | crc32c u32
//
// where the CRC (Castagnoli) covers the 20 bytes before it. data and lsns hold
// the state at baseLSN, with basePageCount pages. Records follow, each
// written with one write; every one ends with a crc32c of all its bytes
// before it. Each commit (Apply, ApplyDeferred) is one record:
//
//	magic "SQSR" | LSN u64 | PageCount u32 | n u32 | n × (page number u32, PageSize bytes) | crc32c u32
//
// A log of format version 2 may also hold the records of a stage (see
// Staging):
//
//	stage (Stage):                "SQSG" | cursor length u16 | cursor | n u32 | n × (page number u32, PageSize bytes) | crc32c u32
//	stage commit (CommitStaged):  "SQSK" | LSN u64 | PageCount u32 | n u32 | n × (page number u32, PageSize bytes) | crc32c u32
//	stage drop (DropStaged):      "SQSX" | LSN u64 (the store's, unchanged) | crc32c u32
//
// Version 1 logs hold commit records only; Open reads both versions. A
// fresh log (a new store's, or a checkpoint's) is of version 1, and the
// first Stage on a version 1 log checkpoints to start a version 2 log
// before it appends: older code, which knows only version 1, would take a
// stage record for a torn tail and cut it off, and with it every record
// after it, CommitStaged's included; a version 2 log it refuses instead
// ("unknown format version", [vfs.ErrCorrupt]). So a store that never
// stages stays readable by older code, and one that did becomes readable
// again at its next checkpoint.
//
// # Apply: one fsync per commit
//
// Apply validates the commit, appends its record to the log with a single
// write, fsyncs the log and only then updates the in-memory state and
// returns. Memory holds only the LSN, the page count, the LSN index and, for
// each page, where its newest version lives: at an offset in the log, in data,
// or nowhere (it reads as zeros). Page bytes stay on disk, so a store costs a
// few dozen bytes of memory per page.
//
// A commit is acknowledged only once its whole record is on disk. If the
// process or the machine dies during the write or before the fsync
// completes, the record is incomplete or fails its CRC; Open finds such a torn
// tail (only the last record can be torn, as every earlier one was fsynced
// before the next was written), cuts it off and ignores it. So every commit
// is all or nothing and every acknowledged commit survives: the same
// guarantee as a batch-atomic write of all of a commit's pages, at the cost
// of a single sequential append and fsync, whatever the number of pages. A
// damaged record (bad magic, impossible length or CRC mismatch) with a valid
// record anywhere after it (for a commit, one with a newer LSN) is not a
// torn tail but damage to acknowledged commits: Open reports it as
// [vfs.ErrCorrupt], like a bad header or a record whose LSN does not grow.
//
// # Checkpoints
//
// When the log outgrows a threshold (by default the larger of 4 MiB and the
// size of data), Apply folds it into the base files, unless a stage is
// pending (see Staging):
//
//  1. data is truncated to the lowest page count seen since the last
//     checkpoint (pages above it were dropped), every page whose newest copy
//     is in the log is written to its place in data, data is sized to
//     PageCount pages and fsynced;
//  2. lsns is written in place from the index and fsynced;
//  3. a fresh log holding only a header (baseLSN = LSN, basePageCount =
//     PageCount) is written to log.tmp, fsynced and renamed over log, and the
//     directory is fsynced (where the file system supports it).
//
// A crash before the rename leaves the old log in charge. Replaying it over a
// partly updated data file gives exactly the state before the checkpoint:
// the checkpoint only overwrote pages whose newest copy is in that log (its
// records hold whole pages, and replay ends pointing each such page at its
// newest copy), and only cut pages that a record of that log dropped; every
// other page, the only ones read from data, is untouched. Likewise the lsns
// entries it changed belong to pages that the log rewrites or drops. A crash
// after the rename finds the new log, whose base files are already durable.
// Either way the directory always holds one consistent state.
//
// # Staging
//
// Stage, CommitStaged and DropStaged make a Store a [vfs.Stager]: a replica
// downloading a large document stages it frame by frame and makes it
// visible at once. Stage appends one stage record holding the frame's pages
// and the cursor and fsyncs it (a deferred commit, if any, is synced
// first, so that the stage record is the only record a crash may tear).
// Memory keeps, per staged page, the log offset of its newest staged copy,
// the last cursor and the number of copies staged: never page bytes.
// Readers do not see staged pages.
//
// CommitStaged appends one stage-commit record, which holds only the
// commit's own pages, and fsyncs it. Applying it, at once or on replay,
// points every staged page up to the commit's page count at its staged
// copy in the log and then the commit's pages at theirs, and moves the
// LSN, the page count and the page LSNs on as one commit writing the union
// of those pages would: so it costs metadata per page and one append, and
// never reads or rewrites a staged page. It does not checkpoint; the next
// Apply (or Checkpoint) folds the log, staged pages and all, into data,
// one page at a time. DropStaged appends a drop record. A commit record,
// Apply's or ApplyDeferred's, empties the stage too: a replica that takes
// a diff otherwise has given the download up.
//
// Open rebuilds the stage as it replays the log: the stage records after
// the last commit, stage-commit or drop record form it, and its cursor is
// that of the last of them. A stage record (or a stage-commit or drop
// record) torn at the tail is cut off like a torn commit record. Replay
// checks stage records as the calls that wrote them did: a staged page 0,
// a stage commit that CheckStaged refuses or a drop record at another LSN
// than the store's is [vfs.ErrCorrupt].
//
// So every state after a crash is either the old store, with the stage up
// to the last durable Stage, or the committed store, never a mix. The
// state is what replaying the log's records gives, and each record counts
// whole or not at all (its CRC); only the last can be torn, as every
// earlier one was fsynced before it was written. A crash during a Stage
// thus leaves the store at its LSN with the stage and cursor of the last
// Stage that returned (its torn record is cut off), or with the new one's
// too if its record made it whole. A stage-commit record refers to the
// staged pages only by where they lie in the stage records before it,
// which were durable before it was written: a crash during CommitStaged
// leaves either the old store with its stage intact, if the record is
// torn, or the committed store with an empty stage, if it is whole.
// Nothing else changes on disk meanwhile: no checkpoint runs while a stage
// is pending (Checkpoint does nothing and returns nil), as a fresh log
// would lose it; the checkpoint the first Stage on a version 1 log runs is
// an ordinary one, with no stage pending, done before that Stage writes
// its record. After a CommitStaged, DropStaged, Apply or ApplyDeferred the
// checkpoint rules above hold unchanged: the pages a stage commit took
// from the stage are pages whose newest copy is in the log, and the others
// are referred to by nothing.
//
// An ApplyDeferred while a stage is pending empties it at once, but a crash
// before the commit is synced loses the commit and leaves the stage as it
// was.
//
// # Locking
//
// Only one Store may have a directory open at a time. On the os file system
// Open takes an exclusive flock on a fourth file, lock, and holds it until
// Close (or the process's death): a second Open of the directory, by this
// process or another, fails at once with an error wrapping
// [dirlock.ErrInUse], "state directory D is in use by another process".
// Other file systems are private to one process or keep writers apart
// themselves (see package dirlock).
//
// # Page count
//
// A commit with a smaller PageCount drops the pages above it: if the count
// grows again later, those pages read as zeros until written.
package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/vfs/fsync"

	"github.com/sqlsync-go/sqlsync/internal/dirlock"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/internal/storestate"
)

// File names inside a store directory.
const (
	dataName = "data"
	lsnsName = "lsns"
	logName  = "log"
	tmpName  = "log.tmp"
	lockName = "lock" // see Locking
)

// Where the newest version of a page lives, when not at a log offset (> 0).
const (
	locZero int64 = 0  // nowhere: the page reads as zeros
	locData int64 = -1 // in data
)

// DefaultCheckpointBytes is the smallest log size that triggers a checkpoint
// when OpenOptions.CheckpointBytes is 0.
const DefaultCheckpointBytes = 4 << 20

// OpenOptions tunes a Store.
type OpenOptions struct {
	// CheckpointBytes is the log size above which Apply checkpoints: 0 means
	// the larger of DefaultCheckpointBytes and the size of data; a negative
	// value turns automatic checkpoints off (see Store.Checkpoint).
	CheckpointBytes int64
}

// Store is a durable vfs.Store in a directory of a hackpadfs.FS.
type Store struct {
	fsys hackpadfs.FS
	dir  string
	opts OpenOptions

	// wmu serializes the writers: Apply, Checkpoint and Close. State below
	// changes only with both wmu and mu held, so a writer reads it under wmu
	// alone while readers hold mu.RLock.
	wmu sync.Mutex
	mu  sync.RWMutex

	state   storestate.State // its low water mark is the lowest page count since the last checkpoint
	loc     []int64          // by page number (loc[0] unused): log offset, locData or locZero
	data    hackpadfs.File
	lsns    hackpadfs.File
	log     hackpadfs.File
	logSize int64
	closed  bool
	lock    *dirlock.Lock

	// The stage (see Staging), under wmu and mu like the state above.
	stage  *stageIndex // staged page -> log offset of its newest staged copy; nil: no stage
	cursor []byte      // the cursor of the last stage record
	staged int         // the page copies staged

	// Writer-only state, under wmu.
	version uint32 // the log's format version
	broken  error  // set when the log can no longer be appended to
	// deferred says the log holds commits ApplyDeferred has not synced.
	deferred bool
	ckptErr  error // the last automatic checkpoint's failure, if any
	hook     func(stage string) error
}

var (
	_ vfs.Store           = (*Store)(nil)
	_ vfs.ChangeReader    = (*Store)(nil)
	_ vfs.DeferredApplier = (*Store)(nil)
	_ vfs.Stager          = (*Store)(nil)
)

// Open opens the store in dir of fsys, creating dir and its files if missing.
func Open(fsys hackpadfs.FS, dir string) (*Store, error) {
	return OpenWithOptions(fsys, dir, OpenOptions{})
}

// OpenWithOptions is Open with options.
func OpenWithOptions(fsys hackpadfs.FS, dir string, opts OpenOptions) (*Store, error) {
	s := &Store{fsys: fsys, dir: dir, opts: opts}
	if err := s.open(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("filestore: open %s: %w", dir, err)
	}
	return s, nil
}

func (s *Store) path(name string) string { return path.Join(s.dir, name) }

func (s *Store) open() error {
	if !hackpadfs.ValidPath(s.dir) {
		return fmt.Errorf("invalid directory name: %w", hackpadfs.ErrInvalid)
	}
	if err := hackpadfs.MkdirAll(s.fsys, s.dir, 0o755); err != nil {
		return err
	}
	lock, err := dirlock.Acquire(s.fsys, s.path(lockName), "state directory "+dirlock.OSPath(s.fsys, s.dir))
	if err != nil {
		return err
	}
	s.lock = lock
	if err := hackpadfs.Remove(s.fsys, s.path(tmpName)); err != nil && !errors.Is(err, hackpadfs.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", tmpName, err)
	}
	if s.data, err = hackpadfs.OpenFile(s.fsys, s.path(dataName), hackpadfs.FlagReadWrite|hackpadfs.FlagCreate, 0o644); err != nil {
		return err
	}
	if s.lsns, err = hackpadfs.OpenFile(s.fsys, s.path(lsnsName), hackpadfs.FlagReadWrite|hackpadfs.FlagCreate, 0o644); err != nil {
		return err
	}
	s.log, err = hackpadfs.OpenFile(s.fsys, s.path(logName), hackpadfs.FlagReadWrite, 0)
	if errors.Is(err, hackpadfs.ErrNotExist) {
		err = s.create()
	}
	if err != nil {
		return err
	}

	var hdr [headerSize]byte
	if err := readAt(s.log, hdr[:], 0); err != nil {
		return fmt.Errorf("read log header: %w", err)
	}
	version, baseLSN, baseCount, err := decodeHeader(hdr[:])
	if err != nil {
		return err
	}
	s.version = version

	// The base LSNs. An entry newer than baseLSN was written by a checkpoint
	// that crashed before replacing the log: that page is rewritten or
	// dropped by the log, checked below; until then it counts as 0 so that
	// the index stays ordered.
	raw := make([]byte, int64(baseCount)*lsnSize)
	if err := readAt(s.lsns, raw, 0); err != nil {
		return fmt.Errorf("read %s: %w", lsnsName, err)
	}
	lsns := make([]uint64, baseCount)
	var suspect []uint32
	for i := range lsns {
		lsns[i] = binary.LittleEndian.Uint64(raw[i*lsnSize:])
		if lsns[i] > baseLSN {
			lsns[i] = 0
			suspect = append(suspect, uint32(i+1))
		}
	}
	s.state = storestate.Load(baseLSN, baseCount, lsns)
	s.loc = make([]int64, baseCount+1)
	for no := 1; no <= int(baseCount); no++ {
		s.loc[no] = locData
	}

	if err := s.replay(); err != nil {
		return err
	}

	for _, no := range suspect {
		if no <= s.state.LowWater() && s.state.PageLSN(no) <= baseLSN {
			return fmt.Errorf("%w: %s: page %d changed at an LSN after %d that the log does not hold", vfs.ErrCorrupt, lsnsName, no, baseLSN)
		}
	}
	var top uint32 // the highest page read from data
	for no := s.state.PageCount(); no > 0; no-- {
		if s.loc[no] == locData {
			top = no
			break
		}
	}
	info, err := s.data.Stat()
	if err != nil {
		return err
	}
	if info.Size() < int64(top)*vfs.PageSize {
		return fmt.Errorf("%w: %s holds %d bytes, page %d needs %d", vfs.ErrCorrupt, dataName, info.Size(), top, int64(top)*vfs.PageSize)
	}
	return nil
}

// create starts a new store: an empty log with a header at LSN 0.
func (s *Store) create() error {
	for _, f := range []hackpadfs.File{s.data, s.lsns} {
		info, err := f.Stat()
		if err != nil {
			return err
		}
		if info.Size() != 0 {
			return fmt.Errorf("%w: %s has data but %s is missing", vfs.ErrCorrupt, info.Name(), logName)
		}
	}
	if err := s.writeNewLog(formatVersion, 0, 0); err != nil {
		return err
	}
	var err error
	s.log, err = hackpadfs.OpenFile(s.fsys, s.path(logName), hackpadfs.FlagReadWrite, 0)
	return err
}

// LSN returns the LSN of the last applied commit.
func (s *Store) LSN() uint64 { return storestate.ReadLocked(&s.mu, s.state.LSN) }

// PageCount returns the number of pages.
func (s *Store) PageCount() uint32 { return storestate.ReadLocked(&s.mu, s.state.PageCount) }

// ReadPage copies page no into buf, from the log or from data.
func (s *Store) ReadPage(no uint32, buf []byte) error {
	if len(buf) < vfs.PageSize {
		return fmt.Errorf("filestore: read page %d: buffer holds %d bytes, need %d", no, len(buf), vfs.PageSize)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.readPage(no, buf[:vfs.PageSize])
}

// readPage reads page no into buf, which is PageSize long; the caller holds
// mu for reading.
func (s *Store) readPage(no uint32, buf []byte) error {
	if s.closed {
		return fmt.Errorf("filestore: read page %d: %w", no, vfs.ErrClosed)
	}
	if no == 0 || no > s.state.PageCount() {
		clear(buf)
		return nil
	}
	var err error
	switch off := s.loc[no]; off {
	case locZero:
		clear(buf)
	case locData:
		err = readAt(s.data, buf, int64(no-1)*vfs.PageSize)
	default:
		err = readAt(s.log, buf, off)
	}
	if err != nil {
		return fmt.Errorf("filestore: read page %d: %w", no, err)
	}
	return nil
}

// Apply makes c durable with one append and one fsync of the log, then
// checkpoints if the log has outgrown its threshold.
func (s *Store) Apply(c vfs.Commit) error {
	return s.apply(c, true)
}

// ApplyDeferred is Apply without the fsync: c reads at once and is durable
// once SyncApplied returns. It syncs a deferred commit before it first, so
// only the log's last record is ever unsynced: a crash can lose it or tear
// it, and Open cuts a torn tail, while a damaged record followed by a valid
// one still means corruption. A checkpoint or Close syncs first.
func (s *Store) ApplyDeferred(c vfs.Commit) error {
	return s.apply(c, false)
}

// SyncApplied makes the commits ApplyDeferred applied durable. If the fsync
// fails their fate is unknown, and no further commit may follow them.
func (s *Store) SyncApplied() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.syncDeferred()
}

// syncDeferred fsyncs the log if it holds deferred commits. The caller
// holds wmu.
func (s *Store) syncDeferred() error {
	if !s.deferred || s.closed {
		return nil
	}
	if err := fsync.File(s.log); err != nil {
		s.broken = fmt.Errorf("sync deferred commits: %w", err)
		return fmt.Errorf("filestore: %w", s.broken)
	}
	s.deferred = false
	return nil
}

func (s *Store) apply(c vfs.Commit, durable bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.applyLocked(c, durable)
}

// applyLocked does the work of apply; the caller holds wmu. The commit
// record empties the stage (see Staging).
func (s *Store) applyLocked(c vfs.Commit, durable bool) error {
	if err := s.writable(); err != nil {
		return fmt.Errorf("filestore: apply commit %d: %w", c.LSN, err)
	}
	if err := c.Validate(s.state.LSN()); err != nil {
		return fmt.Errorf("filestore: apply commit %d: %w", c.LSN, err)
	}
	if !durable {
		if err := s.syncDeferred(); err != nil {
			return fmt.Errorf("filestore: apply commit %d: %w", c.LSN, err)
		}
	}
	rec := encodeRecord(c)
	// A durable commit makes the deferred ones before it durable too.
	off, err := s.appendRecord(rec, durable)
	if err != nil {
		return fmt.Errorf("filestore: apply commit %d: %w", c.LSN, err)
	}
	s.deferred = !durable
	s.mu.Lock()
	s.applyRecord(c.LSN, c.PageCount, c.PageNumbers(), off)
	s.logSize = off + int64(len(rec))
	s.mu.Unlock()

	// The commit is durable whatever happens now: a failed checkpoint leaves
	// the log in charge, is retried by the next Apply and reported by Close.
	s.autoCheckpoint()
	return nil
}

// writable reports why the log cannot take a record, if it cannot. The
// caller holds wmu.
func (s *Store) writable() error {
	if s.closed {
		return vfs.ErrClosed
	}
	if s.broken != nil {
		return fmt.Errorf("log unusable after an earlier failure: %w", s.broken)
	}
	return nil
}

// appendRecord writes rec at the end of the log with one write and, if
// durable, fsyncs the log; it returns the offset of rec. If either fails it
// takes the record back, so that it cannot reappear at the next Open; if
// that fails too, no further record may follow it. The caller holds wmu and
// publishes the record (logSize included) once it returns.
func (s *Store) appendRecord(rec []byte, durable bool) (int64, error) {
	off := s.logSize
	err := writeAt(s.log, rec, off)
	if err == nil && durable {
		err = fsync.File(s.log)
	}
	if err != nil {
		if terr := errors.Join(hackpadfs.TruncateFile(s.log, off), fsync.File(s.log)); terr != nil {
			s.broken = errors.Join(err, terr)
		}
		return 0, err
	}
	return off, nil
}

// autoCheckpoint checkpoints if the log has outgrown its threshold and no
// stage is pending, and keeps the outcome for Close. The caller holds wmu.
func (s *Store) autoCheckpoint() {
	if s.stage != nil {
		return
	}
	threshold := s.opts.CheckpointBytes
	if threshold == 0 {
		threshold = max(DefaultCheckpointBytes, int64(s.state.PageCount())*vfs.PageSize)
	}
	if threshold > 0 && s.logSize > threshold && s.logSize > headerSize {
		s.ckptErr = s.checkpoint()
	}
}

// ChangedSince returns the pages changed after lsn.
func (s *Store) ChangedSince(lsn uint64) []uint32 {
	return storestate.ReadLocked(&s.mu, func() []uint32 { return s.state.ChangedSince(lsn) })
}

// ReadChanged returns the pages changed after lsn, with the LSN and page
// count, as one version: Apply waits meanwhile before it publishes a commit
// (its append and fsync go ahead).
func (s *Store) ReadChanged(lsn uint64) (vfs.Commit, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return vfs.Commit{}, fmt.Errorf("filestore: read changed pages: %w", vfs.ErrClosed)
	}
	return vfs.ReadCommit(s.state.LSN(), s.state.PageCount(), s.state.ChangedSince(lsn), s.readPage)
}

// Close closes the store's files. It reports a failure of the last automatic
// checkpoint, if any (the commits are durable regardless).
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	serr := s.syncDeferred()
	s.closed = true
	s.loc = nil
	s.clearStage()
	s.state.Forget()
	err := s.closeFiles()
	if err != nil {
		err = fmt.Errorf("filestore: close %s: %w", s.dir, err)
	}
	return errors.Join(s.ckptErr, serr, err)
}

func (s *Store) closeFiles() error {
	var errs []error
	for _, f := range []hackpadfs.File{s.log, s.data, s.lsns} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	s.log, s.data, s.lsns = nil, nil, nil
	// Last: the directory is free once nothing of it is open.
	errs = append(errs, s.lock.Release())
	return errors.Join(errs...)
}

func (s *Store) runHook(stage string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(stage)
}

// readAt fills p from offset off of f; a short file is ErrCorrupt.
func readAt(f hackpadfs.File, p []byte, off int64) error {
	n, err := hackpadfs.ReadAtFile(f, p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: short read, %d of %d bytes at offset %d", vfs.ErrCorrupt, n, len(p), off)
	}
	return err
}

// writeAt writes all of p at offset off of f.
func writeAt(f hackpadfs.File, p []byte, off int64) error {
	n, err := hackpadfs.WriteAtFile(f, p, off)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	return err
}

// readerAt adapts a hackpadfs.File to io.ReaderAt.
type readerAt struct{ f hackpadfs.File }

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	return hackpadfs.ReadAtFile(r.f, p, off)
}
