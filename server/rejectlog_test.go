package server

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hack-pad/hackpadfs"
	osfs "github.com/hack-pad/hackpadfs/os"
	"github.com/sqlsync-go/sqlsync/shared/engine"
)

// TestRejectionLogFile: the rejections file keeps what was recorded up to
// the document's LSN; lines of a commit that never happened (beyond the
// LSN) and a torn tail are cut off on open, an undone record is gone, a
// corrupt line is an error, and a rewrite keeps only what it is given.
func TestRejectionLogFile(t *testing.T) {
	dir := t.TempDir()
	fsys, err := osfs.NewFS().Sub(strings.TrimPrefix(dir, "/"))
	if err != nil {
		t.Fatal(err)
	}
	rec := func(l *rejectionLog, lsn uint64, seqs ...uint64) func() {
		t.Helper()
		var rs []engine.Rejection
		for _, s := range seqs {
			rs = append(rs, engine.Rejection{Mutation: engine.Mutation{ClientID: "c", Seq: s}, Err: &engine.RejectedError{Seq: s, Message: fmt.Sprint("no ", s)}})
		}
		undo, err := l.record(lsn, rs)
		if err != nil {
			t.Fatal(err)
		}
		return undo
	}
	open := func(lsn uint64) (*rejectionLog, []uint64) {
		t.Helper()
		l, lines, err := openRejectionLog(fsys, rejectionsFile, lsn)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, line := range lines {
			if line.Message != fmt.Sprint("no ", line.Seq) || line.Client != "c" {
				t.Fatalf("line %+v", line)
			}
			seqs = append(seqs, line.Seq)
		}
		return l, seqs
	}

	l, seqs := open(0)
	if seqs != nil {
		t.Fatalf("new file holds %v", seqs)
	}
	rec(l, 1, 1, 2)
	rec(l, 2, 3)
	rec(l, 3, 4)() // its COMMIT failed
	rec(l, 3, 5)   // the crash came before this COMMIT
	l.close()
	f, err := os.OpenFile(filepath.Join(dir, rejectionsFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"lsn":3,"cli`) // torn
	f.Close()

	l, seqs = open(2)
	if !slices.Equal(seqs, []uint64{1, 2, 3}) {
		t.Fatalf("after reopen at LSN 2: %v, want [1 2 3]", seqs)
	}
	rec(l, 3, 6)
	l.close()
	l, seqs = open(3)
	if !slices.Equal(seqs, []uint64{1, 2, 3, 6}) {
		t.Fatalf("after reopen at LSN 3: %v, want [1 2 3 6]", seqs)
	}

	// A rewrite happens once the file is long, keeping what it is given.
	for i := range maxRejectionLines {
		rec(l, 4, uint64(100+i))
	}
	if err := l.compact([]rejectionLine{{LSN: 4, Client: "c", Seq: 7, Message: "no 7"}}); err != nil {
		t.Fatal(err)
	}
	rec(l, 5, 8)
	l.close()
	l, seqs = open(5)
	if !slices.Equal(seqs, []uint64{7, 8}) {
		t.Fatalf("after a rewrite: %v, want [7 8]", seqs)
	}
	l.close()
	if _, err := hackpadfs.Stat(fsys, rejectionsFile+".new"); err == nil {
		t.Fatal("the rewrite left its temporary file")
	}

	os.WriteFile(filepath.Join(dir, rejectionsFile), []byte("{\"lsn\":1,\"client\":\"c\",\"seq\":1,\"message\":\"m\"}\nnot json\n"), 0o600)
	if _, _, err := openRejectionLog(fsys, rejectionsFile, 5); err == nil || !strings.Contains(err.Error(), "corrupt line at byte 45") {
		t.Fatalf("corrupt line: %v", err)
	}
}
