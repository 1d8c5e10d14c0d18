package filestore

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/hack-pad/hackpadfs"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

// checkpointed folds the log of the store in db into its base files.
func checkpointed(t *testing.T, fsys hackpadfs.FS) {
	t.Helper()
	s := mustOpen(t, fsys, "db", OpenOptions{CheckpointBytes: -1})
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCrashDuringCheckpoint stops a checkpoint at each of its steps (after
// each page written, too) and checks that reopening gives exactly the state
// before it, and that the store goes on from there.
func TestCrashDuringCheckpoint(t *testing.T) {
	opts := OpenOptions{CheckpointBytes: -1}
	// build leaves in db a store whose log shrinks, regrows and rewrites pages
	// over a checkpointed base, and returns it with a memstore of its commits.
	build := func(t *testing.T, fsys hackpadfs.FS) (*Store, *memstore.Store) {
		s, model := mustOpen(t, fsys, "db", opts), memstore.New()
		apply := func(c vfs.Commit) { mustApply(t, s, c); mustApply(t, model, c) }
		apply(vfs.Commit{LSN: 1, PageCount: 6, Pages: []vfs.Page{storetest.Page(1, 'a'), storetest.Page(2, 'a'), storetest.Page(3, 'a'), storetest.Page(4, 'a'), storetest.Page(5, 'a'), storetest.Page(6, 'a')}})
		if err := s.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		apply(vfs.Commit{LSN: 2, PageCount: 3, Pages: []vfs.Page{storetest.Page(1, 'b')}})
		apply(vfs.Commit{LSN: 3, PageCount: 8, Pages: []vfs.Page{storetest.Page(2, 'c'), storetest.Page(7, 'c')}})
		apply(vfs.Commit{LSN: 4, PageCount: 8, Pages: []vfs.Page{storetest.Page(1, 'd'), storetest.Page(7, 'd')}})
		apply(vfs.Commit{LSN: 6, PageCount: 7, Pages: []vfs.Page{storetest.Page(3, 'e')}})
		return s, model
	}
	for _, fc := range fileSystems {
		t.Run(fc.name, func(t *testing.T) {
			// A clean run, to count the steps.
			var stages []string
			s, _ := build(t, fc.fs(t))
			s.hook = func(stage string) error { stages = append(stages, stage); return nil }
			if err := s.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			want := []string{"truncate", "page", "page", "page", "page", "data", "lsns", "tmp", "rename"}
			if !slices.Equal(stages, want) {
				t.Fatalf("checkpoint stages %v, want %v", stages, want)
			}
			for stop := 1; stop <= len(stages); stop++ {
				t.Run(fmt.Sprintf("after %d %s", stop, stages[stop-1]), func(t *testing.T) {
					fsys := fc.fs(t)
					s, model := build(t, fsys)
					before := capture(t, model)
					calls := 0
					s.hook = func(string) error {
						if calls++; calls == stop {
							return errCrash
						}
						return nil
					}
					if err := s.Checkpoint(); !errors.Is(err, errCrash) {
						t.Fatalf("checkpoint = %v, want the simulated crash", err)
					}
					abandon(s)
					s = mustOpen(t, fsys, "db", opts)
					sameState(t, "reopened", capture(t, s), before)
					c := vfs.Commit{LSN: 7, PageCount: 9, Pages: []vfs.Page{storetest.Page(5, 'f'), storetest.Page(9, 'f')}}
					mustApply(t, s, c)
					mustApply(t, model, c)
					if err := s.Checkpoint(); err != nil {
						t.Fatal(err)
					}
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = mustOpen(t, fsys, "db", opts)
					sameState(t, "after a full checkpoint", capture(t, s), capture(t, model))
				})
			}
		})
	}
}
