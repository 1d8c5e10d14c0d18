package filestore

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"sync"
	"testing"

	"github.com/hack-pad/hackpadfs"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

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
				copy(b, encodeHeader(formatVersion, 0, 0))
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
