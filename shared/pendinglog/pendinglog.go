// Package pendinglog keeps a client's pending mutations durably: an
// append-only file on a hackpadfs file system (one fsync per mutation), or
// memory for tests. The file also holds the client's ID, so a replica's
// identity and its unacknowledged writes live and die together.
//
// Every log is a [Mirror], the pending mutations in memory with the rules
// about them, over a [Journal] that only stores: [File] over a file,
// [Memory] over nothing, and package idblog's log over IndexedDB.
//
// File layout: a header record holding the client ID, then one record per
// mutation. A record is its payload length (uint32), a CRC-32C of the
// payload, then the payload. A torn final record (a crash mid-append) is cut
// off on open: its mutation never returned to the caller. A damaged record
// with a valid newer record after it is not a torn tail (every append is
// synced before the next is written) but damage to acknowledged mutations:
// Open reports it as [ErrCorrupt] and cuts nothing.
//
// A new or rewritten log is written to name.tmp, synced, renamed over name,
// and the directory is synced, so the rename survives a crash. Trimming
// every mutation (a client that keeps up) instead cuts the file back to its
// header in place and syncs it: no new file on the hot path.
//
// One process at a time: on the os file system Open holds an exclusive
// flock on name.lock until Close, and a second Open fails at once with an
// error wrapping [dirlock.ErrInUse] (see package dirlock).
package pendinglog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"slices"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/vfs/fsync"

	"github.com/sqlsync-go/sqlsync/internal/dirlock"
	"github.com/sqlsync-go/sqlsync/shared/engine"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const magic = "sqlsync-pending-1"

var errClosed = errors.New("log closed")

// File is a pending log in a file, held until Close.
type File struct{ *Mirror }

var _ engine.PendingLog = (*File)(nil)

// fileJournal is the journal of a File.
type fileJournal struct {
	fsys hackpadfs.FS
	name string
	f    hackpadfs.File // nil once closed
	lock *dirlock.Lock
	id   string
	size int64 // bytes of valid records, where the next append goes
}

var _ Journal = (*fileJournal)(nil)

// Open opens or creates the log file name on fsys. A new log gets a fresh
// random client ID.
func Open(fsys hackpadfs.FS, name string) (*File, error) {
	lock, err := dirlock.Acquire(fsys, name+".lock", "state directory "+dirlock.OSPath(fsys, path.Dir(name)))
	if err != nil {
		return nil, fmt.Errorf("pendinglog: open %s: %w", name, err)
	}
	f, err := hackpadfs.OpenFile(fsys, name, hackpadfs.FlagReadWrite|hackpadfs.FlagCreate, 0o644)
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("pendinglog: open %s: %w", name, err)
	}
	j := &fileJournal{fsys: fsys, name: name, f: f, lock: lock}
	m, err := NewMirror(j)
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("pendinglog: open %s: %w", name, err)
	}
	return &File{m}, nil
}

// Load reads the log, creating it if empty, and cuts a torn tail.
func (j *fileJournal) Load() (string, []engine.Mutation, error) {
	data, err := readAll(j.f)
	if err != nil {
		return "", nil, fmt.Errorf("read: %w", err)
	}
	if len(data) == 0 {
		j.id = NewClientID()
		if err := j.rewrite(nil); err != nil {
			return "", nil, fmt.Errorf("create: %w", err)
		}
		return j.id, nil, nil
	}
	payload, n, ok := nextRecord(data)
	if !ok || len(payload) < len(magic) || string(payload[:len(magic)]) != magic {
		return "", nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	j.id = string(payload[len(magic):])
	var log []engine.Mutation
	off := n
	for off < len(data) {
		payload, n, ok := nextRecord(data[off:])
		if !ok {
			// A torn tail, unless a valid record follows.
			var last uint64
			if len(log) > 0 {
				last = log[len(log)-1].Seq
			}
			if at, seq, found := laterRecord(data, off+1, last); found {
				return "", nil, fmt.Errorf("%w: damaged record at offset %d, before the valid record of seq %d at offset %d", ErrCorrupt, off, seq, at)
			}
			break
		}
		m, err := decodeMutation(payload)
		if err != nil {
			return "", nil, fmt.Errorf("%w: record at %d: %v", ErrCorrupt, off, err)
		}
		log = append(log, m)
		off += n
	}
	j.size = int64(off)
	if off < len(data) {
		if err := hackpadfs.TruncateFile(j.f, j.size); err != nil {
			return "", nil, fmt.Errorf("cut torn tail: %w", err)
		}
	}
	return j.id, log, nil
}

func readAll(f hackpadfs.File) ([]byte, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, info.Size())
	n, err := hackpadfs.ReadAtFile(f, buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// laterRecord looks for a valid mutation record starting anywhere at or
// after from whose seq is above after: proof that the bytes before it are
// damage, not a torn tail. Appends are synced one by one, so a crash tears
// at most the last record and leaves nothing valid behind it.
func laterRecord(data []byte, from int, after uint64) (at int, seq uint64, found bool) {
	for at = from; at+8 <= len(data); at++ {
		payload, _, ok := nextRecord(data[at:])
		if !ok {
			continue
		}
		m, err := decodeMutation(payload)
		if err == nil && m.Seq > after {
			return at, m.Seq, true
		}
	}
	return 0, 0, false
}

// nextRecord returns the record at the start of b, if whole and valid. No
// record has an empty payload (a mutation has at least its seq and name
// length), so zeros, as a crash can leave after a file's end, are not one.
func nextRecord(b []byte) (payload []byte, n int, ok bool) {
	if len(b) < 8 {
		return nil, 0, false
	}
	size := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if size == 0 || uint64(size) > uint64(len(b)-8) {
		return nil, 0, false
	}
	payload = b[8 : 8+size]
	if crc32.Checksum(payload, castagnoli) != sum {
		return nil, 0, false
	}
	return payload, 8 + int(size), true
}

func record(payload []byte) []byte {
	out := make([]byte, 8, 8+len(payload))
	binary.LittleEndian.PutUint32(out, uint32(len(payload)))
	binary.LittleEndian.PutUint32(out[4:], crc32.Checksum(payload, castagnoli))
	return append(out, payload...)
}

func encodeMutation(m engine.Mutation) []byte {
	b := binary.AppendUvarint(nil, m.Seq)
	b = binary.AppendUvarint(b, uint64(len(m.Name)))
	b = append(b, m.Name...)
	return append(b, m.Args...)
}

func decodeMutation(b []byte) (engine.Mutation, error) {
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return engine.Mutation{}, errors.New("bad seq")
	}
	b = b[n:]
	size, n := binary.Uvarint(b)
	if n <= 0 || size > uint64(len(b)-n) {
		return engine.Mutation{}, errors.New("bad name")
	}
	b = b[n:]
	return engine.Mutation{Seq: seq, Name: string(b[:size]), Args: slices.Clone(b[size:])}, nil
}

// Append writes m at the end of the valid records and syncs the file.
func (j *fileJournal) Append(m engine.Mutation) error {
	if j.f == nil {
		return errClosed
	}
	rec := record(encodeMutation(m))
	if _, err := hackpadfs.WriteAtFile(j.f, rec, j.size); err != nil {
		j.cutFailedAppend()
		return fmt.Errorf("write: %w", err)
	}
	if err := fsync.File(j.f); err != nil {
		j.cutFailedAppend()
		return fmt.Errorf("sync: %w", err)
	}
	j.size += int64(len(rec))
	return nil
}

// cutFailedAppend drops what a failed append may have left after the valid
// records, so that it cannot pass for one of them. Best effort: if this
// fails too, the next append overwrites the same place.
func (j *fileJournal) cutFailedAppend() {
	if hackpadfs.TruncateFile(j.f, j.size) == nil {
		fsync.File(j.f)
	}
}

// DeleteThrough cuts the file back to its header when nothing stays, and
// otherwise rewrites it only when that frees most of it.
func (j *fileJournal) DeleteThrough(through uint64, dropped, rest []engine.Mutation) error {
	if j.f == nil {
		return errClosed
	}
	switch {
	case len(rest) == 0:
		// Everything is acknowledged (the usual case: a client that keeps
		// up): cut the file back to its header in place, one truncate and
		// one sync, rather than write, rename and sync a new file. A crash
		// leaves it whole or cut, and either is right.
		if err := hackpadfs.TruncateFile(j.f, j.headerSize()); err != nil {
			return fmt.Errorf("cut to header: %w", err)
		}
		if err := fsync.File(j.f); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		j.size = j.headerSize()
	case len(dropped) < len(rest):
		// Dropped records may stay in the file for a while: whoever opens
		// the log drops the mutations its snapshot shows as applied.
		// Rewrite only when the file would shrink by half, so trimming
		// stays amortised O(1).
	default:
		if err := j.rewrite(rest); err != nil {
			return fmt.Errorf("rewrite: %w", err)
		}
	}
	return nil
}

// headerSize is the length of the header record: 8 bytes of length and CRC,
// then the magic and the client ID.
func (j *fileJournal) headerSize() int64 { return int64(8 + len(magic) + len(j.id)) }

// rewrite replaces the file with the header and ms: written to a temporary
// file, synced, then renamed over the log.
func (j *fileJournal) rewrite(ms []engine.Mutation) error {
	buf := record(append([]byte(magic), j.id...))
	for _, m := range ms {
		buf = append(buf, record(encodeMutation(m))...)
	}
	tmp := j.name + ".tmp"
	f, err := hackpadfs.OpenFile(j.fsys, tmp, hackpadfs.FlagReadWrite|hackpadfs.FlagCreate|hackpadfs.FlagTruncate, 0o644)
	if err != nil {
		return err
	}
	if _, err := hackpadfs.WriteAtFile(f, buf, 0); err != nil {
		f.Close()
		return err
	}
	if err := fsync.File(f); err != nil {
		f.Close()
		return err
	}
	if err := hackpadfs.Rename(j.fsys, tmp, j.name); err != nil {
		f.Close()
		return err
	}
	// The rename (and, for a new log, the file's creation) is durable only
	// once the directory is.
	if err := fsync.Dir(j.fsys, path.Dir(j.name)); err != nil {
		f.Close()
		return err
	}
	j.f.Close()
	j.f = f
	j.size = int64(len(buf))
	return nil
}

// Close closes the file and releases the log to other processes.
func (j *fileJournal) Close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return errors.Join(err, j.lock.Release())
}
