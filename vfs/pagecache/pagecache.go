// Package pagecache serves a store's pages from a bounded cache in memory,
// for a store whose reads wait on JavaScript promises (IndexedDB, in the
// browser): the cache is a [vfs.Holder], so that a statement run where it
// must not wait (a WebAssembly mutator's, called from JavaScript) fails at
// once on a page the cache lacks, and the replica reads the page outside
// the call and runs the statement again (engine.EventLoopMutator). Commits
// go to the store first, then to the cache.
package pagecache

import (
	"fmt"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/lazystore"
)

// Store is a store with a cache of its pages in memory.
type Store struct {
	under vfs.Store
	cache *lazystore.Store
}

var (
	_ vfs.Store  = (*Store)(nil)
	_ vfs.Holder = (*Store)(nil)
)

// New returns under with a cache of at most cacheBytes of its pages
// (lazystore.MinCacheBytes at least), empty: pages come in as they are
// read, least recently used out first. Closing it closes under.
func New(under vfs.Store, cacheBytes int64) (*Store, error) {
	cache := lazystore.New(cacheBytes)
	if lsn, count := under.LSN(), under.PageCount(); lsn > 0 || count > 0 {
		if err := cache.Apply(vfs.Commit{LSN: lsn, PageCount: count}); err != nil {
			return nil, fmt.Errorf("page cache: %w", err)
		}
	}
	cache.SetFetcher(func(lsn uint64, nos []uint32) (lazystore.Reply, error) {
		r := lazystore.Reply{LSN: lsn}
		for _, no := range nos {
			if no > under.PageCount() {
				r.Stale = append(r.Stale, no)
				continue
			}
			buf := make([]byte, vfs.PageSize)
			if err := under.ReadPage(no, buf); err != nil {
				return lazystore.Reply{}, err
			}
			r.Pages = append(r.Pages, vfs.Page{No: no, Data: buf})
		}
		return r, nil
	})
	return &Store{under: under, cache: cache}, nil
}

// Warm reads the first pages of the store into the cache, as many as it
// holds: a document that fits is then all in memory, as if read whole at
// open, and a larger one has its first pages (the schema's, the tables'
// first) there.
func (s *Store) Warm() error {
	n := min(uint64(s.PageCount()), uint64(s.cache.Stats().CacheBytes/vfs.PageSize))
	buf := make([]byte, vfs.PageSize)
	for no := uint32(1); uint64(no) <= n; no++ {
		if err := s.cache.ReadPage(no, buf); err != nil {
			return fmt.Errorf("page cache: warm page %d: %w", no, err)
		}
	}
	return nil
}

// LSN returns the store's LSN.
func (s *Store) LSN() uint64 { return s.cache.LSN() }

// PageCount returns the store's page count.
func (s *Store) PageCount() uint32 { return s.cache.PageCount() }

// ReadPage copies page no into buf, from the cache, or from the store
// (waiting for it) into the cache.
func (s *Store) ReadPage(no uint32, buf []byte) error {
	if no == 0 || no > s.PageCount() {
		return s.under.ReadPage(no, buf) // the store's own answer
	}
	return s.cache.ReadPage(no, buf)
}

// Holds reports whether page no is in the cache.
func (s *Store) Holds(no uint32) bool { return s.cache.Holds(no) }

// Apply applies c to the store, then to the cache.
func (s *Store) Apply(c vfs.Commit) error {
	if err := s.under.Apply(c); err != nil {
		return err
	}
	if err := s.cache.Apply(c); err != nil {
		return fmt.Errorf("page cache: %w", err)
	}
	return nil
}

// ChangedSince is the store's.
func (s *Store) ChangedSince(lsn uint64) []uint32 { return s.under.ChangedSince(lsn) }

// Stats returns the cache's counts (Fetches are reads from the store).
func (s *Store) Stats() lazystore.Stats { return s.cache.Stats() }

// Close closes the cache and the store.
func (s *Store) Close() error {
	s.cache.Close()
	return s.under.Close()
}
