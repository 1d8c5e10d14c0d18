package idbstore

import (
	"errors"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

// memBackend keeps what a backend stores in memory, across reopens.
type memBackend struct {
	mu      sync.Mutex
	lsn     uint64
	count   uint32
	pages   map[uint32][]byte
	chunks  map[uint32][]byte
	fail    error
	commits int
}

func newMemBackend() *memBackend {
	return &memBackend{pages: map[uint32][]byte{}, chunks: map[uint32][]byte{}}
}

func (b *memBackend) Load() (uint64, uint32, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lsn, b.count, nil
}

func (b *memBackend) LoadChunks(n uint32) ([][]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out [][]byte
	for k := range n {
		out = append(out, b.chunks[k])
	}
	return out, nil
}

func (b *memBackend) ReadPage(no uint32, buf []byte) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pages[no]
	copy(buf, p)
	return ok, nil
}

func (b *memBackend) Commit(w Write) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	b.commits++
	if w.Truncate {
		for no := range b.pages {
			if no > w.PageCount {
				delete(b.pages, no)
			}
		}
		for k := range b.chunks {
			if w.PageCount == 0 || k > chunkOf(w.PageCount) {
				delete(b.chunks, k)
			}
		}
	}
	for _, no := range w.Zeroed {
		delete(b.pages, no)
	}
	for _, p := range w.Pages {
		b.pages[p.No] = slices.Clone(p.Data)
	}
	for k, c := range w.Chunks {
		b.chunks[k] = slices.Clone(c)
	}
	b.lsn, b.count = w.LSN, w.PageCount
	return nil
}

func (b *memBackend) Close() error { return nil }

func TestContract(t *testing.T) {
	for _, cache := range []int{1, DefaultCachePages} {
		var b *memBackend
		reopen := func(t *testing.T) vfs.Store {
			s, err := New(b, cache)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		open := func(t *testing.T) vfs.Store {
			b = newMemBackend()
			return reopen(t)
		}
		storetest.Run(t, open, reopen)
	}
}

func TestFailedCommitChangesNothing(t *testing.T) {
	b := newMemBackend()
	s, err := New(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(vfs.Commit{LSN: 1, PageCount: 1, Pages: []vfs.Page{storetest.Page(1, 'a')}}); err != nil {
		t.Fatal(err)
	}
	b.fail = errors.New("QuotaExceededError")
	if err := s.Apply(vfs.Commit{LSN: 2, PageCount: 2, Pages: []vfs.Page{storetest.Page(1, 'b'), storetest.Page(2, 'b')}}); err == nil {
		t.Fatal("apply succeeded over a failing backend")
	}
	if s.LSN() != 1 || s.PageCount() != 1 {
		t.Fatalf("after a failed apply: LSN %d, %d pages", s.LSN(), s.PageCount())
	}
	buf := make([]byte, vfs.PageSize)
	if err := s.ReadPage(1, buf); err != nil || buf[0] != 'a' {
		t.Fatalf("page 1 after a failed apply: %q, %v", buf[:2], err)
	}
	if b.commits != 1 {
		t.Fatalf("%d backend commits, want 1", b.commits)
	}
}

// TestManyChunks checks page LSNs across several chunks, shrinking and
// growing, against the memory store.
func TestManyChunks(t *testing.T) {
	b := newMemBackend()
	s, err := New(b, 16)
	if err != nil {
		t.Fatal(err)
	}
	model := memstore.New()
	r := rand.New(rand.NewPCG(1, 2))
	count := uint32(0)
	for lsn := uint64(1); lsn <= 60; lsn++ {
		c := vfs.Commit{LSN: lsn, PageCount: count}
		if r.IntN(4) == 0 || count == 0 {
			c.PageCount = uint32(r.IntN(3*ChunkPages) + 1)
		}
		for no := uint32(1); no <= c.PageCount; no++ {
			if r.IntN(200) == 0 {
				c.Pages = append(c.Pages, storetest.Page(no, byte(lsn)))
			}
		}
		if err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
		if err := model.Apply(c); err != nil {
			t.Fatal(err)
		}
		count = c.PageCount
		if r.IntN(5) == 0 {
			s.Close()
			if s, err = New(b, 16); err != nil {
				t.Fatal(err)
			}
		}
		for since := uint64(0); since <= lsn; since += 7 {
			if got, want := s.ChangedSince(since), model.ChangedSince(since); !slices.Equal(got, want) {
				t.Fatalf("LSN %d: ChangedSince(%d) = %d pages, want %d", lsn, since, len(got), len(want))
			}
		}
	}
	got, want := make([]byte, vfs.PageSize), make([]byte, vfs.PageSize)
	for no := uint32(1); no <= count; no++ {
		s.ReadPage(no, got)
		model.ReadPage(no, want)
		if !slices.Equal(got, want) {
			t.Fatalf("page %d differs", no)
		}
	}
}
