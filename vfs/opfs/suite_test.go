package opfs

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog/logtest"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/filestore"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

// runSuite runs the FS tests over fresh FSs from newFS; the native tests run
// it over the fake backend, the browser tests over OPFS.
func runSuite(t *testing.T, newFS func(t *testing.T) *FS) {
	t.Run("Files", func(t *testing.T) { testFiles(t, newFS(t)) })
	t.Run("Rename", func(t *testing.T) { testRename(t, newFS(t)) })
	t.Run("Remove", func(t *testing.T) { testRemove(t, newFS(t)) })
	t.Run("Dirs", func(t *testing.T) { testDirs(t, newFS(t)) })
	for _, oc := range []struct {
		name string
		opts filestore.OpenOptions
	}{{"default", filestore.OpenOptions{}}, {"tinycheckpoints", filestore.OpenOptions{CheckpointBytes: 1}}} {
		t.Run("Filestore/"+oc.name, func(t *testing.T) {
			fsys := newFS(t)
			n := 0
			var dir string
			reopen := func(t *testing.T) vfs.Store {
				s, err := filestore.OpenWithOptions(fsys, dir, oc.opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			open := func(t *testing.T) vfs.Store {
				n++
				dir = fmt.Sprintf("stores/%d", n)
				return reopen(t)
			}
			storetest.Run(t, open, reopen)
		})
	}
	t.Run("Pendinglog", func(t *testing.T) {
		fsys := newFS(t)
		n := 0
		logtest.Run(t, func(t *testing.T) logtest.Opener {
			n++
			name := fmt.Sprintf("pending-%d", n)
			return func(t *testing.T) logtest.Log {
				l, err := pendinglog.Open(fsys, name)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
		})
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, fsys *FS, name string, data string) hackpadfs.File {
	t.Helper()
	f, err := fsys.OpenFile(name, hackpadfs.FlagReadWrite|hackpadfs.FlagCreate|hackpadfs.FlagTruncate, 0o644)
	must(t, err)
	if _, err := hackpadfs.WriteAtFile(f, []byte(data), 0); err != nil {
		t.Fatal(err)
	}
	must(t, hackpadfs.SyncFile(f))
	return f
}

func contents(t *testing.T, f hackpadfs.File) string {
	t.Helper()
	info, err := f.Stat()
	must(t, err)
	buf := make([]byte, info.Size())
	if _, err := hackpadfs.ReadAtFile(f, buf, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return string(buf)
}

func testFiles(t *testing.T, fsys *FS) {
	if _, err := fsys.OpenFile("missing", hackpadfs.FlagReadWrite, 0); !errors.Is(err, hackpadfs.ErrNotExist) {
		t.Fatalf("open missing file: %v, want ErrNotExist", err)
	}
	f := create(t, fsys, "a", "hello")
	// A second File on the same name shares the access handle.
	g, err := fsys.OpenFile("a", hackpadfs.FlagReadWrite, 0)
	must(t, err)
	if got := contents(t, g); got != "hello" {
		t.Fatalf("second file reads %q", got)
	}
	if _, err := hackpadfs.WriteAtFile(g, []byte("J"), 0); err != nil {
		t.Fatal(err)
	}
	if got := contents(t, f); got != "Jello" {
		t.Fatalf("first file reads %q after write through second", got)
	}
	buf := make([]byte, 10)
	n, err := hackpadfs.ReadAtFile(f, buf, 2)
	if n != 3 || !errors.Is(err, io.EOF) || string(buf[:n]) != "llo" {
		t.Fatalf("short ReadAt = %d, %v, %q", n, err, buf[:n])
	}
	must(t, hackpadfs.TruncateFile(f, 2))
	if got := contents(t, g); got != "Je" {
		t.Fatalf("after truncate: %q", got)
	}
	if _, err := fsys.OpenFile("a", hackpadfs.FlagReadWrite|hackpadfs.FlagCreate|hackpadfs.FlagExclusive, 0); !errors.Is(err, hackpadfs.ErrExist) {
		t.Fatalf("exclusive create of existing file: %v", err)
	}
	must(t, f.Close())
	must(t, g.Close())
	if err := f.Close(); !errors.Is(err, hackpadfs.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	info, err := fsys.Stat("a")
	must(t, err)
	if info.Size() != 2 || info.IsDir() || info.Name() != "a" {
		t.Fatalf("stat a: %v %v %v", info.Name(), info.Size(), info.IsDir())
	}
	// Read, Write and Seek.
	f, err = fsys.OpenFile("a", hackpadfs.FlagReadWrite|hackpadfs.FlagAppend, 0)
	must(t, err)
	if _, err := hackpadfs.WriteFile(f, []byte("llo")); err != nil {
		t.Fatal(err)
	}
	if _, err := hackpadfs.SeekFile(f, 1, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	must(t, err)
	if string(got) != "ello" {
		t.Fatalf("ReadAll after seek: %q", got)
	}
	must(t, f.Close())
	// Read-only files refuse writes.
	f, err = fsys.Open("a")
	must(t, err)
	if _, err := hackpadfs.WriteAtFile(f, []byte("x"), 0); !errors.Is(err, hackpadfs.ErrPermission) {
		t.Fatalf("write to read-only file: %v", err)
	}
	must(t, f.Close())
}

func testRename(t *testing.T, fsys *FS) {
	old := create(t, fsys, "log", "old")
	tmp := create(t, fsys, "log.tmp", "new")
	// The filestore and pendinglog pattern: rename a synced temporary file
	// over a file that is still open, then keep using the temporary File.
	must(t, fsys.Rename("log.tmp", "log"))
	if got := contents(t, tmp); got != "new" {
		t.Fatalf("renamed file reads %q", got)
	}
	if _, err := hackpadfs.ReadAtFile(old, make([]byte, 1), 0); !errors.Is(err, ErrReplaced) {
		t.Fatalf("read from replaced file: %v, want ErrReplaced", err)
	}
	must(t, old.Close())
	if _, err := hackpadfs.WriteAtFile(tmp, []byte("N"), 0); err != nil {
		t.Fatal(err)
	}
	reopened, err := fsys.OpenFile("log", hackpadfs.FlagReadWrite, 0)
	must(t, err)
	if got := contents(t, reopened); got != "New" {
		t.Fatalf("log reads %q", got)
	}
	must(t, reopened.Close())
	must(t, tmp.Close())
	if _, err := fsys.Stat("log.tmp"); !errors.Is(err, hackpadfs.ErrNotExist) {
		t.Fatalf("stat of renamed-away name: %v", err)
	}
	// Renaming closed files, over a closed file.
	create(t, fsys, "b", "bee").Close()
	must(t, fsys.Rename("b", "log"))
	f, err := fsys.Open("log")
	must(t, err)
	if got := contents(t, f); got != "bee" {
		t.Fatalf("log reads %q", got)
	}
	must(t, f.Close())
	if err := fsys.Rename("nothing", "log"); !errors.Is(err, hackpadfs.ErrNotExist) {
		t.Fatalf("rename of missing file: %v", err)
	}
}

func testRemove(t *testing.T, fsys *FS) {
	f := create(t, fsys, "x", "data")
	must(t, fsys.Remove("x"))
	if _, err := hackpadfs.ReadAtFile(f, make([]byte, 1), 0); !errors.Is(err, ErrReplaced) {
		t.Fatalf("read from removed file: %v", err)
	}
	must(t, f.Close())
	if err := fsys.Remove("x"); !errors.Is(err, hackpadfs.ErrNotExist) {
		t.Fatalf("remove of missing file: %v", err)
	}
	g := create(t, fsys, "x", "again")
	if got := contents(t, g); got != "again" {
		t.Fatalf("recreated file reads %q", got)
	}
	must(t, g.Close())
}

func testDirs(t *testing.T, fsys *FS) {
	must(t, fsys.MkdirAll("d/e/f", 0o755))
	must(t, fsys.MkdirAll("d/e/f", 0o755))
	if err := fsys.Mkdir("d", 0o755); !errors.Is(err, hackpadfs.ErrExist) {
		t.Fatalf("mkdir existing: %v", err)
	}
	info, err := fsys.Stat("d/e")
	must(t, err)
	if !info.IsDir() {
		t.Fatal("d/e is not a directory")
	}
	create(t, fsys, "d/e/f/file", "x").Close()
	if err := fsys.MkdirAll("d/e/f/file/g", 0o755); !errors.Is(err, hackpadfs.ErrNotDir) {
		t.Fatalf("mkdirall through a file: %v", err)
	}
	if _, err := fsys.OpenFile("nodir/file", hackpadfs.FlagReadWrite|hackpadfs.FlagCreate, 0); !errors.Is(err, hackpadfs.ErrNotExist) {
		t.Fatalf("create in missing directory: %v", err)
	}
	// filestore syncs its directory: opening it works, syncing it is not
	// implemented.
	d, err := hackpadfs.OpenFile(fsys, "d/e", hackpadfs.FlagReadOnly, 0)
	must(t, err)
	if err := hackpadfs.SyncFile(d); !errors.Is(err, hackpadfs.ErrNotImplemented) {
		t.Fatalf("sync dir: %v", err)
	}
	must(t, d.Close())
	if err := fsys.Remove("d/e"); !errors.Is(err, hackpadfs.ErrNotEmpty) {
		t.Fatalf("remove of non-empty directory: %v", err)
	}
}
