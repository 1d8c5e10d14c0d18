// Package memstore is an in-memory [vfs.Store]: for tests, simulations and
// throwaway replicas. Nothing survives the process.
package memstore

import (
	"fmt"
	"maps"
	"slices"
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

	stage  map[uint32][]byte // nil: nothing staged
	cursor []byte
	staged int
}

var (
	_ vfs.Store        = (*Store)(nil)
	_ vfs.ChangeReader = (*Store)(nil)
	_ vfs.Stager       = (*Store)(nil)
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
	s.stage, s.cursor, s.staged = nil, nil, 0
	s.apply(c)
	return nil
}

// apply applies c, which is valid; the caller holds mu.
func (s *Store) apply(c vfs.Commit) {
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
}

// Staged returns the stage's cursor and page copies.
func (s *Store) Staged() ([]byte, int, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cursor, s.staged, s.stage != nil
}

// Stage adds pages to the stage.
func (s *Store) Stage(cursor []byte, pages []vfs.Page) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("stage pages: %w", vfs.ErrClosed)
	}
	if err := vfs.ValidateStage(cursor, pages); err != nil {
		return fmt.Errorf("stage pages: %w", err)
	}
	if s.stage == nil {
		s.stage = map[uint32][]byte{}
	}
	for _, p := range pages {
		s.stage[p.No] = append([]byte(nil), p.Data...)
	}
	s.cursor, s.staged = append([]byte(nil), cursor...), s.staged+len(pages)
	return nil
}

// CommitStaged applies the stage and c as one commit.
func (s *Store) CommitStaged(c vfs.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("commit staged pages: %w", vfs.ErrClosed)
	}
	if err := vfs.CheckStaged(s.state.LSN(), s.state.PageCount(), c, maps.Keys(s.stage)); err != nil {
		return fmt.Errorf("commit staged pages: %w", err)
	}
	all := maps.Clone(s.stage)
	if all == nil {
		all = map[uint32][]byte{}
	}
	for _, p := range c.Pages {
		all[p.No] = p.Data
	}
	whole := vfs.Commit{LSN: c.LSN, PageCount: c.PageCount}
	for _, no := range slices.Sorted(maps.Keys(all)) {
		if no <= c.PageCount {
			whole.Pages = append(whole.Pages, vfs.Page{No: no, Data: all[no]})
		}
	}
	s.apply(whole)
	s.stage, s.cursor, s.staged = nil, nil, 0
	return nil
}

// DropStaged empties the stage.
func (s *Store) DropStaged() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stage, s.cursor, s.staged = nil, nil, 0
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
