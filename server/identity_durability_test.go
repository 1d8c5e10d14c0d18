package server

import (
	"slices"
	"sync"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
)

// dirSyncFS records directory syncs on a memory FS.
type dirSyncFS struct {
	*mem.FS
	mu    sync.Mutex
	syncs []string
}

func (s *dirSyncFS) OpenFile(name string, flag int, perm hackpadfs.FileMode) (hackpadfs.File, error) {
	f, err := s.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &dirSyncFile{File: f, fs: s, name: name}, nil
}

func (s *dirSyncFS) Open(name string) (hackpadfs.File, error) {
	return s.OpenFile(name, hackpadfs.FlagReadOnly, 0)
}

type dirSyncFile struct {
	hackpadfs.File
	fs   *dirSyncFS
	name string
}

func (f *dirSyncFile) Sync() error {
	if info, err := f.Stat(); err == nil && info.IsDir() {
		f.fs.mu.Lock()
		f.fs.syncs = append(f.fs.syncs, f.name)
		f.fs.mu.Unlock()
	}
	return nil
}

func (f *dirSyncFile) ReadAt(p []byte, off int64) (int, error) {
	return hackpadfs.ReadAtFile(f.File, p, off)
}

func (f *dirSyncFile) WriteAt(p []byte, off int64) (int, error) {
	return hackpadfs.WriteAtFile(f.File, p, off)
}

func (f *dirSyncFile) Truncate(size int64) error { return hackpadfs.TruncateFile(f.File, size) }

// TestIdentitiesFileCreationSynced: creating a document's identities file
// syncs its directory, so bindings synced into it cannot vanish with a
// directory entry lost in a crash; reopening it syncs nothing.
func TestIdentitiesFileCreationSynced(t *testing.T) {
	m, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	fsys := &dirSyncFS{FS: m}
	if err := hackpadfs.MkdirAll(fsys, "docs/d", 0o755); err != nil {
		t.Fatal(err)
	}
	ids, err := openIdentities(fileLines(fsys, "d"), "d")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"docs/d"}; !slices.Equal(fsys.syncs, want) {
		t.Fatalf("directory syncs on creation: %q, want %q", fsys.syncs, want)
	}
	if _, err := ids.check("c1", "secret"); err != nil {
		t.Fatal(err)
	}
	ids.close()
	fsys.syncs = nil
	ids, err = openIdentities(fileLines(fsys, "d"), "d")
	if err != nil {
		t.Fatal(err)
	}
	defer ids.close()
	if len(fsys.syncs) != 0 {
		t.Fatalf("directory syncs on reopening: %q, want none", fsys.syncs)
	}
	if bound, err := ids.check("c1", "secret"); !bound || err != nil {
		t.Fatalf("after reopening: bound %v, %v", bound, err)
	}
}
