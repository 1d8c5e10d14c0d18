package filestore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

var errCrash = errors.New("simulated crash")

func logSize(t testing.TB, fsys hackpadfs.FS, name string) int64 {
	t.Helper()
	info, err := hackpadfs.Stat(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// editFile applies edit to the contents of a file.
func editFile(t testing.TB, fsys hackpadfs.FS, name string, edit func([]byte) []byte) {
	t.Helper()
	b, err := hackpadfs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	b = edit(b)
	f, err := hackpadfs.OpenFile(fsys, name, hackpadfs.FlagReadWrite|hackpadfs.FlagTruncate, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := hackpadfs.WriteFile(f, b); err != nil {
		t.Fatal(err)
	}
}

// threeCommits makes a store at LSN 3 (log only, no checkpoint) and returns
// the states at LSN 2 and 3 and the log offset where record 3 starts.
func threeCommits(t *testing.T, fsys hackpadfs.FS) (at2, at3 state, rec3 int64) {
	t.Helper()
	s := mustOpen(t, fsys, "db", OpenOptions{CheckpointBytes: -1})
	mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 3, Pages: []vfs.Page{storetest.Page(1, 'a'), storetest.Page(2, 'a'), storetest.Page(3, 'a')}})
	mustApply(t, s, vfs.Commit{LSN: 2, PageCount: 3, Pages: []vfs.Page{storetest.Page(2, 'b')}})
	at2, rec3 = capture(t, s), s.logSize
	mustApply(t, s, vfs.Commit{LSN: 3, PageCount: 4, Pages: []vfs.Page{storetest.Page(1, 'c'), storetest.Page(4, 'c')}})
	at3 = capture(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return at2, at3, rec3
}

func TestTornTail(t *testing.T) {
	flip := func(at func(b []byte, rec3 int64) int) func([]byte, int64) []byte {
		return func(b []byte, rec3 int64) []byte {
			b[at(b, rec3)] ^= 0x40
			return b
		}
	}
	cases := map[string]func(b []byte, rec3 int64) []byte{
		"cut 1 byte":        func(b []byte, _ int64) []byte { return b[:len(b)-1] },
		"cut 7 bytes":       func(b []byte, _ int64) []byte { return b[:len(b)-7] },
		"cut to fixed part": func(b []byte, rec3 int64) []byte { return b[:rec3+recordFixed] },
		"cut to 3 bytes":    func(b []byte, rec3 int64) []byte { return b[:rec3+3] },
		"flip page byte":    flip(func(b []byte, rec3 int64) int { return int(rec3) + recordFixed + 100 }),
		"flip crc":          flip(func(b []byte, _ int64) int { return len(b) - 1 }),
		"flip magic":        flip(func(_ []byte, rec3 int64) int { return int(rec3) }),
		"flip page count":   flip(func(_ []byte, rec3 int64) int { return int(rec3) + 19 }),
		"zeros appended":    func(b []byte, _ int64) []byte { return append(b, make([]byte, 5000)...) },
		"zeroed record": func(b []byte, rec3 int64) []byte {
			clear(b[rec3:])
			return b
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			fsys := memFS(t)
			at2, at3, rec3 := threeCommits(t, fsys)
			want, wantSize := at2, rec3
			if name == "zeros appended" {
				want, wantSize = at3, logSize(t, fsys, "db/log")
			}
			editFile(t, fsys, "db/log", func(b []byte) []byte { return edit(b, rec3) })
			s := mustOpen(t, fsys, "db", OpenOptions{CheckpointBytes: -1})
			sameState(t, "reopened", capture(t, s), want)
			if got := logSize(t, fsys, "db/log"); got != wantSize {
				t.Fatalf("log is %d bytes after reopen, want the torn tail cut at %d", got, wantSize)
			}
			// The store goes on from there, across another reopen.
			c := vfs.Commit{LSN: want.lsn + 1, PageCount: 2, Pages: []vfs.Page{storetest.Page(2, 'z')}}
			mustApply(t, s, c)
			after := capture(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, fsys, "db", OpenOptions{CheckpointBytes: -1})
			sameState(t, "reopened after another commit", capture(t, s), after)
		})
	}
}

func TestCorruption(t *testing.T) {
	type setup struct {
		fsys hackpadfs.FS
		rec3 int64
	}
	cases := map[string]func(t *testing.T, x setup){
		"flip middle record": func(t *testing.T, x setup) {
			editFile(t, x.fsys, "db/log", func(b []byte) []byte { b[headerSize+recordFixed+5] ^= 1; return b })
		},
		"flip middle magic": func(t *testing.T, x setup) {
			editFile(t, x.fsys, "db/log", func(b []byte) []byte { b[headerSize] ^= 1; return b })
		},
		"huge middle page count": func(t *testing.T, x setup) {
			editFile(t, x.fsys, "db/log", func(b []byte) []byte { b[headerSize+recordFixed-1] = 0x7f; return b })
		},
		"flip header": func(t *testing.T, x setup) {
			editFile(t, x.fsys, "db/log", func(b []byte) []byte { b[9] ^= 1; return b })
		},
		"bad version": func(t *testing.T, x setup) {
			editFile(t, x.fsys, "db/log", func(b []byte) []byte {
				copy(b, encodeHeader(0, 0))
				binary.LittleEndian.PutUint32(b[4:], 99)
				binary.LittleEndian.PutUint32(b[20:], crc32c(b[:20]))
				return b
			})
		},
		"empty log": func(t *testing.T, x setup) {
			editFile(t, x.fsys, "db/log", func(b []byte) []byte { return nil })
		},
		"LSN does not grow": func(t *testing.T, x setup) {
			editFile(t, x.fsys, "db/log", func(b []byte) []byte {
				return append(b, encodeRecord(vfs.Commit{LSN: 3, PageCount: 1})...)
			})
		},
		"pages out of order": func(t *testing.T, x setup) {
			editFile(t, x.fsys, "db/log", func(b []byte) []byte {
				rec := encodeRecord(vfs.Commit{LSN: 9, PageCount: 3, Pages: []vfs.Page{storetest.Page(2, 'x'), storetest.Page(3, 'x')}})
				binary.LittleEndian.PutUint32(rec[recordFixed+entrySize:], 1)
				binary.LittleEndian.PutUint32(rec[len(rec)-crcSize:], crc32c(rec[:len(rec)-crcSize]))
				return append(b, rec...)
			})
		},
		"short lsns": func(t *testing.T, x setup) {
			checkpointed(t, x.fsys)
			editFile(t, x.fsys, "db/lsns", func(b []byte) []byte { return b[:len(b)-8] })
		},
		"short data": func(t *testing.T, x setup) {
			checkpointed(t, x.fsys)
			editFile(t, x.fsys, "db/data", func(b []byte) []byte { return b[:len(b)-vfs.PageSize] })
		},
		"lsns newer than log": func(t *testing.T, x setup) {
			checkpointed(t, x.fsys)
			editFile(t, x.fsys, "db/lsns", func(b []byte) []byte { b[6] = 1; return b })
		},
		"log missing": func(t *testing.T, x setup) {
			checkpointed(t, x.fsys)
			if err := hackpadfs.Remove(x.fsys, "db/log"); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			fsys := memFS(t)
			_, _, rec3 := threeCommits(t, fsys)
			corrupt(t, setup{fsys, rec3})
			s, err := Open(fsys, "db")
			if !errors.Is(err, vfs.ErrCorrupt) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			if !strings.HasPrefix(err.Error(), "filestore: open db: ") {
				t.Fatalf("error %q lacks context", err)
			}
		})
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

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

// The subprocess crash test: a child applies deterministic commits to an os
// store and prints each acknowledged LSN; the parent kills it with SIGKILL
// and checks what survived.

const (
	crashDirEnv  = "FILESTORE_CRASH_DIR"
	crashSeedEnv = "FILESTORE_CRASH_SEED"
)

var crashOpts = OpenOptions{CheckpointBytes: 64 * entrySize}

// crashCommit returns the commit that brings the crash test's store to lsn;
// it depends only on seed and lsn.
func crashCommit(seed, lsn uint64) vfs.Commit {
	r := rand.New(rand.NewPCG(seed, lsn))
	c := vfs.Commit{LSN: lsn, PageCount: 20 + uint32(r.IntN(21))}
	if r.IntN(10) == 0 {
		c.PageCount = 1 + uint32(r.IntN(20))
	}
	for no := uint32(1); no <= c.PageCount; no++ {
		if r.IntN(5) == 0 {
			c.Pages = append(c.Pages, vfs.Page{No: no, Data: crashPage(no, lsn)})
		}
	}
	return c
}

func crashPage(no uint32, lsn uint64) []byte {
	b := make([]byte, vfs.PageSize)
	for i := 0; i < len(b); i += 16 {
		binary.LittleEndian.PutUint64(b[i:], lsn)
		binary.LittleEndian.PutUint64(b[i+8:], uint64(no))
	}
	return b
}

// TestCrashChild is the child of TestSubprocessCrash; it runs only there.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs as the child of TestSubprocessCrash")
	}
	seed, err := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenWithOptions(dirFS(t, dir), "db", crashOpts)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second) // in case the parent is gone
	for lsn := s.LSN() + 1; time.Now().Before(deadline); lsn++ {
		if err := s.Apply(crashCommit(seed, lsn)); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ack %d\n", lsn)
	}
}

func TestSubprocessCrash(t *testing.T) {
	switch runtime.GOOS {
	case "js", "wasip1", "ios", "android", "windows":
		t.Skipf("no SIGKILL of a re-executed test binary on %s", runtime.GOOS)
	}
	seed := uint64(rand.Int64())
	t.Logf("seed=%d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	fsys := dirFS(t, dir)
	var last uint64 // the last acknowledged LSN of any round
	for round := 0; round < 3; round++ {
		acked, ran := crashChild(t, dir, seed, time.Duration(10+r.IntN(600))*time.Millisecond)
		if acked == 0 {
			t.Fatalf("seed=%d round %d: no commit acknowledged", seed, round)
		}
		last = max(last, acked)
		s, err := OpenWithOptions(fsys, "db", crashOpts)
		if err != nil {
			t.Fatalf("seed=%d round %d: reopen after SIGKILL: %v", seed, round, err)
		}
		lsn := s.LSN()
		t.Logf("round %d: killed after %v, last ack %d, reopened at %d", round, ran, acked, lsn)
		if lsn < last || lsn > acked+1 {
			t.Fatalf("seed=%d round %d: reopened at LSN %d, last acknowledged %d", seed, round, lsn, acked)
		}
		checkCrashState(t, s, seed)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// crashChild runs the child until after it acknowledged a commit and then
// for wait, kills it and returns the last LSN it acknowledged.
func crashChild(t *testing.T, dir string, seed uint64, wait time.Duration) (acked uint64, ran time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(seed, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	acks := make(chan uint64, 1024)
	var other strings.Builder
	go func() {
		defer close(acks)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "ack "), 10, 64); err == nil && strings.HasPrefix(sc.Text(), "ack ") {
				acks <- n
			} else {
				fmt.Fprintln(&other, sc.Text())
			}
		}
	}()
	var kill <-chan time.Time
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n, ok := <-acks:
			if !ok {
				cmd.Wait()
				t.Fatalf("child exited early: %s%s", other.String(), stderr.String())
			}
			acked = n
			if kill == nil {
				kill = time.After(wait)
			}
			continue
		case <-kill:
		case <-timeout:
		}
		break
	}
	ran = time.Since(start)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for n := range acks { // lines written before the kill
		acked = n
	}
	cmd.Wait()
	return acked, ran
}

// checkCrashState checks s against the crash test's commits up to its LSN.
func checkCrashState(t *testing.T, s *Store, seed uint64) {
	t.Helper()
	written := map[uint32]uint64{} // page -> LSN of its newest version
	changed := map[uint32]uint64{} // page -> LSN it last changed, growth included
	var count uint32
	for lsn := uint64(1); lsn <= s.LSN(); lsn++ {
		c := crashCommit(seed, lsn)
		for no := range written {
			if no > c.PageCount {
				delete(written, no)
			}
		}
		for no := range changed {
			if no > c.PageCount {
				delete(changed, no)
			}
		}
		for no := count + 1; no <= c.PageCount; no++ {
			changed[no] = lsn
		}
		for _, p := range c.Pages {
			written[p.No] = lsn
			changed[p.No] = lsn
		}
		count = c.PageCount
	}
	if s.PageCount() != count {
		t.Fatalf("seed=%d: %d pages at LSN %d, want %d", seed, s.PageCount(), s.LSN(), count)
	}
	buf := make([]byte, vfs.PageSize)
	for no := uint32(1); no <= count; no++ {
		if err := s.ReadPage(no, buf); err != nil {
			t.Fatalf("seed=%d: %v", seed, err)
		}
		want := make([]byte, vfs.PageSize)
		if lsn, ok := written[no]; ok {
			want = crashPage(no, lsn)
		}
		if !bytes.Equal(buf, want) {
			t.Fatalf("seed=%d: page %d at LSN %d holds version %d, want %d", seed, no, s.LSN(),
				binary.LittleEndian.Uint64(buf), binary.LittleEndian.Uint64(want))
		}
	}
	for _, since := range []uint64{0, s.LSN() / 2, s.LSN() - 1} {
		var want []uint32
		for no, lsn := range changed {
			if lsn > since {
				want = append(want, no)
			}
		}
		slices.Sort(want)
		if got := s.ChangedSince(since); !slices.Equal(got, want) {
			t.Fatalf("seed=%d: ChangedSince(%d) = %v, want %v", seed, since, got, want)
		}
	}
}

// faultFS wraps a file system to make chosen operations fail.
type faultFS struct {
	hackpadfs.FS
	mu   sync.Mutex
	fail map[string]int // "op name" -> number of failures left (-1: forever)
}

var errInjected = errors.New("injected fault")

func newFaultFS(t testing.TB) *faultFS {
	return &faultFS{FS: memFS(t), fail: map[string]int{}}
}

func (f *faultFS) set(op, name string, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op+" "+name] = times
}

func (f *faultFS) check(op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch n := f.fail[op+" "+name]; {
	case n == 0:
		return nil
	case n > 0:
		f.fail[op+" "+name] = n - 1
	}
	return &hackpadfs.PathError{Op: op, Path: name, Err: errInjected}
}

func (f *faultFS) OpenFile(name string, flag int, perm hackpadfs.FileMode) (hackpadfs.File, error) {
	if err := f.check("open", name); err != nil {
		return nil, err
	}
	file, err := hackpadfs.OpenFile(f.FS, name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

func (f *faultFS) MkdirAll(name string, perm hackpadfs.FileMode) error {
	return hackpadfs.MkdirAll(f.FS, name, perm)
}

func (f *faultFS) Remove(name string) error { return hackpadfs.Remove(f.FS, name) }

func (f *faultFS) Stat(name string) (hackpadfs.FileInfo, error) { return hackpadfs.Stat(f.FS, name) }

func (f *faultFS) Rename(oldname, newname string) error {
	if err := f.check("rename", oldname); err != nil {
		return err
	}
	return hackpadfs.Rename(f.FS, oldname, newname)
}

type faultFile struct {
	hackpadfs.File
	fs   *faultFS
	name string
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	return hackpadfs.ReadAtFile(f.File, p, off)
}

// WriteAt fails halfway through, as a full disk would.
func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.check("write", f.name); err != nil {
		n, _ := hackpadfs.WriteAtFile(f.File, p[:len(p)/2], off)
		return n, err
	}
	return hackpadfs.WriteAtFile(f.File, p, off)
}

func (f *faultFile) Sync() error {
	if err := f.fs.check("sync", f.name); err != nil {
		return err
	}
	return hackpadfs.SyncFile(f.File)
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.check("truncate", f.name); err != nil {
		return err
	}
	return hackpadfs.TruncateFile(f.File, size)
}

// TestFailedApply checks that a commit whose Apply fails leaves no trace,
// now or after reopening.
func TestFailedApply(t *testing.T) {
	opts := OpenOptions{CheckpointBytes: -1}
	c1 := vfs.Commit{LSN: 1, PageCount: 2, Pages: []vfs.Page{storetest.Page(1, 'a'), storetest.Page(2, 'a')}}
	c2 := vfs.Commit{LSN: 2, PageCount: 3, Pages: []vfs.Page{storetest.Page(2, 'b'), storetest.Page(3, 'b')}}
	c2b := vfs.Commit{LSN: 2, PageCount: 2, Pages: []vfs.Page{storetest.Page(1, 'c')}}
	for _, fault := range []string{"write", "sync"} {
		t.Run(fault, func(t *testing.T) {
			fsys := newFaultFS(t)
			s, model := mustOpen(t, fsys, "db", opts), memstore.New()
			mustApply(t, s, c1)
			mustApply(t, model, c1)
			fsys.set(fault, "db/log", 1)
			if err := s.Apply(c2); !errors.Is(err, errInjected) || !strings.HasPrefix(err.Error(), "filestore: apply commit 2: ") {
				t.Fatalf("Apply with a failing %s = %v", fault, err)
			}
			sameState(t, "after the failed commit", capture(t, s), capture(t, model))
			mustApply(t, s, c2b)
			mustApply(t, model, c2b)
			abandon(s)
			s = mustOpen(t, fsys, "db", opts)
			sameState(t, "reopened", capture(t, s), capture(t, model))
		})
	}
	t.Run("rollback fails", func(t *testing.T) {
		fsys := newFaultFS(t)
		s, model := mustOpen(t, fsys, "db", opts), memstore.New()
		mustApply(t, s, c1)
		mustApply(t, model, c1)
		fsys.set("write", "db/log", 1)
		fsys.set("truncate", "db/log", 1)
		if err := s.Apply(c2); !errors.Is(err, errInjected) {
			t.Fatalf("Apply = %v", err)
		}
		if err := s.Apply(c2b); !errors.Is(err, errInjected) {
			t.Fatalf("Apply after a failed rollback = %v, want the earlier failure", err)
		}
		sameState(t, "after the failed commit", capture(t, s), capture(t, model))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = mustOpen(t, fsys, "db", opts)
		sameState(t, "reopened", capture(t, s), capture(t, model))
		mustApply(t, s, c2b)
	})
	t.Run("checkpoint fails", func(t *testing.T) {
		fsys := newFaultFS(t)
		opts := OpenOptions{CheckpointBytes: 1}
		s, model := mustOpen(t, fsys, "db", opts), memstore.New()
		mustApply(t, s, c1)
		mustApply(t, model, c1)
		for _, op := range []string{"write db/data", "sync db/lsns", "rename db/log.tmp"} {
			fsys.set(strings.Fields(op)[0], strings.Fields(op)[1], 1)
			c := vfs.Commit{LSN: model.LSN() + 1, PageCount: 2, Pages: []vfs.Page{storetest.Page(2, byte(model.LSN()))}}
			mustApply(t, s, c) // durable, whatever the checkpoint does
			mustApply(t, model, c)
			if !errors.Is(s.ckptErr, errInjected) {
				t.Fatalf("%s: checkpoint error %v, want the injected fault", op, s.ckptErr)
			}
			sameState(t, op, capture(t, s), capture(t, model))
			if err := s.Close(); !errors.Is(err, errInjected) {
				t.Fatalf("%s: Close = %v, want the checkpoint failure", op, err)
			}
			s = mustOpen(t, fsys, "db", opts)
			sameState(t, op+", reopened", capture(t, s), capture(t, model))
		}
		c := vfs.Commit{LSN: model.LSN() + 1, PageCount: 1}
		mustApply(t, s, c)
		mustApply(t, model, c)
		if err := s.Close(); err != nil {
			t.Fatalf("Close after a good checkpoint = %v", err)
		}
		s = mustOpen(t, fsys, "db", opts)
		sameState(t, "reopened at last", capture(t, s), capture(t, model))
	})
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
