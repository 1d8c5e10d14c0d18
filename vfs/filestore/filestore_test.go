package filestore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	osfs "github.com/hack-pad/hackpadfs/os"

	"github.com/sqlsync-go/sqlsync/internal/dirlock"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

func memFS(t testing.TB) hackpadfs.FS {
	t.Helper()
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// dirFS returns the os file system rooted at dir.
func dirFS(t testing.TB, dir string) hackpadfs.FS {
	t.Helper()
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fsys hackpadfs.FS = osfs.NewFS()
	if vol := filepath.VolumeName(dir); vol != "" {
		if fsys, err = osfs.NewFS().SubVolume(vol); err != nil {
			t.Fatal(err)
		}
		dir = dir[len(vol):]
	}
	rel := strings.TrimPrefix(filepath.ToSlash(dir), "/")
	if fsys, err = hackpadfs.Sub(fsys, rel); err != nil {
		t.Fatal(err)
	}
	return fsys
}

func osFS(t testing.TB) hackpadfs.FS { return dirFS(t, t.TempDir()) }

func mustOpen(t testing.TB, fsys hackpadfs.FS, dir string, opts OpenOptions) *Store {
	t.Helper()
	s, err := OpenWithOptions(fsys, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustApply(t testing.TB, s vfs.Store, c vfs.Commit) {
	t.Helper()
	if err := s.Apply(c); err != nil {
		t.Fatalf("apply LSN %d: %v", c.LSN, err)
	}
}

// abandon drops s as a crash would: its files are closed, nothing else runs.
func abandon(s *Store) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.closeFiles()
}

var fileSystems = []struct {
	name string
	fs   func(testing.TB) hackpadfs.FS
}{{"mem", memFS}, {"os", osFS}}

var optionSets = []struct {
	name string
	opts OpenOptions
}{
	{"default", OpenOptions{}},
	{"tinycheckpoints", OpenOptions{CheckpointBytes: 1}},
	{"nocheckpoints", OpenOptions{CheckpointBytes: -1}},
}

func TestContract(t *testing.T) {
	for _, fc := range fileSystems {
		for _, oc := range optionSets {
			t.Run(fc.name+"/"+oc.name, func(t *testing.T) {
				fsys := fc.fs(t)
				var n int
				var dir string
				reopen := func(t *testing.T) vfs.Store { return mustOpen(t, fsys, dir, oc.opts) }
				open := func(t *testing.T) vfs.Store {
					n++
					dir = fmt.Sprintf("stores/%d", n)
					return reopen(t)
				}
				storetest.Run(t, open, reopen)
			})
		}
	}
}

// state is everything a store shows.
type state struct {
	lsn     uint64
	count   uint32
	pages   [][]byte
	changed [][]uint32 // ChangedSince(l) for l in 0..lsn
}

func capture(t testing.TB, s vfs.Store) state {
	t.Helper()
	st := state{lsn: s.LSN(), count: s.PageCount()}
	for no := uint32(1); no <= st.count; no++ {
		buf := make([]byte, vfs.PageSize)
		if err := s.ReadPage(no, buf); err != nil {
			t.Fatalf("read page %d: %v", no, err)
		}
		st.pages = append(st.pages, buf)
	}
	for l := uint64(0); l <= st.lsn; l++ {
		st.changed = append(st.changed, s.ChangedSince(l))
	}
	return st
}

func sameState(t testing.TB, what string, got, want state) {
	t.Helper()
	if got.lsn != want.lsn || got.count != want.count {
		t.Fatalf("%s: LSN %d with %d pages, want LSN %d with %d pages", what, got.lsn, got.count, want.lsn, want.count)
	}
	for i := range want.pages {
		if !bytes.Equal(got.pages[i], want.pages[i]) {
			t.Fatalf("%s: page %d is %q..., want %q...", what, i+1, got.pages[i][:8], want.pages[i][:8])
		}
	}
	for l := range want.changed {
		if !slices.Equal(got.changed[l], want.changed[l]) {
			t.Fatalf("%s: ChangedSince(%d) = %v, want %v", what, l, got.changed[l], want.changed[l])
		}
	}
}

// randomCommit returns a commit after a store at lsn with count pages.
func randomCommit(r *rand.Rand, lsn uint64, count uint32) vfs.Commit {
	c := vfs.Commit{LSN: lsn + 1 + uint64(r.IntN(3)), PageCount: count}
	switch r.IntN(10) {
	case 0:
		c.PageCount = uint32(r.IntN(int(count) + 1))
	case 1, 2:
		c.PageCount = count + uint32(r.IntN(8))
	}
	for no := uint32(1); no <= c.PageCount; no++ {
		if r.IntN(4) == 0 {
			c.Pages = append(c.Pages, storetest.Page(no, byte(c.LSN)))
		}
	}
	return c
}

// TestAgainstMemstore drives a store and a memstore with the same random
// commits, with clean reopens, abandoned stores and checkpoints that crash at
// random stages, and compares everything they show.
func TestAgainstMemstore(t *testing.T) {
	for _, fc := range fileSystems {
		t.Run(fc.name, func(t *testing.T) {
			seed := uint64(rand.Int64())
			t.Logf("seed=%d", seed)
			r := rand.New(rand.NewPCG(seed, 0))
			fsys := fc.fs(t)
			opts := OpenOptions{CheckpointBytes: 3 * recordSize(4)}
			s := mustOpen(t, fsys, "db", opts)
			model := memstore.New()
			steps := 300
			if fc.name == "os" {
				steps = 120
			}
			for i := 0; i < steps; i++ {
				c := randomCommit(r, model.LSN(), model.PageCount())
				mustApply(t, s, c)
				mustApply(t, model, c)
				switch r.IntN(12) {
				case 0:
					if err := s.Close(); err != nil {
						t.Fatalf("seed=%d: close: %v", seed, err)
					}
					s = mustOpen(t, fsys, "db", opts)
				case 1:
					abandon(s)
					s = mustOpen(t, fsys, "db", opts)
				case 2:
					calls, stop := 0, 1+r.IntN(12)
					s.hook = func(string) error {
						if calls++; calls == stop {
							return errCrash
						}
						return nil
					}
					err := s.Checkpoint()
					if err != nil && !errors.Is(err, errCrash) {
						t.Fatalf("seed=%d: checkpoint: %v", seed, err)
					}
					abandon(s)
					s = mustOpen(t, fsys, "db", opts)
				}
				if i%10 == 0 || i == steps-1 {
					sameState(t, fmt.Sprintf("seed=%d step %d", seed, i), capture(t, s), capture(t, model))
				}
			}
		})
	}
}

func TestClosed(t *testing.T) {
	s := mustOpen(t, memFS(t), "db", OpenOptions{})
	mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 1, Pages: []vfs.Page{storetest.Page(1, 'a')}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(vfs.Commit{LSN: 2, PageCount: 1}); !errors.Is(err, vfs.ErrClosed) {
		t.Fatalf("Apply after Close = %v", err)
	}
	if err := s.ReadPage(1, make([]byte, vfs.PageSize)); !errors.Is(err, vfs.ErrClosed) {
		t.Fatalf("ReadPage after Close = %v", err)
	}
	if err := s.Checkpoint(); !errors.Is(err, vfs.ErrClosed) {
		t.Fatalf("Checkpoint after Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestConcurrentReads reads pages and LSN lists while commits and
// checkpoints go on; every page read must be a whole version of that page.
func TestConcurrentReads(t *testing.T) {
	for _, fc := range fileSystems {
		t.Run(fc.name, func(t *testing.T) {
			s := mustOpen(t, fc.fs(t), "db", OpenOptions{CheckpointBytes: 8 * entrySize})
			const pages = 16
			done := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, vfs.PageSize)
					for i := 0; ; i++ {
						select {
						case <-done:
							return
						default:
						}
						no := uint32(i%pages + 1)
						if err := s.ReadPage(no, buf); err != nil {
							errs <- err
							return
						}
						tag := buf[0]
						if want := storetest.Page(no, tag).Data; tag != 0 && !bytes.Equal(buf, want) {
							errs <- fmt.Errorf("page %d: torn read %q...", no, buf[:8])
							return
						}
						s.ChangedSince(s.LSN() / 2)
					}
				}()
			}
			commits := uint64(150)
			if fc.name == "os" {
				commits = 60 // each checkpoint costs fsyncs
			}
			for lsn := uint64(1); lsn <= commits; lsn++ {
				c := vfs.Commit{LSN: lsn, PageCount: pages}
				for no := uint32(1); no <= pages; no++ {
					if (uint64(no)+lsn)%3 == 0 {
						c.Pages = append(c.Pages, storetest.Page(no, byte(lsn)|1))
					}
				}
				mustApply(t, s, c)
			}
			close(done)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// TestDirs opens stores at the root of a file system and in nested
// directories that do not exist yet.
func TestDirs(t *testing.T) {
	for _, fc := range fileSystems {
		for _, dir := range []string{".", "a/b/c"} {
			t.Run(fc.name+"/"+dir, func(t *testing.T) {
				fsys := fc.fs(t)
				s := mustOpen(t, fsys, dir, OpenOptions{CheckpointBytes: 1})
				mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 1, Pages: []vfs.Page{storetest.Page(1, 'a')}})
				want := capture(t, s)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = mustOpen(t, fsys, dir, OpenOptions{})
				sameState(t, "reopened", capture(t, s), want)
			})
		}
	}
	if _, err := Open(memFS(t), "../x"); !errors.Is(err, hackpadfs.ErrInvalid) {
		t.Fatalf("Open(../x) = %v, want ErrInvalid", err)
	}
}

// TestOneOpenPerDirectory: while a store is open, a second Open of its
// directory fails at once with a clear error and touches nothing; Close, or
// a crash (abandon), frees it.
func TestOneOpenPerDirectory(t *testing.T) {
	if !dirlock.Supported {
		t.Skip("no flock on this system") // listed in docs/test-skips.md
	}
	fsys := osFS(t)
	s := mustOpen(t, fsys, "db", OpenOptions{})
	c := randomCommit(rand.New(rand.NewPCG(1, 0)), 0, 0)
	mustApply(t, s, c)
	_, err := Open(fsys, "db")
	if !errors.Is(err, dirlock.ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	if want := "state directory " + dirlock.OSPath(fsys, "db") + " is in use by another process"; !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open: %q does not say %q", err, want)
	}
	// The refused open changed nothing: the first store goes on.
	mustApply(t, s, randomCommit(rand.New(rand.NewPCG(2, 0)), s.LSN(), s.PageCount()))
	lsn := s.LSN()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, fsys, "db", OpenOptions{})
	if s.LSN() != lsn {
		t.Fatalf("reopened at LSN %d, want %d", s.LSN(), lsn)
	}
	abandon(s)
	s = mustOpen(t, fsys, "db", OpenOptions{})
	if s.LSN() != lsn {
		t.Fatalf("reopened after a crash at LSN %d, want %d", s.LSN(), lsn)
	}
}
