// Package memstore is an in-memory [vfs.Store]: for tests, simulations and
// throwaway replicas. Nothing survives the process.
package memstore

import (
	"fmt"
	"sync"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/internal/storestate"
)

// Store keeps every page in memory.
type Store struct {
	mu     sync.RWMutex
	state  storestate.State
	pages  map[uint32][]byte
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
func (s *Store) LSN() uint64 { return storestate.ReadLocked(&s.mu, s.state.LSN) }

// PageCount returns the number of pages.
func (s *Store) PageCount() uint32 { return storestate.ReadLocked(&s.mu, s.state.PageCount) }

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
	if p, ok := s.pages[no]; ok && no <= s.state.PageCount() {
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
	return vfs.ReadCommit(s.state.LSN(), s.state.PageCount(), s.state.ChangedSince(lsn), s.readPage)
}

// Apply applies c atomically.
func (s *Store) Apply(c vfs.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("apply commit %d: %w", c.LSN, vfs.ErrClosed)
	}
	if err := c.Validate(s.state.LSN()); err != nil {
		return fmt.Errorf("apply commit: %w", err)
	}
	ch := s.state.Change(c.LSN, c.PageCount, c.PageNumbers())
	for no := range ch.Grown() {
		delete(s.pages, no) // zeros unless written below
	}
	for _, p := range c.Pages {
		s.pages[p.No] = append([]byte(nil), p.Data...)
	}
	for no := range ch.Dropped() {
		delete(s.pages, no)
	}
	s.state.Apply(ch)
	return nil
}

// ChangedSince returns the pages changed after lsn.
func (s *Store) ChangedSince(lsn uint64) []uint32 {
	return storestate.ReadLocked(&s.mu, func() []uint32 { return s.state.ChangedSince(lsn) })
}

// Close marks the store closed; its pages are dropped.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed, s.pages = true, nil
	return nil
}
