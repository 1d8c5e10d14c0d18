package server

import (
	"encoding/json"
	"errors"
	"fmt"

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
// COMMIT (engine.CoordinatorOptions.RecordRejections), so a rejection is
// durable whenever the commit is. Lines of a commit that did not happen
// (its COMMIT failed, or the coordinator died before it) name an LSN the
// document does not have: record's undo cuts them off at once, and
// openRejectionLog after a crash.
type rejectionLog struct {
	lineLog
	// broken is set once lines of a failed commit could not be cut off:
	// nothing more is recorded.
	broken error
}

// openRejectionLog opens (creating if needed) the rejections file name and
// returns it with the lines it keeps, oldest first: those of commits up to
// lsn, the document's LSN.
func openRejectionLog(open openLines, lsn uint64) (*rejectionLog, []rejectionLine, error) {
	var kept []rejectionLine
	f, err := open(rejectionsFile, func(b []byte) (bool, error) {
		var line rejectionLine
		if err := json.Unmarshal(b, &line); err != nil {
			return false, err
		}
		if line.Client == "" || line.LSN == 0 {
			return false, errors.New("no client or LSN")
		}
		if line.LSN > lsn {
			return false, nil // this commit and the ones after it never happened
		}
		kept = append(kept, line)
		return true, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open rejections: %w", err)
	}
	return &rejectionLog{lineLog: f}, kept, nil
}

// record appends the rejections of the commit at lsn (it is
// engine.CoordinatorOptions.RecordRejections); undo forgets them if the
// COMMIT fails.
func (l *rejectionLog) record(lsn uint64, rejected []engine.Rejection) (undo func(), err error) {
	if l.broken != nil {
		return nil, l.broken
	}
	lines := make([]any, len(rejected))
	for i, r := range rejected {
		fr := rejectedFrame(r)
		lines[i] = rejectionLine{LSN: lsn, Client: r.Mutation.ClientID, Seq: fr.Seq, Message: fr.Message}
	}
	m := l.mark()
	if err := l.append(lines...); err != nil {
		return nil, err
	}
	return func() {
		if err := l.undo(m); err != nil {
			// The lines stay, naming an LSN the next commit will have:
			// refuse to record more (commits that reject mutations fail,
			// their clients retry) rather than record them wrongly.
			l.broken = fmt.Errorf("the rejections file could not be cut back after a failed commit: %w", err)
		}
	}, nil
}

// compact rewrites the log with kept() (what the document still keeps)
// once it has grown past maxRejectionLines; kept is only called then.
func (l *rejectionLog) compact(kept func() []rejectionLine) error {
	if l.count() <= maxRejectionLines {
		return nil
	}
	lines := kept()
	values := make([]any, len(lines))
	for i, line := range lines {
		values[i] = line
	}
	return l.replace(values...)
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
