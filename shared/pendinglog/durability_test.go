package pendinglog_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	osfs "github.com/hack-pad/hackpadfs/os"

	"github.com/sqlsync-go/sqlsync/internal/dirlock"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
)

// threeRecords writes a log of seqs 1, 2, 3 and returns its bytes and the
// offset where each mutation record starts.
func threeRecords(t *testing.T, fsys hackpadfs.FS) (data []byte, starts []int) {
	t.Helper()
	l, err := pendinglog.Open(fsys, "pending")
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := hackpadfs.ReadFile(fsys, "pending")
	for seq := uint64(1); seq <= 3; seq++ {
		starts = append(starts, len(prev))
		if err := l.Append(engine.Mutation{Seq: seq, Name: "add", Args: []byte("some args")}); err != nil {
			t.Fatal(err)
		}
		prev, _ = hackpadfs.ReadFile(fsys, "pending")
	}
	l.Close()
	return prev, starts
}

// TestDamageInTheMiddle: a record that fails its checks with valid records
// after it is damage to acknowledged mutations: Open reports ErrCorrupt and
// leaves the file as it was, whatever byte of the record is hit.
func TestDamageInTheMiddle(t *testing.T) {
	fsys, _ := mem.NewFS()
	data, starts := threeRecords(t, fsys)
	for _, victim := range []int{0, 1} { // records of seqs 1 and 2
		end := starts[victim+1]
		for at := starts[victim]; at < end; at++ {
			bad := slices.Clone(data)
			bad[at] ^= 0x40
			hackpadfs.WriteFullFile(fsys, "pending", bad, 0o644)
			l, err := pendinglog.Open(fsys, "pending")
			if err == nil {
				got, _ := l.Load()
				l.Close()
				t.Fatalf("byte %d of seq %d's record flipped: Open succeeded with %v, want ErrCorrupt", at, victim+1, seqs(got))
			}
			if !errors.Is(err, pendinglog.ErrCorrupt) {
				t.Fatalf("byte %d of seq %d's record flipped: %v, want ErrCorrupt", at, victim+1, err)
			}
			if after, _ := hackpadfs.ReadFile(fsys, "pending"); !slices.Equal(after, bad) {
				t.Fatalf("byte %d of seq %d's record flipped: Open changed the file", at, victim+1)
			}
		}
	}
}

// TestDamagedTail: damage to the last record, or garbage after it (an
// append torn mid-write, zeros a crash left past the end), is a torn tail:
// cut, and the log goes on.
func TestDamagedTail(t *testing.T) {
	fsys, _ := mem.NewFS()
	data, starts := threeRecords(t, fsys)
	cases := map[string][]byte{}
	for at := starts[2]; at < len(data); at++ {
		bad := slices.Clone(data)
		bad[at] ^= 0x40
		cases["flip "+string(rune('0'+at-starts[2]))] = bad
	}
	cases["zeros"] = append(slices.Clone(data[:starts[2]]), make([]byte, 64)...)
	cases["half"] = slices.Clone(data[:starts[2]+(len(data)-starts[2])/2])
	for name, bad := range cases {
		hackpadfs.WriteFullFile(fsys, "pending", bad, 0o644)
		l, err := pendinglog.Open(fsys, "pending")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, _ := l.Load(); !slices.Equal(seqs(got), []uint64{1, 2}) {
			t.Fatalf("%s: log holds %v, want [1 2]", name, seqs(got))
		}
		if err := l.Append(engine.Mutation{Seq: 3, Name: "again"}); err != nil {
			t.Fatal(err)
		}
		l.Close()
		l, err = pendinglog.Open(fsys, "pending")
		if err != nil {
			t.Fatalf("%s: reopen after re-append: %v", name, err)
		}
		if got, _ := l.Load(); !slices.Equal(seqs(got), []uint64{1, 2, 3}) || got[2].Name != "again" {
			t.Fatalf("%s: after re-append the log holds %v", name, seqs(got))
		}
		l.Close()
	}
}

// syncFS records renames and directory syncs on a memory FS.
type syncFS struct {
	*mem.FS
	mu  sync.Mutex
	ops []string
}

func (s *syncFS) record(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, op)
}

func (s *syncFS) OpenFile(name string, flag int, perm hackpadfs.FileMode) (hackpadfs.File, error) {
	f, err := s.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, fs: s, name: name}, nil
}

func (s *syncFS) Open(name string) (hackpadfs.File, error) {
	return s.OpenFile(name, hackpadfs.FlagReadOnly, 0)
}

func (s *syncFS) Rename(oldname, newname string) error {
	s.record("rename " + oldname + " " + newname)
	return s.FS.Rename(oldname, newname)
}

type syncFile struct {
	hackpadfs.File
	fs   *syncFS
	name string
}

func (f *syncFile) Sync() error {
	if info, err := f.Stat(); err == nil && info.IsDir() {
		f.fs.record("syncdir " + f.name)
	}
	return nil
}

func (f *syncFile) ReadAt(p []byte, off int64) (int, error) {
	return hackpadfs.ReadAtFile(f.File, p, off)
}

func (f *syncFile) WriteAt(p []byte, off int64) (int, error) {
	return hackpadfs.WriteAtFile(f.File, p, off)
}

func (f *syncFile) Truncate(size int64) error { return hackpadfs.TruncateFile(f.File, size) }

// TestDirectorySyncedAfterRename: creating a log and rewriting it on trim
// each rename a temporary file over it and then sync its directory;
// trimming everything cuts the file in place instead.
func TestDirectorySyncedAfterRename(t *testing.T) {
	m, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	fsys := &syncFS{FS: m}
	if err := fsys.Mkdir("state", 0o755); err != nil {
		t.Fatal(err)
	}
	want := []string{"rename state/pending.tmp state/pending", "syncdir state"}
	l, err := pendinglog.Open(fsys, "state/pending")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fsys.ops, want) {
		t.Fatalf("creating the log: %q, want %q", fsys.ops, want)
	}
	fsys.ops = nil
	for seq := uint64(1); seq <= 4; seq++ {
		if err := l.Append(engine.Mutation{Seq: seq, Name: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Trim(3); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fsys.ops, want) {
		t.Fatalf("rewriting the log on trim: %q, want %q", fsys.ops, want)
	}
	// Trimming everything cuts the file in place: no new file to rename.
	fsys.ops = nil
	if err := l.Trim(4); err != nil {
		t.Fatal(err)
	}
	if len(fsys.ops) != 0 {
		t.Fatalf("trimming everything: %q, want no rename", fsys.ops)
	}
	l.Close()
	l, err = pendinglog.Open(fsys, "state/pending")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Load(); len(got) != 0 {
		t.Fatalf("after trimming everything the log holds %d mutations", len(got))
	}
	l.Close()
}

// TestOneOpenPerLog: while a log is open, a second Open of it, in this
// process or another, fails at once with a clear error; Close frees it.
func TestOneOpenPerLog(t *testing.T) {
	if !dirlock.Supported {
		t.Skip("no flock on this system") // listed in docs/test-skips.md
	}
	dir := t.TempDir()
	fsys, err := osfs.NewFS().Sub(strings.TrimPrefix(filepath.ToSlash(dir), "/"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := pendinglog.Open(fsys, "pending")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(engine.Mutation{Seq: 1, Name: "a"}); err != nil {
		t.Fatal(err)
	}
	_, err = pendinglog.Open(fsys, "pending")
	if !errors.Is(err, dirlock.ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	if want := "state directory " + dir + " is in use by another process"; !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open: %q does not say %q", err, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Append(engine.Mutation{Seq: 2, Name: "a"}); err == nil {
		t.Fatal("Append after Close succeeded")
	}
	l, err = pendinglog.Open(fsys, "pending")
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if got, _ := l.Load(); !slices.Equal(seqs(got), []uint64{1}) {
		t.Fatalf("reopened log holds %v", seqs(got))
	}
	l.Close()
}
