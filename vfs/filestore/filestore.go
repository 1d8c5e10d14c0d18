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
//   - log: the commit log, appended to by every Apply.
//
// The log starts with a 24-byte header, all integers little-endian:
//
//	magic "SQSL" | format version u32 (1) | baseLSN u64 | basePageCount u32 | crc32c u32
//
// where the CRC (Castagnoli) covers the 20 bytes before it. data and lsns hold
// the state at baseLSN, with basePageCount pages. Each commit follows as one
// record:
//
//	magic "SQSR" | LSN u64 | PageCount u32 | n u32 | n × (page number u32, PageSize bytes) | crc32c u32
//
// where the CRC covers everything in the record before it.
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
// damaged record (bad magic, impossible length or CRC mismatch) with a valid,
// newer record anywhere after it is not a torn tail but damage to
// acknowledged commits: Open reports it as [vfs.ErrCorrupt], like a bad
// header or a record whose LSN does not grow.
//
// # Checkpoints
//
// When the log outgrows a threshold (by default the larger of 4 MiB and the
// size of data), Apply folds it into the base files:
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
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"sync"

	"github.com/hack-pad/hackpadfs"

	"github.com/sqlsync-go/sqlsync/internal/dirlock"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/internal/pageindex"
)

// File names inside a store directory.
const (
	dataName = "data"
	lsnsName = "lsns"
	logName  = "log"
	tmpName  = "log.tmp"
	lockName = "lock" // see Locking
)

// On-disk format.
const (
	logMagic      = "SQSL"
	recordMagic   = "SQSR"
	formatVersion = 1
	headerSize    = 24               // magic, version, baseLSN, basePageCount, crc
	recordFixed   = 20               // magic, LSN, PageCount, number of pages
	entrySize     = 4 + vfs.PageSize // page number, page bytes
	crcSize       = 4                // the record's trailing crc32c
	lsnSize       = 8                // one entry of lsns
	minRecordSize = recordFixed + crcSize
)

// Where the newest version of a page lives, when not at a log offset (> 0).
const (
	locZero int64 = 0  // nowhere: the page reads as zeros
	locData int64 = -1 // in data
)

// DefaultCheckpointBytes is the smallest log size that triggers a checkpoint
// when OpenOptions.CheckpointBytes is 0.
const DefaultCheckpointBytes = 4 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

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

	lsn     uint64
	count   uint32
	loc     []int64 // by page number (loc[0] unused): log offset, locData or locZero
	index   *pageindex.Index
	data    hackpadfs.File
	lsns    hackpadfs.File
	log     hackpadfs.File
	logSize int64
	closed  bool
	lock    *dirlock.Lock

	// Writer-only state, under wmu.
	lowWater uint32 // lowest page count since the last checkpoint
	broken   error  // set when the log can no longer be appended to
	ckptErr  error  // the last automatic checkpoint's failure, if any
	hook     func(stage string) error
}

var (
	_ vfs.Store        = (*Store)(nil)
	_ vfs.ChangeReader = (*Store)(nil)
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
	baseLSN, baseCount, err := decodeHeader(hdr[:])
	if err != nil {
		return err
	}

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
	s.index = pageindex.Build(lsns)
	s.loc = make([]int64, baseCount+1)
	for no := 1; no <= int(baseCount); no++ {
		s.loc[no] = locData
	}
	s.lsn, s.count, s.lowWater = baseLSN, baseCount, baseCount

	if err := s.replay(); err != nil {
		return err
	}

	for _, no := range suspect {
		if no <= s.lowWater && s.index.LSN(no) <= baseLSN {
			return fmt.Errorf("%w: %s: page %d changed at an LSN after %d that the log does not hold", vfs.ErrCorrupt, lsnsName, no, baseLSN)
		}
	}
	var top uint32 // the highest page read from data
	for no := s.count; no > 0; no-- {
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
	if err := s.writeNewLog(0, 0); err != nil {
		return err
	}
	var err error
	s.log, err = hackpadfs.OpenFile(s.fsys, s.path(logName), hackpadfs.FlagReadWrite, 0)
	return err
}

// writeNewLog makes log a fresh, durable log holding only a header.
func (s *Store) writeNewLog(baseLSN uint64, baseCount uint32) error {
	if err := s.writeTmpLog(baseLSN, baseCount); err != nil {
		return err
	}
	return s.renameTmpLog()
}

// writeTmpLog writes tmp as a fresh, durable log holding only a header.
func (s *Store) writeTmpLog(baseLSN uint64, baseCount uint32) error {
	f, err := hackpadfs.OpenFile(s.fsys, s.path(tmpName), hackpadfs.FlagReadWrite|hackpadfs.FlagCreate|hackpadfs.FlagTruncate, 0o644)
	if err != nil {
		return err
	}
	err = writeAt(f, encodeHeader(baseLSN, baseCount), 0)
	if err == nil {
		err = syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmpName, err)
	}
	return s.runHook("tmp")
}

// renameTmpLog makes tmp the log, durably.
func (s *Store) renameTmpLog() error {
	if err := hackpadfs.Rename(s.fsys, s.path(tmpName), s.path(logName)); err != nil {
		return err
	}
	if err := s.runHook("rename"); err != nil {
		return err
	}
	return s.syncDir()
}

// record is a log record as replay sees it.
type record struct {
	lsn   uint64
	count uint32
	nos   []uint32
	size  int64
}

// Reasons a record does not parse.
var (
	errTorn     = errors.New("incomplete record")
	errChecksum = errors.New("record checksum mismatch")
)

// readRecord parses the record at the start of r, which has remaining bytes.
// A record that does not fit, or whose magic or page count is impossible, is
// errTorn; one that fits but fails its CRC is errChecksum, with rec.size set.
func readRecord(r *bufio.Reader, remaining int64) (rec record, err error) {
	if remaining < minRecordSize {
		return rec, errTorn
	}
	var fixed [recordFixed]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return rec, errTorn
	}
	if string(fixed[:4]) != recordMagic {
		return rec, errTorn
	}
	rec.lsn = binary.LittleEndian.Uint64(fixed[4:])
	rec.count = binary.LittleEndian.Uint32(fixed[12:])
	n := binary.LittleEndian.Uint32(fixed[16:])
	if n > rec.count {
		return rec, errTorn
	}
	rec.size = recordSize(int(n))
	if rec.size > remaining {
		return rec, errTorn
	}
	crc := crc32.Update(0, castagnoli, fixed[:])
	rec.nos = make([]uint32, n)
	var entry [entrySize]byte
	for i := range rec.nos {
		if _, err := io.ReadFull(r, entry[:]); err != nil {
			return rec, errTorn
		}
		crc = crc32.Update(crc, castagnoli, entry[:])
		rec.nos[i] = binary.LittleEndian.Uint32(entry[:4])
	}
	var sum [crcSize]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return rec, errTorn
	}
	if binary.LittleEndian.Uint32(sum[:]) != crc {
		return rec, errChecksum
	}
	return rec, nil
}

// replay applies the log's records to the state loaded from the base files,
// cutting off a torn tail.
func (s *Store) replay() error {
	info, err := s.log.Stat()
	if err != nil {
		return err
	}
	size := info.Size()
	off := int64(headerSize)
	r := bufio.NewReaderSize(io.NewSectionReader(readerAt{s.log}, off, size-off), 1<<16)
	for off < size {
		rec, err := readRecord(r, size-off)
		if err != nil {
			// A damaged record followed by a valid one is not a torn tail.
			if at := s.findRecord(off+1, size, s.lsn); at >= 0 {
				return fmt.Errorf("%w: %s: damaged record at offset %d (%v) but a valid one follows at offset %d", vfs.ErrCorrupt, logName, off, err, at)
			}
			// A torn tail: the commit was never acknowledged.
			if err := hackpadfs.TruncateFile(s.log, off); err != nil {
				return fmt.Errorf("cut torn log tail at offset %d: %w", off, err)
			}
			if err := syncFile(s.log); err != nil {
				return fmt.Errorf("cut torn log tail at offset %d: %w", off, err)
			}
			break
		}
		if rec.lsn <= s.lsn {
			return fmt.Errorf("%w: %s: record at offset %d has LSN %d after %d", vfs.ErrCorrupt, logName, off, rec.lsn, s.lsn)
		}
		var prev uint32
		for _, no := range rec.nos {
			if no <= prev || no > rec.count {
				return fmt.Errorf("%w: %s: record at offset %d (LSN %d) has page %d out of order or outside 1..%d", vfs.ErrCorrupt, logName, off, rec.lsn, no, rec.count)
			}
			prev = no
		}
		s.applyRecord(rec.lsn, rec.count, rec.nos, off)
		off += rec.size
	}
	s.logSize = off
	return nil
}

// findRecord returns the offset of the first whole, valid record with an LSN
// above lsn that starts at or after from, or -1.
func (s *Store) findRecord(from, size int64, lsn uint64) int64 {
	if from >= size {
		return -1
	}
	r := bufio.NewReaderSize(io.NewSectionReader(readerAt{s.log}, from, size-from), 1<<16)
	var window uint32
	magic := binary.LittleEndian.Uint32([]byte(recordMagic))
	for pos := from; ; pos++ {
		b, err := r.ReadByte()
		if err != nil {
			return -1
		}
		window = window>>8 | uint32(b)<<24
		if at := pos - 3; at >= from && window == magic {
			rr := bufio.NewReader(io.NewSectionReader(readerAt{s.log}, at, size-at))
			if rec, err := readRecord(rr, size-at); err == nil && rec.lsn > lsn {
				return at
			}
		}
	}
}

// applyRecord updates the in-memory state with a record at offset recOff of
// the log. The caller holds wmu and, outside Open, mu.
func (s *Store) applyRecord(lsn uint64, count uint32, nos []uint32, recOff int64) {
	if count < s.count {
		s.loc = s.loc[:count+1]
		s.index.Truncate(count)
	} else if count > s.count {
		s.loc = append(s.loc, make([]int64, count-s.count)...)
		// Grown pages changed too (to zeros, unless written below): a
		// replica that missed an earlier shrink must get them.
		for no := s.count + 1; no <= count; no++ {
			s.index.Touch(no, lsn)
		}
	}
	for i, no := range nos {
		s.loc[no] = recOff + recordFixed + int64(i)*entrySize + 4
		s.index.Touch(no, lsn)
	}
	s.lsn, s.count = lsn, count
	s.lowWater = min(s.lowWater, count)
}

// LSN returns the LSN of the last applied commit.
func (s *Store) LSN() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lsn
}

// PageCount returns the number of pages.
func (s *Store) PageCount() uint32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count
}

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
	if no == 0 || no > s.count {
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
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return fmt.Errorf("filestore: apply commit %d: %w", c.LSN, vfs.ErrClosed)
	}
	if s.broken != nil {
		return fmt.Errorf("filestore: apply commit %d: log unusable after an earlier failure: %w", c.LSN, s.broken)
	}
	if err := c.Validate(s.lsn); err != nil {
		return fmt.Errorf("filestore: apply commit %d: %w", c.LSN, err)
	}
	rec := encodeRecord(c)
	off := s.logSize
	err := writeAt(s.log, rec, off)
	if err == nil {
		err = syncFile(s.log)
	}
	if err != nil {
		// Take the record back so that it cannot reappear at the next Open;
		// if that fails too, no further commit may follow it.
		if terr := errors.Join(hackpadfs.TruncateFile(s.log, off), syncFile(s.log)); terr != nil {
			s.broken = errors.Join(err, terr)
		}
		return fmt.Errorf("filestore: apply commit %d: %w", c.LSN, err)
	}
	nos := make([]uint32, len(c.Pages))
	for i, p := range c.Pages {
		nos[i] = p.No
	}
	s.mu.Lock()
	s.applyRecord(c.LSN, c.PageCount, nos, off)
	s.logSize = off + int64(len(rec))
	s.mu.Unlock()

	// The commit is durable whatever happens now: a failed checkpoint leaves
	// the log in charge, is retried by the next Apply and reported by Close.
	threshold := s.opts.CheckpointBytes
	if threshold == 0 {
		threshold = max(DefaultCheckpointBytes, int64(s.count)*vfs.PageSize)
	}
	if threshold > 0 && s.logSize > threshold && s.logSize > headerSize {
		s.ckptErr = s.checkpoint()
	}
	return nil
}

// Checkpoint folds the log into data and lsns and starts a fresh log.
func (s *Store) Checkpoint() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return fmt.Errorf("filestore: checkpoint: %w", vfs.ErrClosed)
	}
	if s.broken != nil {
		return fmt.Errorf("filestore: checkpoint: log unusable after an earlier failure: %w", s.broken)
	}
	s.ckptErr = s.checkpoint()
	return s.ckptErr
}

// checkpoint does the work of Checkpoint; the caller holds wmu. Readers run
// meanwhile: they read data only for pages it leaves alone, and the log
// through the old handle until the swap.
func (s *Store) checkpoint() error {
	if err := s.fold(); err != nil {
		return fmt.Errorf("filestore: checkpoint at LSN %d: %w", s.lsn, err)
	}
	return nil
}

func (s *Store) fold() error {
	// 1. data: drop the pages above the low water mark, copy every page
	// whose newest version is in the log, size to the page count, sync.
	info, err := s.data.Stat()
	if err != nil {
		return err
	}
	if low := int64(s.lowWater) * vfs.PageSize; info.Size() > low {
		if err := hackpadfs.TruncateFile(s.data, low); err != nil {
			return fmt.Errorf("truncate %s: %w", dataName, err)
		}
	}
	if err := s.runHook("truncate"); err != nil {
		return err
	}
	buf := make([]byte, vfs.PageSize)
	for no := uint32(1); no <= s.count; no++ {
		off := s.loc[no]
		if off <= 0 {
			continue
		}
		if err := readAt(s.log, buf, off); err != nil {
			return fmt.Errorf("read page %d from %s: %w", no, logName, err)
		}
		if err := writeAt(s.data, buf, int64(no-1)*vfs.PageSize); err != nil {
			return fmt.Errorf("write page %d to %s: %w", no, dataName, err)
		}
		if err := s.runHook("page"); err != nil {
			return err
		}
	}
	if err := hackpadfs.TruncateFile(s.data, int64(s.count)*vfs.PageSize); err != nil {
		return fmt.Errorf("size %s: %w", dataName, err)
	}
	if err := syncFile(s.data); err != nil {
		return fmt.Errorf("sync %s: %w", dataName, err)
	}
	if err := s.runHook("data"); err != nil {
		return err
	}

	// 2. lsns, in place. It is cut to size only after the swap: until then
	// the old log may need entries up to its own base page count.
	snap := s.index.Snapshot(s.count)
	raw := make([]byte, len(snap)*lsnSize)
	for i, lsn := range snap {
		binary.LittleEndian.PutUint64(raw[i*lsnSize:], lsn)
	}
	if err := writeAt(s.lsns, raw, 0); err != nil {
		return fmt.Errorf("write %s: %w", lsnsName, err)
	}
	if err := syncFile(s.lsns); err != nil {
		return fmt.Errorf("sync %s: %w", lsnsName, err)
	}
	if err := s.runHook("lsns"); err != nil {
		return err
	}

	// 3. The swap: from here on the base files are the state. Readers go
	// on reading the old log until the rename, but not after it: a handle
	// to a replaced file may fail (on OPFS it does), so they wait from the
	// rename to the swap.
	if err := s.writeTmpLog(s.lsn, s.count); err != nil {
		return err
	}
	s.mu.Lock()
	old, err := s.swapLog()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.lowWater = s.count
	err = old.Close()
	if terr := hackpadfs.TruncateFile(s.lsns, int64(s.count)*lsnSize); terr != nil {
		err = errors.Join(err, fmt.Errorf("truncate %s: %w", lsnsName, terr))
	}
	return err
}

// swapLog makes tmp the log and reads pages from data or from it from now
// on. The caller holds wmu and mu. It returns the old log's handle.
func (s *Store) swapLog() (old hackpadfs.File, err error) {
	if err := s.renameTmpLog(); err != nil {
		return nil, err
	}
	log, err := hackpadfs.OpenFile(s.fsys, s.path(logName), hackpadfs.FlagReadWrite, 0)
	if err != nil {
		// The directory is consistent, but appends would go to the old log.
		s.broken = err
		return nil, fmt.Errorf("reopen %s: %w", logName, err)
	}
	old = s.log
	s.log, s.logSize = log, headerSize
	for no := 1; no < len(s.loc); no++ {
		s.loc[no] = locData
	}
	return old, nil
}

// ChangedSince returns the pages changed after lsn.
func (s *Store) ChangedSince(lsn uint64) []uint32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.index.ChangedSince(lsn)
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
	c := vfs.Commit{LSN: s.lsn, PageCount: s.count}
	for _, no := range s.index.ChangedSince(lsn) {
		buf := make([]byte, vfs.PageSize)
		if err := s.readPage(no, buf); err != nil {
			return vfs.Commit{}, err
		}
		c.Pages = append(c.Pages, vfs.Page{No: no, Data: buf})
	}
	return c, nil
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
	s.closed = true
	s.loc, s.index = nil, nil
	err := s.closeFiles()
	if err != nil {
		err = fmt.Errorf("filestore: close %s: %w", s.dir, err)
	}
	return errors.Join(s.ckptErr, err)
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

// syncDir makes a rename in the store directory durable, on file systems
// whose directories can be synced.
func (s *Store) syncDir() error {
	d, err := hackpadfs.OpenFile(s.fsys, s.dir, hackpadfs.FlagReadOnly, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	err = hackpadfs.SyncFile(d)
	if errors.Is(err, hackpadfs.ErrNotImplemented) || errors.Is(err, hackpadfs.ErrInvalid) || errors.Is(err, errors.ErrUnsupported) {
		err = nil // the file system cannot sync directories
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// syncFile flushes f to stable storage. A file system whose files cannot be
// synced (such as the memory FS) has nothing to flush.
func syncFile(f hackpadfs.File) error {
	if err := hackpadfs.SyncFile(f); err != nil && !errors.Is(err, hackpadfs.ErrNotImplemented) {
		return err
	}
	return nil
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

func encodeHeader(baseLSN uint64, baseCount uint32) []byte {
	b := make([]byte, headerSize)
	copy(b, logMagic)
	binary.LittleEndian.PutUint32(b[4:], formatVersion)
	binary.LittleEndian.PutUint64(b[8:], baseLSN)
	binary.LittleEndian.PutUint32(b[16:], baseCount)
	binary.LittleEndian.PutUint32(b[20:], crc32.Checksum(b[:20], castagnoli))
	return b
}

func decodeHeader(b []byte) (baseLSN uint64, baseCount uint32, err error) {
	switch {
	case string(b[:4]) != logMagic:
		return 0, 0, fmt.Errorf("%w: %s: bad magic %q", vfs.ErrCorrupt, logName, b[:4])
	case binary.LittleEndian.Uint32(b[20:]) != crc32.Checksum(b[:20], castagnoli):
		return 0, 0, fmt.Errorf("%w: %s: header checksum mismatch", vfs.ErrCorrupt, logName)
	case binary.LittleEndian.Uint32(b[4:]) != formatVersion:
		return 0, 0, fmt.Errorf("%w: %s: unknown format version %d", vfs.ErrCorrupt, logName, binary.LittleEndian.Uint32(b[4:]))
	}
	return binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint32(b[16:]), nil
}

func recordSize(pages int) int64 {
	return recordFixed + int64(pages)*entrySize + crcSize
}

// encodeRecord returns c's log record; c must be valid.
func encodeRecord(c vfs.Commit) []byte {
	b := make([]byte, recordSize(len(c.Pages)))
	copy(b, recordMagic)
	binary.LittleEndian.PutUint64(b[4:], c.LSN)
	binary.LittleEndian.PutUint32(b[12:], c.PageCount)
	binary.LittleEndian.PutUint32(b[16:], uint32(len(c.Pages)))
	at := recordFixed
	for _, p := range c.Pages {
		binary.LittleEndian.PutUint32(b[at:], p.No)
		copy(b[at+4:], p.Data)
		at += entrySize
	}
	binary.LittleEndian.PutUint32(b[at:], crc32.Checksum(b[:at], castagnoli))
	return b
}
