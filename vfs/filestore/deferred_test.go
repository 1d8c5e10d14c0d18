package filestore

import (
	"testing"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/fsync"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

// TestDeferredApply: ApplyDeferred reads at once without an fsync; the
// fsync comes with SyncApplied, the next Apply or ApplyDeferred, a
// checkpoint or Close, once.
func TestDeferredApply(t *testing.T) {
	fsys := dirFS(t, t.TempDir())
	s := mustOpen(t, fsys, "db", OpenOptions{CheckpointBytes: -1})
	syncs := func(what string, want int64, do func()) {
		t.Helper()
		before := fsync.Files()
		do()
		if got := fsync.Files() - before; got != want {
			t.Fatalf("%s: %d fsyncs, want %d", what, got, want)
		}
	}
	deferred := func(c vfs.Commit) {
		t.Helper()
		if err := s.ApplyDeferred(c); err != nil {
			t.Fatalf("deferred LSN %d: %v", c.LSN, err)
		}
	}
	syncApplied := func() {
		t.Helper()
		if err := s.SyncApplied(); err != nil {
			t.Fatal(err)
		}
	}
	syncs("Apply", 1, func() {
		mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 2, Pages: []vfs.Page{storetest.Page(1, 'a'), storetest.Page(2, 'a')}})
	})
	syncs("a deferred commit", 0, func() {
		deferred(vfs.Commit{LSN: 2, PageCount: 2, Pages: []vfs.Page{storetest.Page(2, 'b')}})
	})
	// Only the newest record is ever unsynced, so a crash can tear only the
	// log's tail (TestTornTail): a damaged record with a valid one after it
	// stays a sign of corruption, never of a crash.
	syncs("a second deferred commit syncs the first", 1, func() {
		deferred(vfs.Commit{LSN: 3, PageCount: 3, Pages: []vfs.Page{storetest.Page(3, 'c')}})
	})
	if s.LSN() != 3 || s.PageCount() != 3 {
		t.Fatalf("after deferred commits: LSN %d, %d pages", s.LSN(), s.PageCount())
	}
	syncs("SyncApplied", 1, syncApplied)
	syncs("SyncApplied with nothing deferred", 0, syncApplied)
	syncs("a deferred commit then a durable one", 1, func() {
		deferred(vfs.Commit{LSN: 4, PageCount: 3, Pages: []vfs.Page{storetest.Page(1, 'd')}})
		mustApply(t, s, vfs.Commit{LSN: 5, PageCount: 3, Pages: []vfs.Page{storetest.Page(2, 'e')}})
	})
	syncs("SyncApplied after a durable commit", 0, syncApplied)
	deferred(vfs.Commit{LSN: 6, PageCount: 3, Pages: []vfs.Page{storetest.Page(3, 'f')}})
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if s.deferred {
		t.Fatal("the checkpoint folded deferred commits into the data file without syncing the log first")
	}
	deferred(vfs.Commit{LSN: 7, PageCount: 3, Pages: []vfs.Page{storetest.Page(1, 'g')}})
	want := capture(t, s)
	syncs("Close with a deferred commit", 1, func() {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
	s = mustOpen(t, fsys, "db", OpenOptions{CheckpointBytes: -1})
	defer s.Close()
	sameState(t, "reopened", capture(t, s), want)
}
