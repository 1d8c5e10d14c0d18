package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	osfs "github.com/hack-pad/hackpadfs/os"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore/jetstoretest"
)

// TestRejectionLog: the rejections log, on the local disk and in
// JetStream, keeps what was recorded up to the document's LSN; lines of a
// commit that never happened (beyond the LSN) and a torn tail (a file's)
// are cut off on open, an undone record is gone, a corrupt line is an
// error, and a rewrite keeps only what it is given.
func TestRejectionLog(t *testing.T) {
	for _, jet := range []bool{false, true} {
		t.Run(map[bool]string{false: "file", true: "jetstream"}[jet], func(t *testing.T) {
			dir := t.TempDir()
			fsys, err := osfs.NewFS().Sub(strings.TrimPrefix(dir, "/"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "docs", "d"), 0o755); err != nil {
				t.Fatal(err)
			}
			s := &Server{fsys: fsys, cfg: Config{Journal: diskJournal{fsys: fsys}}}
			if jet {
				js := jetstoretest.Start(t)
				st, err := jetstore.EnsureStream(context.Background(), js, "SQLSYNC", 1)
				if err != nil {
					t.Fatal(err)
				}
				s.cfg.Journal = JetStreamJournal(js, st)
			}
			testRejectionLog(t, s.linesOf(context.Background(), "d"), func(data string) {
				if jet {
					js := s.cfg.Journal.(jetJournal).js
					if _, err := js.Publish(context.Background(), jetstore.LinesSubject(rejectionsFile, "d"), []byte(data)); err != nil {
						t.Fatal(err)
					}
					return
				}
				f, err := os.OpenFile(filepath.Join(dir, "docs", "d", rejectionsFile), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString(data)
				f.Close()
			}, jet)
		})
	}
}

// testRejectionLog runs TestRejectionLog on the lines open opens; write
// adds raw bytes to the log, bypassing it.
func testRejectionLog(t *testing.T, open openLines, write func(string), jet bool) {
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
	reopen := func(lsn uint64) (*rejectionLog, []uint64) {
		t.Helper()
		l, lines, err := openRejectionLog(open, lsn)
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

	l, seqs := reopen(0)
	if seqs != nil {
		t.Fatalf("new log holds %v", seqs)
	}
	rec(l, 1, 1, 2)
	rec(l, 2, 3)
	rec(l, 3, 4)() // its COMMIT failed
	rec(l, 3, 5)   // the crash came before this COMMIT
	l.close()
	if !jet {
		write(`{"lsn":3,"cli`) // torn
	}

	l, seqs = reopen(2)
	if !slices.Equal(seqs, []uint64{1, 2, 3}) {
		t.Fatalf("after reopen at LSN 2: %v, want [1 2 3]", seqs)
	}
	rec(l, 3, 6)
	l.close()
	l, seqs = reopen(3)
	if !slices.Equal(seqs, []uint64{1, 2, 3, 6}) {
		t.Fatalf("after reopen at LSN 3: %v, want [1 2 3 6]", seqs)
	}

	// A rewrite happens once the log is long, keeping what it is given.
	for i := range maxRejectionLines / 64 {
		var seqs []uint64
		for j := range 65 {
			seqs = append(seqs, uint64(100+i*65+j))
		}
		rec(l, 4, seqs...)
	}
	if err := l.compact(func() []rejectionLine { return []rejectionLine{{LSN: 4, Client: "c", Seq: 7, Message: "no 7"}} }); err != nil {
		t.Fatal(err)
	}
	rec(l, 5, 8)
	l.close()
	l, seqs = reopen(5)
	if !slices.Equal(seqs, []uint64{7, 8}) {
		t.Fatalf("after a rewrite: %v, want [7 8]", seqs)
	}
	l.close()

	write("{\"lsn\":5,\"client\":\"c\",\"seq\":9,\"message\":\"m\"}\nnot json\n")
	if _, _, err := openRejectionLog(open, 5); err == nil || !strings.Contains(err.Error(), "corrupt line") {
		t.Fatalf("corrupt line: %v", err)
	}
}
