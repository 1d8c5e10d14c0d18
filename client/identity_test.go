package client

import (
	"slices"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
)

// renameFS records renames and directory syncs on a memory FS.
type renameFS struct {
	*mem.FS
	ops []string
}

func (s *renameFS) OpenFile(name string, flag int, perm hackpadfs.FileMode) (hackpadfs.File, error) {
	f, err := s.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &renameFile{File: f, fs: s, name: name}, nil
}

func (s *renameFS) Open(name string) (hackpadfs.File, error) {
	return s.OpenFile(name, hackpadfs.FlagReadOnly, 0)
}

func (s *renameFS) Rename(oldname, newname string) error {
	s.ops = append(s.ops, "rename "+oldname+" "+newname)
	return s.FS.Rename(oldname, newname)
}

type renameFile struct {
	hackpadfs.File
	fs   *renameFS
	name string
}

func (f *renameFile) Sync() error {
	if info, err := f.Stat(); err == nil && info.IsDir() {
		f.fs.ops = append(f.fs.ops, "syncdir "+f.name)
	}
	return nil
}

func (f *renameFile) Write(p []byte) (int, error) { return hackpadfs.WriteFile(f.File, p) }

// TestSecretFileSynced: a new secret is renamed into place and its
// directory synced before the replica can send it; reading it back changes
// nothing.
func TestSecretFileSynced(t *testing.T) {
	m, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	fsys := &renameFS{FS: m}
	if err := fsys.Mkdir("doc", 0o755); err != nil {
		t.Fatal(err)
	}
	secret, err := loadSecret(fsys, "doc/identity", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"rename doc/identity.tmp doc/identity", "syncdir doc"}; !slices.Equal(fsys.ops, want) {
		t.Fatalf("creating the secret: %q, want %q", fsys.ops, want)
	}
	fsys.ops = nil
	again, err := loadSecret(fsys, "doc/identity", "c1")
	if err != nil || again != secret || len(fsys.ops) != 0 {
		t.Fatalf("reading it back: %q, %v, ops %q; want %q and no writes", again, err, fsys.ops, secret)
	}
}
