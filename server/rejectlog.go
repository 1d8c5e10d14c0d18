package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
)

// rejectionsFile is the file, in a document's directory, keeping the
// document's recent rejections for clients that have not heard of them.
// Like the identities file it stays on the coordinator: a rejection's
// message is its client's business, not every replica's.
const rejectionsFile = "rejections"

// maxRejectionLines is how long the rejections file may grow before the
// document rewrites it with only what it still keeps.
const maxRejectionLines = 4 * maxKeptPerClient * 16

// rejectionLine is one line of the rejections file: client's mutation seq
// was rejected with message by the commit at lsn.
type rejectionLine struct {
	LSN     uint64 `json:"lsn"`
	Client  string `json:"client"`
	Seq     uint64 `json:"seq"`
	Message string `json:"message"`
}

// rejectionLog is a document's rejections file. Its lines are appended
// and synced inside the commit that rejects the mutations, before its
// COMMIT (engine.CoordinatorOptions.BeforeCommit), so a rejection is
// durable whenever the commit is. Lines of a commit that did not happen
// (its COMMIT failed, or the coordinator died before it) name an LSN the
// document does not have: undo cuts them off at once, and openRejectionLog
// after a crash. A torn last line is cut off on open too.
type rejectionLog struct {
	fsys  hackpadfs.FS
	name  string
	f     hackpadfs.File
	size  int64
	lines int
	// broken is set once lines of a failed commit could not be cut off:
	// nothing more is recorded.
	broken error
}

// openRejectionLog opens (creating if needed) the rejections file name and
// returns it with the lines it keeps, oldest first: those of commits up to
// lsn, the document's LSN.
func openRejectionLog(fsys hackpadfs.FS, name string, lsn uint64) (*rejectionLog, []rejectionLine, error) {
	_, err := hackpadfs.Stat(fsys, name)
	created := errors.Is(err, hackpadfs.ErrNotExist)
	if err != nil && !created {
		return nil, nil, fmt.Errorf("open rejections: %w", err)
	}
	f, err := hackpadfs.OpenFile(fsys, name, hackpadfs.FlagReadWrite|hackpadfs.FlagCreate, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open rejections: %w", err)
	}
	l := &rejectionLog{fsys: fsys, name: name, f: f}
	if created {
		if err := syncDir(fsys, path.Dir(name)); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("open rejections: %w", err)
		}
	}
	lines, err := l.load(lsn)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("open rejections %s: %w", name, err)
	}
	return l, lines, nil
}

func (l *rejectionLog) load(lsn uint64) ([]rejectionLine, error) {
	info, err := l.f.Stat()
	if err != nil {
		return nil, err
	}
	data := make([]byte, info.Size())
	n, err := hackpadfs.ReadAtFile(l.f, data, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	data = data[:n]
	var out []rejectionLine
	off := 0
	for {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break // a torn or empty tail
		}
		var line rejectionLine
		if err := json.Unmarshal(data[off:off+i], &line); err != nil || line.Client == "" || line.LSN == 0 {
			return nil, fmt.Errorf("corrupt line at byte %d", off)
		}
		if line.LSN > lsn {
			break // this commit and the ones after it never happened
		}
		out = append(out, line)
		off += i + 1
	}
	l.size, l.lines = int64(off), len(out)
	if off < len(data) {
		if err := l.truncate(l.size); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// append records lines durably.
func (l *rejectionLog) append(lines []rejectionLine) error {
	var buf bytes.Buffer
	for _, line := range lines {
		b, err := json.Marshal(line)
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
	}
	if _, err := hackpadfs.WriteAtFile(l.f, buf.Bytes(), l.size); err != nil {
		l.truncate(l.size)
		return fmt.Errorf("append rejections: %w", err)
	}
	if err := hackpadfs.SyncFile(l.f); err != nil && !errors.Is(err, hackpadfs.ErrNotImplemented) {
		l.truncate(l.size)
		return fmt.Errorf("append rejections: sync: %w", err)
	}
	l.size += int64(buf.Len())
	l.lines += len(lines)
	return nil
}

// record appends the rejections of the commit at lsn (it is
// engine.CoordinatorOptions.RecordRejections); undo forgets them if the
// COMMIT fails.
func (l *rejectionLog) record(lsn uint64, rejected []engine.Rejection) (undo func(), err error) {
	lines := make([]rejectionLine, len(rejected))
	for i, r := range rejected {
		fr := rejectedFrame(r)
		lines[i] = rejectionLine{LSN: lsn, Client: r.Mutation.ClientID, Seq: fr.Seq, Message: fr.Message}
	}
	if l.broken != nil {
		return nil, l.broken
	}
	size, n := l.mark()
	if err := l.append(lines); err != nil {
		return nil, err
	}
	return func() {
		if err := l.undo(size, n); err != nil {
			// The lines stay, naming an LSN the next commit will have:
			// refuse to record more (commits that reject mutations fail,
			// their clients retry) rather than record them wrongly.
			l.broken = fmt.Errorf("the rejections file could not be cut back after a failed commit: %w", err)
		}
	}, nil
}

// rejectedFrame is the Rejected frame for r: the mutator's own message.
func rejectedFrame(r engine.Rejection) protocol.Rejected {
	msg := r.Err.Error()
	var rej *engine.RejectedError
	if errors.As(r.Err, &rej) {
		msg = rej.Message
	}
	return protocol.Rejected{Seq: r.Mutation.Seq, Message: msg}
}

// mark returns a point undo can go back to.
func (l *rejectionLog) mark() (int64, int) { return l.size, l.lines }

// undo forgets what was appended since mark: the commit did not happen.
func (l *rejectionLog) undo(size int64, lines int) error {
	if size == l.size {
		return nil
	}
	l.size, l.lines = size, lines
	return l.truncate(size)
}

func (l *rejectionLog) truncate(size int64) error {
	if err := hackpadfs.TruncateFile(l.f, size); err != nil {
		return fmt.Errorf("cut rejections to %d bytes: %w", size, err)
	}
	if err := hackpadfs.SyncFile(l.f); err != nil && !errors.Is(err, hackpadfs.ErrNotImplemented) {
		return fmt.Errorf("cut rejections to %d bytes: sync: %w", size, err)
	}
	return nil
}

// rewrite replaces the file with lines (what the document still keeps),
// once it has grown past maxRejectionLines: written aside, synced, and
// renamed over it, so a crash leaves one or the other whole.
func (l *rejectionLog) rewrite(lines []rejectionLine) error {
	if l.lines <= maxRejectionLines {
		return nil
	}
	tmp := l.name + ".new"
	f, err := hackpadfs.OpenFile(l.fsys, tmp, hackpadfs.FlagReadWrite|hackpadfs.FlagCreate|hackpadfs.FlagTruncate, 0o600)
	if err != nil {
		return fmt.Errorf("rewrite rejections: %w", err)
	}
	next := &rejectionLog{fsys: l.fsys, name: l.name, f: f}
	if len(lines) > 0 {
		err = next.append(lines)
	} else if serr := hackpadfs.SyncFile(f); serr != nil && !errors.Is(serr, hackpadfs.ErrNotImplemented) {
		err = serr
	}
	if err == nil {
		err = hackpadfs.Rename(l.fsys, tmp, l.name)
	}
	if err == nil {
		err = syncDir(l.fsys, path.Dir(l.name))
	}
	if err != nil {
		f.Close()
		hackpadfs.Remove(l.fsys, tmp)
		return fmt.Errorf("rewrite rejections: %w", err)
	}
	l.f.Close()
	l.f, l.size, l.lines = f, next.size, next.lines
	return nil
}

func (l *rejectionLog) close() error { return l.f.Close() }
