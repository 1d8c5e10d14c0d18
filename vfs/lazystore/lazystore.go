// Package lazystore is the snapshot store of a lazy replica: a
// [vfs.Partial] store that holds, in memory and within a size bound, only
// the pages the replica has read, and fetches the others from the
// coordinator as queries reach them.
//
// A page missing from the store is fetched by ReadPage, synchronously, as
// of the store's LSN: SQLite's reads are synchronous, and ReadPage is
// called on the goroutine of the statement, which waits. In the browser
// (GOOS=js) the wait hands control back to JavaScript, so the reply comes
// in as any WebSocket message does. A page that changed after the store's
// LSN cannot be had as of it: ReadPage fails with a *vfs.MissError naming
// the LSN to wait for, and the replica reruns the statement once a diff
// has brought it there (engine.Client does).
//
// When a page misses, its siblings in the b-tree (the children of the
// same interior page, which the store holds, as SQLite read it to get
// there) may come with it: none on the first miss under a parent (a point
// query reads one), then twice as many on each further miss under the same
// parent (a scan reads them all), up to maxPrefetch.
package lazystore

import (
	"container/list"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// Fetcher fetches pages nos as of LSN lsn from the coordinator (a
// protocol.PageRequest): it returns those unchanged since lsn and the
// others as stale, with the coordinator's LSN.
type Fetcher func(lsn uint64, nos []uint32) (Reply, error)

// Reply is a Fetcher's answer: see protocol.PageReply.
type Reply struct {
	LSN   uint64
	Pages []vfs.Page
	Stale []uint32
}

// maxPrefetch bounds the siblings fetched along with a missing page.
const maxPrefetch = 64

// MinCacheBytes is the smallest cache a store keeps: a statement's pages
// must fit while SQLite reads them.
const MinCacheBytes = 64 * vfs.PageSize

// Stats counts what a store did.
type Stats struct {
	Fetches      int   // page requests (round trips to the coordinator)
	PagesFetched int   // pages received in replies
	Prefetched   int   // of them, siblings nobody had asked for yet
	Stale        int   // misses of a page changed since the store's LSN
	Evicted      int   // pages dropped to stay within the cache bound
	CachedPages  int   // pages held now
	CachedBytes  int64 // their bytes
	CacheBytes   int64 // the bound
}

// Store is a lazy replica's snapshot: the LSN and page count of the whole
// document, and the pages read lately, least recently used dropped first.
type Store struct {
	fetchMu sync.Mutex // one fetch at a time

	mu       sync.Mutex
	lsn      uint64
	count    uint32
	pages    map[uint32]*list.Element // of *entry, in lru or inner
	lru      *list.List               // leaves and other pages; front: most recently used
	inner    *list.List               // interior b-tree pages, dropped only when lru is empty
	max      int                      // pages
	fetch    Fetcher
	closed   bool
	children map[uint32][]uint32 // interior b-tree page: its children, in order
	parent   map[uint32]uint32   // child: its interior page
	run      map[uint32]int      // interior page: misses under it in a row
	last     uint32              // the interior page of the last miss
	lastAt   int                 // the index, among last's children, of the last page fetched
	stats    Stats
}

type entry struct {
	no    uint32
	data  []byte
	inner bool // an interior b-tree page: in Store.inner
}

// list returns the list e is in.
func (s *Store) list(e *entry) *list.List {
	if e.inner {
		return s.inner
	}
	return s.lru
}

var _ vfs.Partial = (*Store)(nil)

// New returns an empty store at LSN 0 that holds at most cacheBytes of
// pages (at least MinCacheBytes).
func New(cacheBytes int64) *Store {
	cacheBytes = max(cacheBytes, MinCacheBytes)
	return &Store{
		pages:    map[uint32]*list.Element{},
		lru:      list.New(),
		inner:    list.New(),
		max:      int(cacheBytes / vfs.PageSize),
		children: map[uint32][]uint32{},
		parent:   map[uint32]uint32{},
		run:      map[uint32]int{},
		stats:    Stats{CacheBytes: cacheBytes},
	}
}

// SetFetcher sets how missing pages are fetched; nil (offline) makes a
// missing page fail with vfs.ErrOffline.
func (s *Store) SetFetcher(f Fetcher) {
	s.mu.Lock()
	s.fetch = f
	s.mu.Unlock()
}

// Stats returns the store's counts.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.CachedPages = len(s.pages)
	st.CachedBytes = int64(len(s.pages)) * vfs.PageSize
	return st
}

// LSN returns the snapshot's LSN.
func (s *Store) LSN() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lsn
}

// PageCount returns the snapshot's page count.
func (s *Store) PageCount() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Held returns the numbers of the pages held, ascending.
func (s *Store) Held() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	nos := make([]uint32, 0, len(s.pages))
	for no := range s.pages {
		nos = append(nos, no)
	}
	slices.Sort(nos)
	return nos
}

// ReadPage copies page no into buf, fetching it (and maybe its siblings)
// if the store lacks it.
func (s *Store) ReadPage(no uint32, buf []byte) error {
	if ok, err := s.cached(no, buf); ok || err != nil {
		return err
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if ok, err := s.cached(no, buf); ok || err != nil {
		return err // fetched meanwhile
	}
	s.mu.Lock()
	f, lsn, nos := s.fetch, s.lsn, s.plan(no)
	s.mu.Unlock()
	if f == nil {
		return &vfs.MissError{Page: no, Err: vfs.ErrOffline}
	}
	r, err := f(lsn, nos)
	if err != nil {
		return &vfs.MissError{Page: no, Err: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lsn != lsn {
		// A diff came in meanwhile: the pages are as of the old LSN.
		return &vfs.MissError{Page: no, LSN: s.lsn}
	}
	s.stats.Fetches++
	s.stats.PagesFetched += len(r.Pages)
	got := false
	for _, p := range r.Pages {
		if p.No > s.count || len(p.Data) != vfs.PageSize {
			continue
		}
		if p.No == no {
			got = true
			continue // last, so the bound cannot drop it at once
		} else if _, ok := s.pages[p.No]; !ok && slices.Contains(nos, p.No) {
			s.stats.Prefetched++
		}
		s.put(p.No, p.Data)
	}
	if !got {
		s.stats.Stale++
		return &vfs.MissError{Page: no, LSN: max(r.LSN, lsn+1)}
	}
	for _, p := range r.Pages {
		if p.No == no {
			s.put(no, p.Data)
			copy(buf, p.Data)
		}
	}
	return nil
}

// cached copies page no into buf if the store holds it.
func (s *Store) cached(no uint32, buf []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, vfs.ErrClosed
	}
	if no == 0 || no > s.count {
		return false, fmt.Errorf("read page %d of %d: %w", no, s.count, vfs.ErrCorrupt)
	}
	e, ok := s.pages[no]
	if !ok {
		return false, nil
	}
	s.list(e.Value.(*entry)).MoveToFront(e)
	copy(buf, e.Value.(*entry).data)
	return true, nil
}

// plan returns the pages to fetch for a miss of page no: no and maybe its
// next siblings. A miss of the sibling right after the last page fetched
// under the same interior page is a scan going on: each such miss in a row
// doubles the siblings fetched with it; any other miss fetches no sibling.
// +checklocks:s.mu
func (s *Store) plan(no uint32) []uint32 {
	nos := []uint32{no}
	p, ok := s.parent[no]
	if !ok {
		s.last, s.lastAt = 0, 0
		return nos
	}
	sibs := s.children[p]
	i := slices.Index(sibs, no)
	if p == s.last && i == s.lastAt+1 {
		s.run[p]++
	} else {
		s.run[p] = 0
	}
	want := 0
	if r := s.run[p]; r > 0 {
		want = min(1<<min(r, 6), maxPrefetch, s.max/4)
	}
	at := i
	for j := i + 1; j < len(sibs) && len(nos) <= want && len(nos) < protocol.MaxPagesPerRequest; j++ {
		c := sibs[j]
		if _, held := s.pages[c]; held || c > s.count || slices.Contains(nos, c) {
			continue
		}
		nos = append(nos, c)
		at = j
	}
	s.last, s.lastAt = p, at
	slices.Sort(nos)
	return nos
}

// put holds page no, dropping the least recently used pages over the
// bound: leaves first. Interior b-tree pages are on the path of every
// lookup, and SQLite's own page cache hides how often they are read (its
// hits never reach the store), so they go only when nothing else is left.
// +checklocks:s.mu
func (s *Store) put(no uint32, data []byte) {
	data = slices.Clone(data)
	s.drop(no)
	e := &entry{no: no, data: data, inner: s.index(no, data)}
	s.pages[no] = s.list(e).PushFront(e)
	for len(s.pages) > s.max {
		victim := s.lru.Back()
		if victim == nil {
			victim = s.inner.Back()
		}
		s.drop(victim.Value.(*entry).no)
		s.stats.Evicted++
	}
}

// drop forgets page no.
// +checklocks:s.mu
func (s *Store) drop(no uint32) {
	e, ok := s.pages[no]
	if !ok {
		return
	}
	s.list(e.Value.(*entry)).Remove(e)
	delete(s.pages, no)
	s.unindex(no)
}

// index records the children of page no and reports true if it is an
// interior b-tree page. A page that only looks like one costs a wasted
// prefetch and a longer stay in the cache, nothing more.
// +checklocks:s.mu
func (s *Store) index(no uint32, data []byte) bool {
	s.unindex(no)
	kids := interiorChildren(no, data, s.count)
	if len(kids) == 0 {
		return false
	}
	s.children[no] = kids
	for _, c := range kids {
		s.parent[c] = no
	}
	return true
}

// +checklocks:s.mu
func (s *Store) unindex(no uint32) {
	for _, c := range s.children[no] {
		if s.parent[c] == no {
			delete(s.parent, c)
		}
	}
	delete(s.children, no)
	delete(s.run, no)
}

// interiorChildren returns the child pages of an interior b-tree page (the
// left child of each cell, then the right-most pointer), or nil if data is
// not one; children above count are left out.
func interiorChildren(no uint32, data []byte, count uint32) []uint32 {
	h := 0
	if no == 1 {
		h = 100 // the database header
	}
	if len(data) < h+12 || (data[h] != 0x02 && data[h] != 0x05) {
		return nil
	}
	cells := int(binary.BigEndian.Uint16(data[h+3:]))
	if h+12+2*cells > len(data) {
		return nil
	}
	kids := make([]uint32, 0, cells+1)
	for i := range cells {
		at := int(binary.BigEndian.Uint16(data[h+12+2*i:]))
		if at+4 > len(data) {
			return nil
		}
		if c := binary.BigEndian.Uint32(data[at:]); c > 0 && c <= count {
			kids = append(kids, c)
		}
	}
	if c := binary.BigEndian.Uint32(data[h+8:]); c > 0 && c <= count {
		kids = append(kids, c)
	}
	return kids
}

// Apply takes a diff: the new LSN and page count, and new copies of pages
// the store holds (the coordinator sends a lazy replica no others; any
// other is held too, within the bound). Pages above the new count go.
func (s *Store) Apply(c vfs.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return vfs.ErrClosed
	}
	if err := c.Validate(s.lsn); err != nil {
		return err
	}
	if c.PageCount < s.count {
		for no := range s.pages {
			if no > c.PageCount {
				s.drop(no)
			}
		}
	}
	s.lsn, s.count = c.LSN, c.PageCount
	for _, p := range c.Pages {
		s.put(p.No, p.Data)
	}
	return nil
}

// ChangedSince returns nil: a lazy replica's store keeps no history (only
// a coordinator's store is asked).
func (s *Store) ChangedSince(uint64) []uint32 { return nil }

// Close drops every page.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.pages, s.children, s.parent = map[uint32]*list.Element{}, map[uint32][]uint32{}, map[uint32]uint32{}
	s.lru.Init()
	s.inner.Init()
	return nil
}
