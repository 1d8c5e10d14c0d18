// Package memstore is an in-memory [vfs.Store]: for tests, simulations and
// throwaway replicas. Nothing survives the process.
package memstore

import (
	"fmt"
	"sync"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/internal/pageindex"
)

// Store keeps every page in memory.
type Store struct {
	mu     sync.RWMutex
	lsn    uint64
	count  uint32
	pages  map[uint32][]byte
	index  pageindex.Index
	closed bool
}

var (
	_ vfs.Store        = (*Store)(nil)
	_ vfs.ChangeReader = (*Store)(nil)
)

// New returns an empty store at LSN 0.
func New() *Store {
	return &Store{pages: map[uint32][]byte{}}
}

// LSN returns the LSN of the last applied commit.
func (s *Store) LSN() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lsn
}

// PageCount returns the number of pages.
func (s *Store) PageCount() uint32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count
}

// ReadPage copies page no into buf.
func (s *Store) ReadPage(no uint32, buf []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.readPage(no, buf)
}

// readPage reads page no into buf; the caller holds mu for reading.
func (s *Store) readPage(no uint32, buf []byte) error {
	if s.closed {
		return fmt.Errorf("read page %d: %w", no, vfs.ErrClosed)
	}
	if p, ok := s.pages[no]; ok && no <= s.count {
		copy(buf, p)
	} else {
		clear(buf[:vfs.PageSize])
	}
	return nil
}

// ReadChanged returns the pages changed after lsn, with the LSN and page
// count, as one version.
func (s *Store) ReadChanged(lsn uint64) (vfs.Commit, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return vfs.Commit{}, fmt.Errorf("read changed pages: %w", vfs.ErrClosed)
	}
	c := vfs.Commit{LSN: s.lsn, PageCount: s.count}
	for _, no := range s.index.ChangedSince(lsn) {
		buf := make([]byte, vfs.PageSize)
		if err := s.readPage(no, buf); err != nil {
			return vfs.Commit{}, err
		}
		c.Pages = append(c.Pages, vfs.Page{No: no, Data: buf})
	}
	return c, nil
}

// Apply applies c atomically.
func (s *Store) Apply(c vfs.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("apply commit %d: %w", c.LSN, vfs.ErrClosed)
	}
	if err := c.Validate(s.lsn); err != nil {
		return fmt.Errorf("apply commit: %w", err)
	}
	// Grown pages changed too (to zeros, unless written below): a replica
	// that missed an earlier shrink must get them.
	for no := s.count + 1; no <= c.PageCount; no++ {
		delete(s.pages, no)
		s.index.Touch(no, c.LSN)
	}
	for _, p := range c.Pages {
		s.pages[p.No] = append([]byte(nil), p.Data...)
		s.index.Touch(p.No, c.LSN)
	}
	if c.PageCount < s.count {
		for no := c.PageCount + 1; no <= s.count; no++ {
			delete(s.pages, no)
		}
		s.index.Truncate(c.PageCount)
	}
	s.count, s.lsn = c.PageCount, c.LSN
	return nil
}

// ChangedSince returns the pages changed after lsn.
func (s *Store) ChangedSince(lsn uint64) []uint32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index.ChangedSince(lsn)
}

// Close marks the store closed; its pages are dropped.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed, s.pages = true, nil
	return nil
}
