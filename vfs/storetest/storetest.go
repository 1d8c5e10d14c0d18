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
