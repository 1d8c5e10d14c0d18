package filestore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/vfs/fsync"

	"github.com/sqlsync-go/sqlsync/vfs"
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

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

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
			if at := s.findRecord(off+1, size, s.state.LSN()); at >= 0 {
				return fmt.Errorf("%w: %s: damaged record at offset %d (%v) but a valid one follows at offset %d", vfs.ErrCorrupt, logName, off, err, at)
			}
			// A torn tail: the commit was never acknowledged.
			if err := hackpadfs.TruncateFile(s.log, off); err != nil {
				return fmt.Errorf("cut torn log tail at offset %d: %w", off, err)
			}
			if err := fsync.File(s.log); err != nil {
				return fmt.Errorf("cut torn log tail at offset %d: %w", off, err)
			}
			break
		}
		if err := s.state.Check(rec.lsn, rec.count, rec.nos); err != nil {
			return fmt.Errorf("%w: %s: record at offset %d: %v", vfs.ErrCorrupt, logName, off, err)
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
	ch := s.state.Change(lsn, count, nos)
	if ch.Shrinks() {
		s.loc = s.loc[:count+1]
	} else {
		// Grown pages read as zeros (locZero) unless written below.
		s.loc = append(s.loc, make([]int64, count-ch.OldCount)...)
	}
	for i, no := range nos {
		s.loc[no] = recOff + recordFixed + int64(i)*entrySize + 4
	}
	s.state.Apply(ch)
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
