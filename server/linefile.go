package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/vfs/fsync"
)

// lineLog is an append-only log of JSON lines kept beside a document (its
// client identities, its recent rejections): a lineFile in the document's
// directory on the local disk, or jetLines in JetStream, where a node that
// takes the document over finds them.
type lineLog interface {
	// append records values, one line each, durably; on failure none
	// of them stays.
	append(values ...any) error
	// mark returns a point undo can go back to.
	mark() lineMark
	// undo forgets the lines appended since m.
	undo(m lineMark) error
	// replace rewrites the log with values only, atomically.
	replace(values ...any) error
	// count returns the number of lines.
	count() int
	close() error
}

// lineMark is a point in a lineLog: its size (bytes, or last stream
// sequence) and its number of lines.
type lineMark struct {
	size  int64
	lines int
}

// lineFile is an append-only file of JSON lines in a document's directory:
// each append is synced before it returns, and a torn last line (a crash
// mid-append) is cut off on open.
type lineFile struct {
	fsys  hackpadfs.FS
	name  string
	f     hackpadfs.File
	size  int64 // through the last whole line
	lines int
}

// openLineFile opens (creating if needed) the line file name and calls
// each with every whole line, in order, until it returns false: that line
// and what follows are cut off, as is a torn tail. An error from each (a
// corrupt line) fails the open.
func openLineFile(fsys hackpadfs.FS, name string, each func(line []byte) (keep bool, err error)) (*lineFile, error) {
	_, err := hackpadfs.Stat(fsys, name)
	created := errors.Is(err, hackpadfs.ErrNotExist)
	if err != nil && !created {
		return nil, err
	}
	f, err := hackpadfs.OpenFile(fsys, name, hackpadfs.FlagReadWrite|hackpadfs.FlagCreate, 0o600)
	if err != nil {
		return nil, err
	}
	l := &lineFile{fsys: fsys, name: name, f: f}
	if created {
		// Lines synced into a file whose directory entry is not durable
		// could vanish with it in a crash.
		if err := fsync.Dir(fsys, path.Dir(name)); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := l.load(each); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return l, nil
}

func (l *lineFile) load(each func([]byte) (bool, error)) error {
	info, err := l.f.Stat()
	if err != nil {
		return err
	}
	data := make([]byte, info.Size())
	n, err := hackpadfs.ReadAtFile(l.f, data, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	data = data[:n]
	off := 0
	for {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break // a torn or empty tail
		}
		keep, err := each(data[off : off+i])
		if err != nil {
			return fmt.Errorf("corrupt line at byte %d: %w", off, err)
		}
		if !keep {
			break
		}
		off += i + 1
		l.lines++
	}
	l.size = int64(off)
	if off < len(data) {
		return l.truncate(l.size)
	}
	return nil
}

func (l *lineFile) append(values ...any) error {
	buf, err := encodeLines(values)
	if err != nil {
		return err
	}
	_, err = hackpadfs.WriteAtFile(l.f, buf, l.size)
	if err == nil {
		err = fsync.File(l.f)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("append to %s: %w", l.name, err), l.truncate(l.size))
	}
	l.size += int64(len(buf))
	l.lines += len(values)
	return nil
}

func (l *lineFile) mark() lineMark { return lineMark{l.size, l.lines} }

func (l *lineFile) count() int { return l.lines }

func (l *lineFile) undo(m lineMark) error {
	if m.size == l.size {
		return nil
	}
	l.size, l.lines = m.size, m.lines
	return l.truncate(m.size)
}

func (l *lineFile) truncate(size int64) error {
	if err := hackpadfs.TruncateFile(l.f, size); err != nil {
		return fmt.Errorf("cut %s to %d bytes: %w", l.name, size, err)
	}
	if err := fsync.File(l.f); err != nil {
		return fmt.Errorf("cut %s to %d bytes: sync: %w", l.name, size, err)
	}
	return nil
}

// replace writes values aside, syncs them, and renames the file over the
// log, so a crash leaves one or the other whole.
func (l *lineFile) replace(values ...any) error {
	tmp := l.name + ".new"
	f, err := hackpadfs.OpenFile(l.fsys, tmp, hackpadfs.FlagReadWrite|hackpadfs.FlagCreate|hackpadfs.FlagTruncate, 0o600)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", l.name, err)
	}
	next := &lineFile{fsys: l.fsys, name: tmp, f: f}
	err = next.append(values...)
	if err == nil {
		err = hackpadfs.Rename(l.fsys, tmp, l.name)
	}
	if err == nil {
		err = fsync.Dir(l.fsys, path.Dir(l.name))
	}
	if err != nil {
		f.Close()
		hackpadfs.Remove(l.fsys, tmp)
		return fmt.Errorf("rewrite %s: %w", l.name, err)
	}
	l.f.Close()
	l.f, l.size, l.lines = f, next.size, next.lines
	return nil
}

func (l *lineFile) close() error { return l.f.Close() }

// encodeLines encodes values as JSON lines.
func encodeLines(values []any) ([]byte, error) {
	var buf bytes.Buffer
	for _, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		buf.Write(append(b, '\n'))
	}
	return buf.Bytes(), nil
}
