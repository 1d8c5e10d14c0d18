package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/vfs/fsync"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// Checkpoint folds the log into data and lsns and starts a fresh log. While
// a stage is pending (see Staging) it does nothing and returns nil: the
// stage lives in the log, so the log stays whole until CommitStaged,
// DropStaged, Apply or ApplyDeferred empties the stage.
func (s *Store) Checkpoint() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return fmt.Errorf("filestore: checkpoint: %w", err)
	}
	if s.stage != nil {
		return nil
	}
	s.ckptErr = s.checkpoint()
	return s.ckptErr
}

// checkpoint does the work of Checkpoint; the caller holds wmu and no stage
// is pending. Readers run meanwhile: they read data only for pages it
// leaves alone, and the log through the old handle until the swap. The
// fresh log is of format version 1, which older code reads too.
func (s *Store) checkpoint() error {
	if err := s.fold(formatVersion); err != nil {
		return fmt.Errorf("filestore: checkpoint at LSN %d: %w", s.state.LSN(), err)
	}
	return nil
}

// fold folds the log into data and lsns and starts a fresh log of format
// version; the caller holds wmu and no stage is pending. It holds one page
// in memory at a time, and the LSN of every page.
func (s *Store) fold(version uint32) error {
	if s.stage != nil {
		// The fresh log would lose the stage.
		return errors.New("a stage is pending")
	}
	// 0. The data file is about to take pages of the log's newest commits:
	// those must be durable in the log first, or a crash before the swap
	// would pair new pages with an older LSN.
	if err := s.syncDeferred(); err != nil {
		return err
	}
	// 1. data: drop the pages above the low water mark, copy every page
	// whose newest version is in the log, size to the page count, sync.
	info, err := s.data.Stat()
	if err != nil {
		return err
	}
	if low := int64(s.state.LowWater()) * vfs.PageSize; info.Size() > low {
		if err := hackpadfs.TruncateFile(s.data, low); err != nil {
			return fmt.Errorf("truncate %s: %w", dataName, err)
		}
	}
	if err := s.runHook("truncate"); err != nil {
		return err
	}
	count := s.state.PageCount()
	buf := make([]byte, vfs.PageSize)
	for no := uint32(1); no <= count; no++ {
		off := s.loc[no]
		if off <= 0 {
			continue
		}
		if err := readAt(s.log, buf, off); err != nil {
			return fmt.Errorf("read page %d from %s: %w", no, logName, err)
		}
		if err := writeAt(s.data, buf, int64(no-1)*vfs.PageSize); err != nil {
			return fmt.Errorf("write page %d to %s: %w", no, dataName, err)
		}
		if err := s.runHook("page"); err != nil {
			return err
		}
	}
	if err := hackpadfs.TruncateFile(s.data, int64(count)*vfs.PageSize); err != nil {
		return fmt.Errorf("size %s: %w", dataName, err)
	}
	if err := fsync.File(s.data); err != nil {
		return fmt.Errorf("sync %s: %w", dataName, err)
	}
	if err := s.runHook("data"); err != nil {
		return err
	}

	// 2. lsns, in place. It is cut to size only after the swap: until then
	// the old log may need entries up to its own base page count.
	snap := s.state.Snapshot()
	raw := make([]byte, len(snap)*lsnSize)
	for i, lsn := range snap {
		binary.LittleEndian.PutUint64(raw[i*lsnSize:], lsn)
	}
	if err := writeAt(s.lsns, raw, 0); err != nil {
		return fmt.Errorf("write %s: %w", lsnsName, err)
	}
	if err := fsync.File(s.lsns); err != nil {
		return fmt.Errorf("sync %s: %w", lsnsName, err)
	}
	if err := s.runHook("lsns"); err != nil {
		return err
	}

	// 3. The swap: from here on the base files are the state. Readers go
	// on reading the old log until the rename, but not after it: a handle
	// to a replaced file may fail (on OPFS it does), so they wait from the
	// rename to the swap.
	if err := s.writeTmpLog(version, s.state.LSN(), count); err != nil {
		return err
	}
	s.mu.Lock()
	old, err := s.swapLog(version)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	err = old.Close()
	if terr := hackpadfs.TruncateFile(s.lsns, int64(count)*lsnSize); terr != nil {
		err = errors.Join(err, fmt.Errorf("truncate %s: %w", lsnsName, terr))
	}
	return err
}

// swapLog makes tmp, a log of format version, the log and reads pages from
// data or from it from now on. The caller holds wmu and mu. It returns the
// old log's handle.
func (s *Store) swapLog(version uint32) (old hackpadfs.File, err error) {
	if err := s.renameTmpLog(); err != nil {
		return nil, err
	}
	log, err := hackpadfs.OpenFile(s.fsys, s.path(logName), hackpadfs.FlagReadWrite, 0)
	if err != nil {
		// The directory is consistent, but appends would go to the old log.
		s.broken = err
		return nil, fmt.Errorf("reopen %s: %w", logName, err)
	}
	old = s.log
	s.log, s.logSize, s.version = log, headerSize, version
	for no := 1; no < len(s.loc); no++ {
		s.loc[no] = locData
	}
	s.state.ResetLowWater()
	return old, nil
}
