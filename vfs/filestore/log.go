package filestore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/vfs/fsync"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/internal/storestate"
)

// On-disk format.
const (
	logMagic = "SQSL"
	// Record magics: "SQS" and a letter for the kind (see recordKind).
	recordMagic      = "SQSR" // a commit: Apply, ApplyDeferred
	stageMagic       = "SQSG" // pages staged: Stage
	stageCommitMagic = "SQSK" // the stage committed: CommitStaged
	dropMagic        = "SQSX" // the stage dropped: DropStaged
	magicPrefix      = "SQS"

	formatVersion = 1 // a log of commit records only
	stageVersion  = 2 // a log that may hold stage records too (see Staging)

	headerSize  = 24               // magic, version, baseLSN, basePageCount, crc
	recordFixed = 20               // magic, LSN, PageCount, number of pages
	stageFixed  = 10               // magic, cursor length, number of pages; the cursor comes before the number
	dropSize    = 16               // magic, LSN, crc
	entrySize   = 4 + vfs.PageSize // page number, page bytes
	crcSize     = 4                // the record's trailing crc32c
	lsnSize     = 8                // one entry of lsns
)

// recordKind is the last letter of a record's magic.
type recordKind byte

// The kinds of log records.
const (
	kindCommit      recordKind = 'R'
	kindStage       recordKind = 'G'
	kindStageCommit recordKind = 'K'
	kindDrop        recordKind = 'X'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeNewLog makes log a fresh, durable log holding only a header.
func (s *Store) writeNewLog(version uint32, baseLSN uint64, baseCount uint32) error {
	if err := s.writeTmpLog(version, baseLSN, baseCount); err != nil {
		return err
	}
	if err := s.renameTmpLog(); err != nil {
		return err
	}
	s.version = version
	return nil
}

// writeTmpLog writes tmp as a fresh, durable log holding only a header.
func (s *Store) writeTmpLog(version uint32, baseLSN uint64, baseCount uint32) error {
	f, err := hackpadfs.OpenFile(s.fsys, s.path(tmpName), hackpadfs.FlagReadWrite|hackpadfs.FlagCreate|hackpadfs.FlagTruncate, 0o644)
	if err != nil {
		return err
	}
	err = writeAt(f, encodeHeader(version, baseLSN, baseCount), 0)
	if err == nil {
		err = fsync.File(f)
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
	return fsync.Dir(s.fsys, s.dir)
}

// record is a log record as replay sees it.
type record struct {
	kind   recordKind
	lsn    uint64 // commits: the LSN they bring; a drop: the store's LSN
	count  uint32 // commits: the page count after them
	cursor []byte // a stage record's cursor
	nos    []uint32
	first  int64 // the offset of the first entry from the record's start
	size   int64
}

// follows reports whether rec may follow a store at lsn, as far as its own
// fields tell: findRecord's test that it is a record and not stray bytes.
func (rec record) follows(lsn uint64) bool {
	switch rec.kind {
	case kindCommit, kindStageCommit:
		return rec.lsn > lsn
	case kindDrop:
		return rec.lsn >= lsn
	}
	return true
}

// entry returns the log offset of the bytes of the record's i-th page, for
// the record at recOff.
func (rec record) entry(recOff int64, i int) int64 {
	return recOff + rec.first + int64(i)*entrySize + 4
}

// Reasons a record does not parse.
var (
	errTorn     = errors.New("incomplete record")
	errChecksum = errors.New("record checksum mismatch")
)

// readRecord parses the record at the start of r, which has remaining bytes;
// stages says whether the log may hold stage records (format version 2). A
// record that does not fit, or whose magic, cursor length or page count is
// impossible, is errTorn; one that fits but fails its CRC is errChecksum,
// with rec.size set.
func readRecord(r *bufio.Reader, remaining int64, stages bool) (rec record, err error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || string(magic[:3]) != magicPrefix {
		return rec, errTorn
	}
	crc := crc32.Update(0, castagnoli, magic[:])
	// read reads len(p) bytes of the record into p and adds them to crc.
	read := func(p []byte) error {
		if _, err := io.ReadFull(r, p); err != nil {
			return errTorn
		}
		crc = crc32.Update(crc, castagnoli, p)
		return nil
	}
	var n uint32
	rec.kind = recordKind(magic[3])
	switch {
	case rec.kind == kindCommit, stages && rec.kind == kindStageCommit:
		var fixed [recordFixed - 4]byte
		if err := read(fixed[:]); err != nil {
			return rec, err
		}
		rec.lsn = binary.LittleEndian.Uint64(fixed[0:])
		rec.count = binary.LittleEndian.Uint32(fixed[8:])
		n = binary.LittleEndian.Uint32(fixed[12:])
		if n > rec.count {
			return rec, errTorn
		}
		rec.first = recordFixed
	case stages && rec.kind == kindStage:
		var length [2]byte
		if err := read(length[:]); err != nil {
			return rec, err
		}
		cl := int64(binary.LittleEndian.Uint16(length[:]))
		if cl > vfs.MaxCursor || stageFixed+cl+crcSize > remaining {
			return rec, errTorn
		}
		rec.cursor = make([]byte, cl)
		var count [4]byte
		if err := read(rec.cursor); err != nil {
			return rec, err
		}
		if err := read(count[:]); err != nil {
			return rec, err
		}
		n = binary.LittleEndian.Uint32(count[:])
		rec.first = stageFixed + cl
	case stages && rec.kind == kindDrop:
		var lsn [8]byte
		if err := read(lsn[:]); err != nil {
			return rec, err
		}
		rec.lsn = binary.LittleEndian.Uint64(lsn[:])
		rec.first = dropSize - crcSize
	default:
		return rec, errTorn
	}
	rec.size = rec.first + int64(n)*entrySize + crcSize
	if rec.size > remaining {
		return rec, errTorn
	}
	rec.nos = make([]uint32, n)
	var entry [entrySize]byte
	for i := range rec.nos {
		if err := read(entry[:]); err != nil {
			return rec, err
		}
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
// cutting off a torn tail, and gathers the stage the log leaves pending.
func (s *Store) replay() error {
	info, err := s.log.Stat()
	if err != nil {
		return err
	}
	size := info.Size()
	stages := s.version >= stageVersion
	off := int64(headerSize)
	r := bufio.NewReaderSize(io.NewSectionReader(readerAt{s.log}, off, size-off), 1<<16)
	for off < size {
		rec, err := readRecord(r, size-off, stages)
		if err != nil {
			// A damaged record followed by a valid one is not a torn tail.
			if at := s.findRecord(off+1, size, s.state.LSN(), stages); at >= 0 {
				return fmt.Errorf("%w: %s: damaged record at offset %d (%v) but a valid one follows at offset %d", vfs.ErrCorrupt, logName, off, err, at)
			}
			// A torn tail: the commit (or the Stage, or the drop) was never
			// acknowledged.
			if err := hackpadfs.TruncateFile(s.log, off); err != nil {
				return fmt.Errorf("cut torn log tail at offset %d: %w", off, err)
			}
			if err := fsync.File(s.log); err != nil {
				return fmt.Errorf("cut torn log tail at offset %d: %w", off, err)
			}
			break
		}
		if err := s.replayRecord(rec, off); err != nil {
			return fmt.Errorf("%w: %s: record at offset %d: %v", vfs.ErrCorrupt, logName, off, err)
		}
		off += rec.size
	}
	s.logSize = off
	return nil
}

// replayRecord applies a whole, valid record at offset off of the log to
// the state, after checking it as Apply, Stage, CommitStaged or DropStaged
// checked it before writing it.
func (s *Store) replayRecord(rec record, off int64) error {
	switch rec.kind {
	case kindCommit:
		if err := s.state.Check(rec.lsn, rec.count, rec.nos); err != nil {
			return err
		}
		s.applyRecord(rec.lsn, rec.count, rec.nos, off)
	case kindStageCommit:
		// CheckStaged wants page bytes: one page of zeros stands for all.
		c := vfs.Commit{LSN: rec.lsn, PageCount: rec.count, Pages: make([]vfs.Page, len(rec.nos))}
		zeros := make([]byte, vfs.PageSize)
		for i, no := range rec.nos {
			c.Pages[i] = vfs.Page{No: no, Data: zeros}
		}
		if err := vfs.CheckStaged(s.state.LSN(), s.state.PageCount(), c, s.stage.pages()); err != nil {
			return err
		}
		s.applyStaged(rec.lsn, rec.count, rec.nos, off)
	case kindStage:
		for _, no := range rec.nos {
			if no == 0 {
				return errors.New("stages page 0")
			}
		}
		s.addStaged(rec.cursor, rec.nos, off+rec.first)
	case kindDrop:
		if rec.lsn != s.state.LSN() {
			return fmt.Errorf("drops a stage at LSN %d, but the store is at %d", rec.lsn, s.state.LSN())
		}
		s.clearStage()
	}
	return nil
}

// findRecord returns the offset of the first whole, valid record that may
// follow a store at lsn (see record.follows) and starts at or after from,
// or -1.
func (s *Store) findRecord(from, size int64, lsn uint64, stages bool) int64 {
	if from >= size {
		return -1
	}
	r := bufio.NewReaderSize(io.NewSectionReader(readerAt{s.log}, from, size-from), 1<<16)
	var window uint32
	// The low three bytes of window hold the first three of the last four
	// bytes read.
	prefix := binary.LittleEndian.Uint32([]byte(magicPrefix + "\x00"))
	for pos := from; ; pos++ {
		b, err := r.ReadByte()
		if err != nil {
			return -1
		}
		window = window>>8 | uint32(b)<<24
		if at := pos - 3; at >= from && window&0xffffff == prefix {
			rr := bufio.NewReader(io.NewSectionReader(readerAt{s.log}, at, size-at))
			if rec, err := readRecord(rr, size-at, stages); err == nil && rec.follows(lsn) {
				return at
			}
		}
	}
}

// applyRecord updates the in-memory state with a commit record at offset
// recOff of the log, and empties the stage: a commit other than
// CommitStaged's ends a download. The caller holds wmu and, outside Open,
// mu.
func (s *Store) applyRecord(lsn uint64, count uint32, nos []uint32, recOff int64) {
	ch := s.state.Change(lsn, count, nos)
	s.resizeLoc(ch)
	for i, no := range nos {
		s.loc[no] = recOff + recordFixed + int64(i)*entrySize + 4
	}
	s.state.Apply(ch)
	s.clearStage()
}

// applyStaged updates the in-memory state with a stage-commit record at
// offset recOff of the log, which writes pages nos: as one commit of the
// staged pages up to count overlaid with nos, read where they lie in the
// log. The stage empties. The caller holds wmu and, outside Open, mu.
func (s *Store) applyStaged(lsn uint64, count uint32, nos []uint32, recOff int64) {
	all := make([]uint32, 0, s.stage.len()+len(nos))
	for no := range s.stage.pages() {
		if no <= count {
			all = append(all, no)
		}
	}
	all = append(all, nos...)
	slices.Sort(all)
	all = slices.Compact(all)
	ch := s.state.Change(lsn, count, all)
	s.resizeLoc(ch)
	for no, off := range s.stage.all() {
		if no <= count {
			s.loc[no] = off
		}
	}
	for i, no := range nos {
		s.loc[no] = recOff + recordFixed + int64(i)*entrySize + 4
	}
	s.state.Apply(ch)
	s.clearStage()
}

// resizeLoc sizes loc for the page count after ch: pages that come into
// being read as zeros (locZero) until their writes are recorded.
func (s *Store) resizeLoc(ch storestate.Change) {
	if ch.Shrinks() {
		s.loc = s.loc[:ch.PageCount+1]
	} else {
		s.loc = append(s.loc, make([]int64, ch.PageCount-ch.OldCount)...)
	}
}

// addStaged records in memory the pages nos of a stage record, whose first
// entry is at offset first of the log, and its cursor. The caller holds wmu
// and, outside Open, mu.
func (s *Store) addStaged(cursor []byte, nos []uint32, first int64) {
	if s.stage == nil {
		s.stage = newStageIndex()
	}
	for i, no := range nos {
		s.stage.set(no, first+int64(i)*entrySize+4)
	}
	s.cursor = cursor
	s.staged += len(nos)
}

// clearStage empties the stage in memory. The caller holds wmu and, outside
// Open, mu.
func (s *Store) clearStage() {
	s.stage, s.cursor, s.staged = nil, nil, 0
}

func encodeHeader(version uint32, baseLSN uint64, baseCount uint32) []byte {
	b := make([]byte, headerSize)
	copy(b, logMagic)
	binary.LittleEndian.PutUint32(b[4:], version)
	binary.LittleEndian.PutUint64(b[8:], baseLSN)
	binary.LittleEndian.PutUint32(b[16:], baseCount)
	binary.LittleEndian.PutUint32(b[20:], crc32.Checksum(b[:20], castagnoli))
	return b
}

func decodeHeader(b []byte) (version uint32, baseLSN uint64, baseCount uint32, err error) {
	version = binary.LittleEndian.Uint32(b[4:])
	switch {
	case string(b[:4]) != logMagic:
		return 0, 0, 0, fmt.Errorf("%w: %s: bad magic %q", vfs.ErrCorrupt, logName, b[:4])
	case binary.LittleEndian.Uint32(b[20:]) != crc32.Checksum(b[:20], castagnoli):
		return 0, 0, 0, fmt.Errorf("%w: %s: header checksum mismatch", vfs.ErrCorrupt, logName)
	case version != formatVersion && version != stageVersion:
		return 0, 0, 0, fmt.Errorf("%w: %s: unknown format version %d", vfs.ErrCorrupt, logName, version)
	}
	return version, binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint32(b[16:]), nil
}

func recordSize(pages int) int64 {
	return recordFixed + int64(pages)*entrySize + crcSize
}

// encodeRecord returns c's commit record; c must be valid.
func encodeRecord(c vfs.Commit) []byte {
	return encodeCommit(recordMagic, c)
}

// encodeCommit returns c's record with magic, recordMagic or
// stageCommitMagic; c must be valid.
func encodeCommit(magic string, c vfs.Commit) []byte {
	b := make([]byte, recordSize(len(c.Pages)))
	copy(b, magic)
	binary.LittleEndian.PutUint64(b[4:], c.LSN)
	binary.LittleEndian.PutUint32(b[12:], c.PageCount)
	binary.LittleEndian.PutUint32(b[16:], uint32(len(c.Pages)))
	return putEntries(b, recordFixed, c.Pages)
}

// encodeStage returns the stage record of pages with cursor; they must pass
// vfs.ValidateStage.
func encodeStage(cursor []byte, pages []vfs.Page) []byte {
	at := stageFixed + len(cursor)
	b := make([]byte, int64(at)+int64(len(pages))*entrySize+crcSize)
	copy(b, stageMagic)
	binary.LittleEndian.PutUint16(b[4:], uint16(len(cursor)))
	copy(b[6:], cursor)
	binary.LittleEndian.PutUint32(b[at-4:], uint32(len(pages)))
	return putEntries(b, at, pages)
}

// encodeDrop returns the record that drops the stage of a store at lsn.
func encodeDrop(lsn uint64) []byte {
	b := make([]byte, dropSize)
	copy(b, dropMagic)
	binary.LittleEndian.PutUint64(b[4:], lsn)
	return putEntries(b, dropSize-crcSize, nil)
}

// putEntries writes pages into record b from offset at, then the CRC of all
// before it, which ends b.
func putEntries(b []byte, at int, pages []vfs.Page) []byte {
	for _, p := range pages {
		binary.LittleEndian.PutUint32(b[at:], p.No)
		copy(b[at+4:], p.Data)
		at += entrySize
	}
	binary.LittleEndian.PutUint32(b[at:], crc32.Checksum(b[:at], castagnoli))
	return b
}
