package opfs

import (
	"errors"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/filestore"
)

func TestFake(t *testing.T) {
	runSuite(t, func(t *testing.T) *FS { return NewFS(newFakeBackend()) })
}

// TestOneFlushPerCommit checks the point of the package: a filestore commit
// costs one flush of the access handle.
func TestOneFlushPerCommit(t *testing.T) {
	b := newFakeBackend()
	fsys := NewFS(b)
	s, err := filestore.OpenWithOptions(fsys, "doc", filestore.OpenOptions{CheckpointBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := b.flushes
	page := make([]byte, vfs.PageSize)
	for lsn := uint64(1); lsn <= 10; lsn++ {
		if err := s.Apply(vfs.Commit{LSN: lsn, PageCount: 3, Pages: []vfs.Page{{No: 1, Data: page}, {No: 3, Data: page}}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.flushes - before; got != 10 {
		t.Fatalf("10 commits flushed %d times", got)
	}
}

// TestExclusive checks that a second FS (another tab) cannot open a file
// that the first holds, as OPFS refuses a second access handle.
func TestExclusive(t *testing.T) {
	b := newFakeBackend()
	a, c := NewFS(b), NewFS(b)
	f, err := a.OpenFile("f", hackpadfs.FlagReadWrite|hackpadfs.FlagCreate, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenFile("f", hackpadfs.FlagReadWrite, 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("second FS opened a held file: %v", err)
	}
	f.Close()
	g, err := c.OpenFile("f", hackpadfs.FlagReadWrite, 0)
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	g.Close()
}
