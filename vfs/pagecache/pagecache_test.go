package pagecache

import (
	"testing"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/lazystore"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

// keepOpen survives Close, standing in for a durable store opened again.
type keepOpen struct{ vfs.Store }

func (keepOpen) Close() error { return nil }

// countReads counts the reads that reach the store under the cache.
type countReads struct {
	vfs.Store
	reads int
}

func (c *countReads) ReadPage(no uint32, buf []byte) error {
	c.reads++
	return c.Store.ReadPage(no, buf)
}

// A cached store meets the store contract, reopened over the same durable
// store too.
func TestContract(t *testing.T) {
	var under *keepOpen
	open := func(t *testing.T) vfs.Store {
		s, err := New(under, lazystore.MinCacheBytes)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, func(t *testing.T) vfs.Store {
		under = &keepOpen{memstore.New()}
		return open(t)
	}, open)
}

// Pages are read from the store once, then from memory, within the bound;
// Holds tells which; commits reach both.
func TestCache(t *testing.T) {
	under := &countReads{Store: memstore.New()}
	const n = 200
	c := vfs.Commit{LSN: 1, PageCount: n}
	for no := uint32(1); no <= n; no++ {
		c.Pages = append(c.Pages, storetest.Page(no, byte(no)))
	}
	if err := under.Apply(c); err != nil {
		t.Fatal(err)
	}
	s, err := New(under, lazystore.MinCacheBytes) // 64 pages
	if err != nil {
		t.Fatal(err)
	}
	if s.LSN() != 1 || s.PageCount() != n || s.Holds(5) {
		t.Fatalf("new cache: LSN %d, %d pages, holds page 5: %v", s.LSN(), s.PageCount(), s.Holds(5))
	}
	buf := make([]byte, vfs.PageSize)
	for range 3 {
		if err := s.ReadPage(5, buf); err != nil || buf[0] != 5 {
			t.Fatalf("page 5: %v, first byte %d", err, buf[0])
		}
	}
	if under.reads != 1 || !s.Holds(5) {
		t.Fatalf("%d reads reached the store for three of page 5 (held: %v)", under.reads, s.Holds(5))
	}
	for no := uint32(1); no <= n; no++ {
		if err := s.ReadPage(no, buf); err != nil || buf[0] != byte(no) {
			t.Fatalf("page %d: %v, first byte %d", no, err, buf[0])
		}
	}
	if st := s.Stats(); st.CachedBytes > st.CacheBytes || st.CachedPages != 64 {
		t.Fatalf("cache after reading %d pages: %+v", n, st)
	}
	if err := s.Apply(vfs.Commit{LSN: 2, PageCount: n + 1, Pages: []vfs.Page{storetest.Page(3, 'x'), storetest.Page(n+1, 'y')}}); err != nil {
		t.Fatal(err)
	}
	reads := under.reads
	if err := s.ReadPage(n+1, buf); err != nil || buf[0] != 'y' || under.reads != reads {
		t.Fatalf("a page just committed: %v, %q, %d reads of the store", err, buf[0], under.reads-reads)
	}
	if err := under.ReadPage(3, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("the store did not get the commit: %v, %q", err, buf[0])
	}
	if err := s.Apply(vfs.Commit{LSN: 2, PageCount: 1}); err == nil {
		t.Fatal("a commit the store refuses reached the cache")
	}
}

// Warm reads the first pages, as many as the cache holds.
func TestWarm(t *testing.T) {
	under := &countReads{Store: memstore.New()}
	c := vfs.Commit{LSN: 1, PageCount: 100}
	for no := uint32(1); no <= 100; no++ {
		c.Pages = append(c.Pages, storetest.Page(no, byte(no)))
	}
	under.Apply(c)
	s, err := New(under, lazystore.MinCacheBytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Warm(); err != nil {
		t.Fatal(err)
	}
	if !s.Holds(1) || !s.Holds(64) || s.Holds(65) || under.reads != 64 {
		t.Fatalf("after Warm: holds 1 %v, 64 %v, 65 %v; %d reads", s.Holds(1), s.Holds(64), s.Holds(65), under.reads)
	}
}
