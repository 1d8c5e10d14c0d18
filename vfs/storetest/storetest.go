// Package storetest is the contract every [vfs.Store] must meet, run against
// each implementation by its own tests.
package storetest

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// Opener opens (or reopens, for a durable store) the store under test. For a
// durable store, a reopen after Close must see everything applied before.
type Opener func(t *testing.T) vfs.Store

// Page returns a full page filled with a pattern derived from tag.
func Page(no uint32, tag byte) vfs.Page {
	d := bytes.Repeat([]byte{tag, byte(no)}, vfs.PageSize/2)
	return vfs.Page{No: no, Data: d}
}

// Run runs the contract suite. reopen is nil for stores that do not persist.
func Run(t *testing.T, open Opener, reopen Opener) {
	if _, ok := open(t).(vfs.Stager); ok {
		t.Run("Stager", func(t *testing.T) { RunStager(t, open, reopen) })
	}
	t.Run("Empty", func(t *testing.T) {
		s := open(t)
		if s.LSN() != 0 || s.PageCount() != 0 {
			t.Fatalf("new store at LSN %d with %d pages", s.LSN(), s.PageCount())
		}
		if got := s.ChangedSince(0); len(got) != 0 {
			t.Fatalf("ChangedSince(0) = %v on an empty store", got)
		}
	})
	t.Run("ApplyRead", func(t *testing.T) {
		s := open(t)
		mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 3, Pages: []vfs.Page{Page(1, 'a'), Page(3, 'a')}})
		checkPage(t, s, 1, Page(1, 'a').Data)
		checkPage(t, s, 2, make([]byte, vfs.PageSize))
		checkPage(t, s, 3, Page(3, 'a').Data)
		mustApply(t, s, vfs.Commit{LSN: 2, PageCount: 3, Pages: []vfs.Page{Page(3, 'b')}})
		checkPage(t, s, 3, Page(3, 'b').Data)
		if got, want := s.ChangedSince(1), []uint32{3}; !slices.Equal(got, want) {
			t.Fatalf("ChangedSince(1) = %v, want %v", got, want)
		}
		// Page 2 came into being (as zeros) at LSN 1: it changed too.
		if got, want := s.ChangedSince(0), []uint32{1, 2, 3}; !slices.Equal(got, want) {
			t.Fatalf("ChangedSince(0) = %v, want %v", got, want)
		}
	})
	t.Run("RefusesBadCommits", func(t *testing.T) {
		s := open(t)
		mustApply(t, s, vfs.Commit{LSN: 5, PageCount: 1, Pages: []vfs.Page{Page(1, 'a')}})
		bad := map[string]vfs.Commit{
			"old LSN":      {LSN: 5, PageCount: 1},
			"page zero":    {LSN: 6, PageCount: 1, Pages: []vfs.Page{Page(0, 'x')}},
			"beyond count": {LSN: 6, PageCount: 1, Pages: []vfs.Page{Page(2, 'x')}},
			"unordered":    {LSN: 6, PageCount: 3, Pages: []vfs.Page{Page(2, 'x'), Page(1, 'x')}},
			"short page":   {LSN: 6, PageCount: 1, Pages: []vfs.Page{{No: 1, Data: []byte("x")}}},
		}
		for name, c := range bad {
			if err := s.Apply(c); !errors.Is(err, vfs.ErrBadCommit) {
				t.Fatalf("%s: Apply = %v, want ErrBadCommit", name, err)
			}
		}
		if s.LSN() != 5 || s.PageCount() != 1 {
			t.Fatalf("refused commits changed the store: LSN %d, %d pages", s.LSN(), s.PageCount())
		}
		checkPage(t, s, 1, Page(1, 'a').Data)
	})
	t.Run("Truncate", func(t *testing.T) {
		s := open(t)
		mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 4, Pages: []vfs.Page{Page(1, 'a'), Page(2, 'a'), Page(3, 'a'), Page(4, 'a')}})
		mustApply(t, s, vfs.Commit{LSN: 2, PageCount: 2, Pages: []vfs.Page{Page(1, 'b')}})
		if got, want := s.ChangedSince(0), []uint32{1, 2}; !slices.Equal(got, want) {
			t.Fatalf("ChangedSince(0) after truncate = %v, want %v", got, want)
		}
		mustApply(t, s, vfs.Commit{LSN: 3, PageCount: 4, Pages: []vfs.Page{Page(4, 'c')}})
		checkPage(t, s, 3, make([]byte, vfs.PageSize))
		// Page 3 went to zeros at LSN 3 without being written: a replica at
		// LSN 1 must still be sent it.
		if got, want := s.ChangedSince(1), []uint32{1, 3, 4}; !slices.Equal(got, want) {
			t.Fatalf("ChangedSince(1) after shrink and regrow = %v, want %v", got, want)
		}
		checkPage(t, s, 4, Page(4, 'c').Data)
	})
	t.Run("RandomAgainstModel", func(t *testing.T) {
		seed := uint64(rand.Int64())
		t.Logf("seed=%d", seed)
		r := rand.New(rand.NewPCG(seed, 0))
		s := open(t)
		model := map[uint32][]byte{}
		var count uint32
		for lsn := uint64(1); lsn <= 200; lsn++ {
			c := vfs.Commit{LSN: lsn, PageCount: count}
			if r.IntN(10) == 0 {
				c.PageCount = uint32(r.IntN(int(count) + 1))
			} else {
				c.PageCount = max(count, uint32(r.IntN(64)+1))
			}
			for no := uint32(1); no <= c.PageCount; no++ {
				if r.IntN(8) == 0 {
					c.Pages = append(c.Pages, Page(no, byte(lsn)))
				}
			}
			mustApply(t, s, c)
			for no := range model {
				if no > c.PageCount {
					delete(model, no)
				}
			}
			for no := count + 1; no <= c.PageCount; no++ {
				delete(model, no)
			}
			for _, p := range c.Pages {
				model[p.No] = p.Data
			}
			count = c.PageCount
			if reopen != nil && r.IntN(40) == 0 {
				if err := s.Close(); err != nil {
					t.Fatalf("seed=%d: close: %v", seed, err)
				}
				s = reopen(t)
			}
		}
		if got := s.PageCount(); got != count {
			t.Fatalf("seed=%d: page count %d, want %d", seed, got, count)
		}
		for no := uint32(1); no <= count; no++ {
			want, ok := model[no]
			if !ok {
				want = make([]byte, vfs.PageSize)
			}
			checkPage(t, s, no, want)
		}
	})
	// An optional capability: the suite runs it where the store has it.
	if s := open(t); isChangeReader(s) {
		t.Run("ReadChanged", func(t *testing.T) { testReadChanged(t, s) })
	}
	if reopen == nil {
		return
	}
	t.Run("Reopen", func(t *testing.T) {
		s := open(t)
		mustApply(t, s, vfs.Commit{LSN: 7, PageCount: 2, Pages: []vfs.Page{Page(1, 'a'), Page(2, 'a')}})
		mustApply(t, s, vfs.Commit{LSN: 9, PageCount: 2, Pages: []vfs.Page{Page(2, 'b')}})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = reopen(t)
		if s.LSN() != 9 || s.PageCount() != 2 {
			t.Fatalf("reopened at LSN %d with %d pages, want 9 and 2", s.LSN(), s.PageCount())
		}
		checkPage(t, s, 2, Page(2, 'b').Data)
		if got, want := s.ChangedSince(7), []uint32{2}; !slices.Equal(got, want) {
			t.Fatalf("ChangedSince(7) after reopen = %v, want %v", got, want)
		}
	})
}

func mustApply(t *testing.T, s vfs.Store, c vfs.Commit) {
	t.Helper()
	if err := s.Apply(c); err != nil {
		t.Fatalf("apply LSN %d: %v", c.LSN, err)
	}
}

func checkPage(t *testing.T, s vfs.Store, no uint32, want []byte) {
	t.Helper()
	buf := make([]byte, vfs.PageSize)
	if err := s.ReadPage(no, buf); err != nil {
		t.Fatalf("read page %d: %v", no, err)
	}
	if !bytes.Equal(buf, want) {
		t.Fatalf("page %d: got %q..., want %q...", no, buf[:8], want[:8])
	}
}

// testReadChanged checks ReadChanged against ChangedSince and ReadPage, and
// that it returns one version while commits go on: every commit rewrites
// every page with its own LSN, so a read that mixes versions shows.
func testReadChanged(t *testing.T, s vfs.Store) {
	cr := s.(vfs.ChangeReader)
	mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 4, Pages: []vfs.Page{Page(1, 'a'), Page(2, 'a'), Page(3, 'a'), Page(4, 'a')}})
	mustApply(t, s, vfs.Commit{LSN: 2, PageCount: 2, Pages: []vfs.Page{Page(1, 'b')}})
	mustApply(t, s, vfs.Commit{LSN: 3, PageCount: 4, Pages: []vfs.Page{Page(4, 'c')}})
	for since := uint64(0); since <= 3; since++ {
		c, err := cr.ReadChanged(since)
		if err != nil {
			t.Fatalf("ReadChanged(%d): %v", since, err)
		}
		if c.LSN != 3 || c.PageCount != 4 {
			t.Fatalf("ReadChanged(%d): LSN %d with %d pages, want 3 and 4", since, c.LSN, c.PageCount)
		}
		var nos []uint32
		for _, p := range c.Pages {
			nos = append(nos, p.No)
			checkPage(t, s, p.No, p.Data)
		}
		if want := s.ChangedSince(since); !slices.Equal(nos, want) {
			t.Fatalf("ReadChanged(%d) pages %v, want ChangedSince's %v", since, nos, want)
		}
	}

	const pages, commits = 16, 200
	done := make(chan error, 1)
	go func() {
		for lsn := uint64(4); lsn < 4+commits; lsn++ {
			c := vfs.Commit{LSN: lsn, PageCount: pages}
			for no := uint32(1); no <= pages; no++ {
				c.Pages = append(c.Pages, Page(no, byte(lsn)))
			}
			if err := s.Apply(c); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for running := true; running; {
		// Let the writer run: under GOOS=js there is one thread and no
		// preemption, and a read that never blocks would starve it.
		runtime.Gosched()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		c, err := cr.ReadChanged(3)
		if err != nil {
			t.Fatalf("ReadChanged(3): %v", err)
		}
		if c.LSN == 3 {
			continue
		}
		if len(c.Pages) != pages {
			t.Fatalf("ReadChanged(3) at LSN %d: %d pages, want %d", c.LSN, len(c.Pages), pages)
		}
		for _, p := range c.Pages {
			if want := Page(p.No, byte(c.LSN)).Data; !bytes.Equal(p.Data, want) {
				t.Fatalf("ReadChanged(3) at LSN %d: page %d is of another version (%q...)", c.LSN, p.No, p.Data[:2])
			}
		}
	}
}

func isChangeReader(s vfs.Store) bool {
	_, ok := s.(vfs.ChangeReader)
	return ok
}

// RunStager runs the contract of a [vfs.Stager]; reopen is nil for stores
// that do not persist. Run runs it too, for stores that are Stagers.
func RunStager(t *testing.T, open Opener, reopen Opener) {
	stager := func(t *testing.T, s vfs.Store) vfs.Stager {
		t.Helper()
		st, ok := s.(vfs.Stager)
		if !ok {
			t.Fatalf("%T is not a vfs.Stager", s)
		}
		return st
	}
	t.Run("StageCommit", func(t *testing.T) {
		s := open(t)
		st := stager(t, s)
		mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 2, Pages: []vfs.Page{Page(1, 'a'), Page(2, 'a')}})
		if _, _, ok := st.Staged(); ok {
			t.Fatal("a new store reports a stage")
		}
		mustStage(t, st, "c1", Page(4, 's'), Page(2, 's'))
		mustStage(t, st, "c2", Page(3, 's'), Page(4, 't'), Page(5, 's'))
		checkStaged(t, st, "c2", 5)
		// Staged pages are out of sight.
		checkPage(t, s, 2, Page(2, 'a').Data)
		if s.LSN() != 1 || s.PageCount() != 2 {
			t.Fatalf("staging moved the store to LSN %d with %d pages", s.LSN(), s.PageCount())
		}
		// c's pages win over staged ones; staged pages above the count go.
		if err := st.CommitStaged(vfs.Commit{LSN: 7, PageCount: 4, Pages: []vfs.Page{Page(3, 'c')}}); err != nil {
			t.Fatal(err)
		}
		if s.LSN() != 7 || s.PageCount() != 4 {
			t.Fatalf("after CommitStaged: LSN %d with %d pages, want 7 and 4", s.LSN(), s.PageCount())
		}
		checkPage(t, s, 1, Page(1, 'a').Data)
		checkPage(t, s, 2, Page(2, 's').Data)
		checkPage(t, s, 3, Page(3, 'c').Data)
		checkPage(t, s, 4, Page(4, 't').Data)
		if got, want := s.ChangedSince(1), []uint32{2, 3, 4}; !slices.Equal(got, want) {
			t.Fatalf("ChangedSince(1) = %v, want %v", got, want)
		}
		if _, _, ok := st.Staged(); ok {
			t.Fatal("the stage is not empty after CommitStaged")
		}
		// Growing again, page 5 was dropped: it reads as zeros until written.
		mustApply(t, s, vfs.Commit{LSN: 8, PageCount: 5, Pages: []vfs.Page{Page(5, 'd')}})
		checkPage(t, s, 5, Page(5, 'd').Data)
	})
	t.Run("RefusesBadStages", func(t *testing.T) {
		s := open(t)
		st := stager(t, s)
		mustApply(t, s, vfs.Commit{LSN: 3, PageCount: 1, Pages: []vfs.Page{Page(1, 'a')}})
		if err := st.Stage(make([]byte, vfs.MaxCursor+1), nil); !errors.Is(err, vfs.ErrCursor) {
			t.Fatalf("long cursor: %v, want ErrCursor", err)
		}
		if err := st.Stage([]byte("x"), []vfs.Page{{No: 0, Data: make([]byte, vfs.PageSize)}}); !errors.Is(err, vfs.ErrBadCommit) {
			t.Fatalf("page 0: %v, want ErrBadCommit", err)
		}
		if err := st.Stage([]byte("x"), []vfs.Page{{No: 2, Data: []byte("short")}}); !errors.Is(err, vfs.ErrBadCommit) {
			t.Fatalf("short page: %v, want ErrBadCommit", err)
		}
		if _, _, ok := st.Staged(); ok {
			t.Fatal("a refused Stage left a stage")
		}
		mustStage(t, st, "c", Page(2, 's'))
		bad := map[string]vfs.Commit{
			"old LSN":        {LSN: 3, PageCount: 2},
			"missing growth": {LSN: 4, PageCount: 3},
		}
		for name, c := range bad {
			if err := st.CommitStaged(c); !errors.Is(err, vfs.ErrBadCommit) {
				t.Fatalf("%s: CommitStaged = %v, want ErrBadCommit", name, err)
			}
		}
		checkStaged(t, st, "c", 1)
		if s.LSN() != 3 || s.PageCount() != 1 {
			t.Fatalf("refused commits moved the store to LSN %d with %d pages", s.LSN(), s.PageCount())
		}
		// Growth carried partly by the stage, partly by the commit.
		if err := st.CommitStaged(vfs.Commit{LSN: 4, PageCount: 3, Pages: []vfs.Page{Page(3, 'c')}}); err != nil {
			t.Fatal(err)
		}
		checkPage(t, s, 2, Page(2, 's').Data)
		checkPage(t, s, 3, Page(3, 'c').Data)
	})
	t.Run("DropAndApply", func(t *testing.T) {
		s := open(t)
		st := stager(t, s)
		mustStage(t, st, "c", Page(1, 's'))
		if err := st.DropStaged(); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := st.Staged(); ok {
			t.Fatal("DropStaged left a stage")
		}
		mustStage(t, st, "d", Page(2, 's'))
		mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 1, Pages: []vfs.Page{Page(1, 'a')}})
		if _, _, ok := st.Staged(); ok {
			t.Fatal("Apply left the stage")
		}
		// The dropped pages do not come back with a later stage.
		if err := st.CommitStaged(vfs.Commit{LSN: 2, PageCount: 2}); !errors.Is(err, vfs.ErrBadCommit) {
			t.Fatalf("commit of a dropped stage: %v, want ErrBadCommit", err)
		}
	})
	if reopen == nil {
		return
	}
	t.Run("Reopen", func(t *testing.T) {
		s := open(t)
		st := stager(t, s)
		mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 1, Pages: []vfs.Page{Page(1, 'a')}})
		mustStage(t, st, "c1", Page(2, 's'), Page(3, 's'))
		mustStage(t, st, "c2", Page(2, 't'))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = reopen(t)
		st = stager(t, s)
		checkStaged(t, st, "c2", 3)
		if s.LSN() != 1 || s.PageCount() != 1 {
			t.Fatalf("reopened at LSN %d with %d pages, want 1 and 1", s.LSN(), s.PageCount())
		}
		mustStage(t, st, "c3", Page(4, 's'))
		if err := st.CommitStaged(vfs.Commit{LSN: 5, PageCount: 4}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = reopen(t)
		st = stager(t, s)
		if _, _, ok := st.Staged(); ok {
			t.Fatal("a committed stage came back on reopen")
		}
		if s.LSN() != 5 || s.PageCount() != 4 {
			t.Fatalf("reopened at LSN %d with %d pages, want 5 and 4", s.LSN(), s.PageCount())
		}
		for no, tag := range map[uint32]byte{1: 'a', 2: 't', 3: 's', 4: 's'} {
			checkPage(t, s, no, Page(no, tag).Data)
		}
		if got, want := s.ChangedSince(1), []uint32{2, 3, 4}; !slices.Equal(got, want) {
			t.Fatalf("ChangedSince(1) after reopen = %v, want %v", got, want)
		}
		mustStage(t, st, "d", Page(2, 'x'))
		if err := st.DropStaged(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = reopen(t)
		if _, _, ok := stager(t, s).Staged(); ok {
			t.Fatal("a dropped stage came back on reopen")
		}
		checkPage(t, s, 2, Page(2, 't').Data)
	})
}

func mustStage(t *testing.T, st vfs.Stager, cursor string, pages ...vfs.Page) {
	t.Helper()
	if err := st.Stage([]byte(cursor), pages); err != nil {
		t.Fatalf("stage %s: %v", cursor, err)
	}
}

func checkStaged(t *testing.T, st vfs.Stager, cursor string, pages int) {
	t.Helper()
	c, n, ok := st.Staged()
	if !ok || string(c) != cursor || n != pages {
		t.Fatalf("Staged() = %q, %d, %v; want %q, %d, true", c, n, ok, cursor, pages)
	}
}
