package pendinglog_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	osfs "github.com/hack-pad/hackpadfs/os"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
)

func filesystems(t *testing.T) map[string]hackpadfs.FS {
	m, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	o, err := osfs.NewFS().Sub(t.TempDir()[1:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]hackpadfs.FS{"mem": m, "os": o}
}

func seqs(ms []engine.Mutation) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

func TestAppendTrimReopen(t *testing.T) {
	for name, fsys := range filesystems(t) {
		t.Run(name, func(t *testing.T) {
			l, err := pendinglog.Open(fsys, "pending")
			if err != nil {
				t.Fatal(err)
			}
			id := l.ClientID()
			for seq := uint64(1); seq <= 10; seq++ {
				if err := l.Append(engine.Mutation{Seq: seq, Name: "add", Args: []byte(fmt.Sprint(seq))}); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Trim(3); err != nil {
				t.Fatal(err)
			}
			l.Close()
			l, err = pendinglog.Open(fsys, "pending")
			if err != nil {
				t.Fatal(err)
			}
			if l.ClientID() != id {
				t.Fatalf("client ID changed across reopen: %q, want %q", l.ClientID(), id)
			}
			got, _ := l.Load()
			// Trimmed records may survive in the file; the engine drops them
			// by last_seq. Everything after the trim point must be there.
			if !slices.Equal(seqs(got)[len(got)-7:], []uint64{4, 5, 6, 7, 8, 9, 10}) {
				t.Fatalf("reopened log holds %v", seqs(got))
			}
			if string(got[len(got)-1].Args) != "10" || got[len(got)-1].Name != "add" {
				t.Fatalf("last record %+v", got[len(got)-1])
			}
			if err := l.Trim(10); err != nil {
				t.Fatal(err)
			}
			l.Close()
			l, _ = pendinglog.Open(fsys, "pending")
			if got, _ := l.Load(); len(got) != 0 {
				t.Fatalf("after trimming everything the log holds %v", seqs(got))
			}
			l.Close()
		})
	}
}

func TestTornTail(t *testing.T) {
	fsys, _ := mem.NewFS()
	l, _ := pendinglog.Open(fsys, "pending")
	l.Append(engine.Mutation{Seq: 1, Name: "a"})
	l.Append(engine.Mutation{Seq: 2, Name: "b", Args: []byte("xyz")})
	l.Close()
	data, _ := hackpadfs.ReadFile(fsys, "pending")
	for cut := 1; cut < 12; cut++ {
		hackpadfs.WriteFullFile(fsys, "pending", data[:len(data)-cut], 0o644)
		l, err := pendinglog.Open(fsys, "pending")
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		got, _ := l.Load()
		if !slices.Equal(seqs(got), []uint64{1}) {
			t.Fatalf("cut %d: log holds %v, want [1]", cut, seqs(got))
		}
		// Appending after a cut tail must give a readable log.
		l.Append(engine.Mutation{Seq: 2, Name: "b"})
		l.Close()
		l, _ = pendinglog.Open(fsys, "pending")
		if got, _ := l.Load(); !slices.Equal(seqs(got), []uint64{1, 2}) {
			t.Fatalf("cut %d: after re-append the log holds %v", cut, seqs(got))
		}
		l.Close()
	}
}
