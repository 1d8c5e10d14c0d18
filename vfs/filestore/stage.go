package filestore

import (
	"fmt"
	"slices"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// Staged returns the cursor given with the last pages staged and how many
// page copies are staged; ok is false when the stage is empty.
func (s *Store) Staged() (cursor []byte, pages int, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.stage == nil {
		return nil, 0, false
	}
	return slices.Clone(s.cursor), s.staged, true
}

// Stage adds pages to the stage, with cursor, durably: it appends one stage
// record to the log and fsyncs it, and keeps in memory only where each
// staged page's newest copy lies in the log. The first Stage on a log of
// format version 1 checkpoints first, to start a log of version 2 (see
// Staging).
func (s *Store) Stage(cursor []byte, pages []vfs.Page) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return fmt.Errorf("filestore: stage pages: %w", err)
	}
	if err := vfs.ValidateStage(cursor, pages); err != nil {
		return fmt.Errorf("filestore: stage pages: %w", err)
	}
	// Only the log's last record may be unsynced: a crash may then tear the
	// stage record, never a deferred commit before it.
	if err := s.syncDeferred(); err != nil {
		return fmt.Errorf("filestore: stage pages: %w", err)
	}
	if s.version < stageVersion {
		// No stage is pending: a log of version 1 holds none.
		if err := s.fold(stageVersion); err != nil {
			return fmt.Errorf("filestore: stage pages: start a log of format version %d: %w", stageVersion, err)
		}
	}
	rec := encodeStage(cursor, pages)
	off, err := s.appendRecord(rec, true)
	if err != nil {
		return fmt.Errorf("filestore: stage pages: %w", err)
	}
	nos := make([]uint32, len(pages))
	for i, p := range pages {
		nos[i] = p.No
	}
	s.mu.Lock()
	s.addStaged(slices.Clone(cursor), nos, off+stageFixed+int64(len(cursor)))
	s.logSize = off + int64(len(rec))
	s.mu.Unlock()
	return nil
}

// CommitStaged applies the staged pages overlaid with c's pages as one
// commit at c's LSN and page count. It appends one stage-commit record,
// which holds only c's pages, and fsyncs it; the staged pages stay where
// they lie in the log, so it neither reads nor rewrites them. It does not
// checkpoint: the next Apply or Checkpoint folds the log. With an empty
// stage it is Apply, after CheckStaged's check.
func (s *Store) CommitStaged(c vfs.Commit) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return fmt.Errorf("filestore: commit staged pages at LSN %d: %w", c.LSN, err)
	}
	if err := vfs.CheckStaged(s.state.LSN(), s.state.PageCount(), c, s.stage.pages()); err != nil {
		return fmt.Errorf("filestore: commit staged pages at LSN %d: %w", c.LSN, err)
	}
	if s.stage == nil {
		return s.applyLocked(c, true)
	}
	if err := s.syncDeferred(); err != nil {
		return fmt.Errorf("filestore: commit staged pages at LSN %d: %w", c.LSN, err)
	}
	rec := encodeCommit(stageCommitMagic, c)
	off, err := s.appendRecord(rec, true)
	if err != nil {
		return fmt.Errorf("filestore: commit staged pages at LSN %d: %w", c.LSN, err)
	}
	s.mu.Lock()
	s.applyStaged(c.LSN, c.PageCount, c.PageNumbers(), off)
	s.logSize = off + int64(len(rec))
	s.mu.Unlock()
	return nil
}

// DropStaged empties the stage, durably, with a drop record in the log; it
// does nothing if the stage is empty. Then, as after Apply, the log is
// folded if it has outgrown its threshold: that reclaims the space of the
// dropped pages.
func (s *Store) DropStaged() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return fmt.Errorf("filestore: drop staged pages: %w", vfs.ErrClosed)
	}
	if s.stage == nil {
		return nil
	}
	if err := s.writable(); err != nil {
		return fmt.Errorf("filestore: drop staged pages: %w", err)
	}
	if err := s.syncDeferred(); err != nil {
		return fmt.Errorf("filestore: drop staged pages: %w", err)
	}
	rec := encodeDrop(s.state.LSN())
	off, err := s.appendRecord(rec, true)
	if err != nil {
		return fmt.Errorf("filestore: drop staged pages: %w", err)
	}
	s.mu.Lock()
	s.clearStage()
	s.logSize = off + int64(len(rec))
	s.mu.Unlock()
	s.autoCheckpoint()
	return nil
}
