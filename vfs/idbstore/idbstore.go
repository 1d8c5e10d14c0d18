// Package idbstore is a durable [vfs.Store] in the browser's IndexedDB, the
// fallback where OPFS synchronous access handles are missing.
//
// Each Apply is one IndexedDB transaction (with strict durability) that
// writes the commit's pages, the per-page LSNs, the LSN and the page count,
// or none of them. The per-page LSNs are kept in chunks of [ChunkPages]
// pages (8 bytes each, little-endian), rewritten whole when one of their
// pages changes and all loaded on open, so ChangedSince stays exact across
// reloads; page bytes are read on demand and kept in a bounded cache.
//
// The IndexedDB binding needs GOOS=js (see [Open]); the store logic runs
// anywhere over any [Backend], which is how it is tested.
package idbstore

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/internal/storestate"
)

// ChunkPages is the number of page LSNs in one chunk.
const ChunkPages = 512

// chunkOf returns the chunk holding page no's LSN.
func chunkOf(no uint32) uint32 { return (no - 1) / ChunkPages }

// Write is one atomic change of a Backend.
type Write struct {
	LSN       uint64
	PageCount uint32
	// Truncate drops every page above PageCount, and every chunk after
	// the one of page PageCount.
	Truncate bool
	// Pages are stored.
	Pages []vfs.Page
	// Zeroed pages read as zeros from now on: their bytes are dropped.
	Zeroed []uint32
	// Chunks are the LSN chunks to store, by chunk number (from 0).
	Chunks map[uint32][]byte
}

// Backend is the durable storage under a Store.
type Backend interface {
	// Load returns the stored LSN and page count (0 and 0 when new).
	Load() (lsn uint64, count uint32, err error)
	// LoadChunks returns LSN chunks 0..n-1.
	LoadChunks(n uint32) ([][]byte, error)
	// ReadPage copies page no into buf and reports whether it was stored.
	ReadPage(no uint32, buf []byte) (bool, error)
	// Commit makes w durable, all of it or nothing.
	Commit(w Write) error
	// Close releases the backend.
	Close() error
}

// DefaultCachePages is the most pages a Store keeps in memory by default
// (32 MiB).
const DefaultCachePages = 8192

// Store is a vfs.Store over a Backend.
type Store struct {
	b   Backend
	max int

	mu     sync.RWMutex
	state  storestate.State
	closed bool

	cmu   sync.Mutex
	cache map[uint32][]byte // page bytes; a nil entry is a page known to be zeros
}

var _ vfs.Store = (*Store)(nil)

// New opens a Store over b, caching at most cachePages pages (0 means
// DefaultCachePages).
func New(b Backend, cachePages int) (*Store, error) {
	lsn, count, err := b.Load()
	if err != nil {
		return nil, fmt.Errorf("idbstore: load: %w", err)
	}
	var chunks [][]byte
	if count > 0 {
		if chunks, err = b.LoadChunks(chunkOf(count) + 1); err != nil {
			return nil, fmt.Errorf("idbstore: load page LSNs: %w", err)
		}
	}
	lsns := make([]uint64, count)
	for i := range lsns {
		c := chunks[i/ChunkPages]
		at := (i % ChunkPages) * 8
		if len(c) < at+8 {
			return nil, fmt.Errorf("%w: idbstore: LSN chunk %d holds %d bytes", vfs.ErrCorrupt, i/ChunkPages, len(c))
		}
		lsns[i] = binary.LittleEndian.Uint64(c[at:])
		if lsns[i] > lsn {
			return nil, fmt.Errorf("%w: idbstore: page %d at LSN %d after the store's %d", vfs.ErrCorrupt, i+1, lsns[i], lsn)
		}
	}
	if cachePages <= 0 {
		cachePages = DefaultCachePages
	}
	return &Store{
		b:     b,
		max:   cachePages,
		state: storestate.Load(lsn, count, lsns),
		cache: map[uint32][]byte{},
	}, nil
}

// LSN returns the LSN of the last applied commit.
func (s *Store) LSN() uint64 { return storestate.ReadLocked(&s.mu, s.state.LSN) }

// PageCount returns the number of pages.
func (s *Store) PageCount() uint32 { return storestate.ReadLocked(&s.mu, s.state.PageCount) }

// ReadPage copies page no into buf, from the cache or the backend.
func (s *Store) ReadPage(no uint32, buf []byte) error {
	if len(buf) < vfs.PageSize {
		return fmt.Errorf("idbstore: read page %d: buffer holds %d bytes, need %d", no, len(buf), vfs.PageSize)
	}
	buf = buf[:vfs.PageSize]
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("idbstore: read page %d: %w", no, vfs.ErrClosed)
	}
	if no == 0 || no > s.state.PageCount() {
		clear(buf)
		return nil
	}
	s.cmu.Lock()
	p, ok := s.cache[no]
	s.cmu.Unlock()
	if ok {
		if p == nil {
			clear(buf)
		} else {
			copy(buf, p)
		}
		return nil
	}
	found, err := s.b.ReadPage(no, buf)
	if err != nil {
		return fmt.Errorf("idbstore: read page %d: %w", no, err)
	}
	if !found {
		clear(buf)
		s.remember(no, nil)
		return nil
	}
	s.remember(no, append([]byte(nil), buf...))
	return nil
}

// remember caches page no, evicting an arbitrary page when full.
func (s *Store) remember(no uint32, p []byte) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if _, ok := s.cache[no]; !ok && len(s.cache) >= s.max {
		for k := range s.cache {
			delete(s.cache, k)
			break
		}
	}
	s.cache[no] = p
}

// Apply makes c durable in one backend write.
func (s *Store) Apply(c vfs.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("idbstore: apply commit %d: %w", c.LSN, vfs.ErrClosed)
	}
	if err := c.Validate(s.state.LSN()); err != nil {
		return fmt.Errorf("idbstore: apply commit %d: %w", c.LSN, err)
	}
	ch := s.state.Change(c.LSN, c.PageCount, c.PageNumbers())
	w := Write{LSN: c.LSN, PageCount: c.PageCount, Truncate: ch.Shrinks(), Pages: c.Pages}
	written := make(map[uint32]bool, len(c.Pages))
	for _, p := range c.Pages {
		written[p.No] = true
	}
	for no := range ch.Grown() {
		if !written[no] {
			w.Zeroed = append(w.Zeroed, no)
		}
	}
	touched := map[uint32]bool{}
	for _, no := range ch.Changed {
		touched[chunkOf(no)] = true
	}
	if ch.Shrinks() && c.PageCount > 0 {
		touched[chunkOf(c.PageCount)] = true // cut its tail
	}
	w.Chunks = map[uint32][]byte{}
	for k := range touched {
		if c.PageCount == 0 || k > chunkOf(c.PageCount) {
			continue
		}
		chunk := make([]byte, ChunkPages*8)
		for i := range uint32(ChunkPages) {
			no := k*ChunkPages + i + 1
			if no > c.PageCount {
				break
			}
			binary.LittleEndian.PutUint64(chunk[i*8:], s.state.PageLSNAfter(ch, no))
		}
		w.Chunks[k] = chunk
	}
	if err := s.b.Commit(w); err != nil {
		return fmt.Errorf("idbstore: apply commit %d: %w", c.LSN, err)
	}
	s.state.Apply(ch)
	s.cmu.Lock()
	for no := range ch.Grown() {
		s.cache[no] = nil // zeros unless written below
	}
	if ch.Shrinks() {
		for no := range s.cache {
			if no > c.PageCount {
				delete(s.cache, no)
			}
		}
	}
	for _, p := range c.Pages {
		s.cache[p.No] = append([]byte(nil), p.Data...)
	}
	for len(s.cache) > s.max {
		for k := range s.cache {
			delete(s.cache, k)
			break
		}
	}
	s.cmu.Unlock()
	return nil
}

// ChangedSince returns the pages changed after lsn.
func (s *Store) ChangedSince(lsn uint64) []uint32 {
	return storestate.ReadLocked(&s.mu, func() []uint32 { return s.state.ChangedSince(lsn) })
}

// Close closes the backend.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cache = nil
	s.state.Forget()
	if err := s.b.Close(); err != nil {
		return fmt.Errorf("idbstore: close: %w", err)
	}
	return nil
}
