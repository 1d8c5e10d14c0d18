package vfs

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/util/vfsutil"
	sqlitevfs "github.com/ncruces/go-sqlite3/vfs"
)

// VFSName is the name the sqlsync VFS is registered under with SQLite.
const VFSName = "sqlsync"

func init() {
	sqlitevfs.Register(VFSName, vfsImpl{})
}

// vfsImpl finds databases by name in the registry. Every other file SQLite
// asks for (journals, temporary files) lives in memory: commits are
// batch-atomic, so a rollback journal is never needed for durability.
type vfsImpl struct{}

func (vfsImpl) Open(name string, flags sqlitevfs.OpenFlag) (sqlitevfs.File, sqlitevfs.OpenFlag, error) {
	if flags&sqlitevfs.OPEN_MAIN_DB == 0 {
		return &vfsutil.SliceFile{}, flags | sqlitevfs.OPEN_MEMORY, nil
	}
	registryMu.Lock()
	d := registry[strings.TrimPrefix(name, "/")]
	registryMu.Unlock()
	if d == nil {
		return nil, flags, sqlite3.CANTOPEN
	}
	return &file{db: d, readOnly: flags&sqlitevfs.OPEN_READONLY != 0}, flags, nil
}

// Delete succeeds for every name: only in-memory journals are ever deleted,
// and SQLite fails its first CREATE TABLE if deleting a journal fails.
func (vfsImpl) Delete(name string, syncDir bool) error { return nil }

func (vfsImpl) Access(name string, flags sqlitevfs.AccessFlag) (bool, error) {
	return false, nil
}

func (vfsImpl) FullPathname(name string) (string, error) { return name, nil }

// file is one connection's handle on a Database.
type file struct {
	db         *Database
	lock       sqlitevfs.LockLevel
	readOnly   bool
	ownCommits uint32 // commits this handle made; see Database.changeCounter
}

var (
	_ sqlitevfs.FileBatchAtomicWrite = (*file)(nil)
	_ sqlitevfs.FileLockState        = (*file)(nil)
)

func (f *file) Close() error {
	return f.Unlock(sqlitevfs.LOCK_NONE)
}

func (f *file) ReadAt(b []byte, off int64) (int, error) {
	d := f.db
	d.mu.Lock()
	defer d.mu.Unlock()
	size := int64(d.count()) * PageSize
	if off >= size {
		return 0, io.EOF
	}
	no := uint32(off/PageSize) + 1
	in := off % PageSize
	if in+int64(len(b)) > PageSize {
		return 0, fmt.Errorf("read %d bytes at %d: %w", len(b), off, errUnaligned)
	}
	var page [PageSize]byte
	if err := d.readPage(no, page[:]); err != nil {
		return 0, err
	}
	n := copy(b, page[in:])
	if no == 1 {
		patchChangeCounter(b[:n], off, d.changeCounter(f))
	}
	return n, nil
}

var errUnaligned = errors.New("sqlsync/vfs: I/O not within one 4096-byte page")

func (f *file) WriteAt(b []byte, off int64) (int, error) {
	if f.readOnly {
		return 0, sqlite3.READONLY
	}
	if off%PageSize != 0 || len(b) != PageSize {
		return 0, fmt.Errorf("write %d bytes at %d: %w", len(b), off, errUnaligned)
	}
	d := f.db
	d.mu.Lock()
	defer d.mu.Unlock()
	implicit := d.batch == nil
	o := d.writeLayer()
	no := uint32(off/PageSize) + 1
	o.pages[no] = append([]byte(nil), b...)
	o.count = max(o.count, no)
	if implicit {
		return len(b), f.endWrite()
	}
	return len(b), nil
}

func (f *file) Truncate(size int64) error {
	if f.readOnly {
		return sqlite3.READONLY
	}
	if size%PageSize != 0 {
		return fmt.Errorf("truncate to %d: %w", size, errUnaligned)
	}
	d := f.db
	d.mu.Lock()
	defer d.mu.Unlock()
	if uint32(size/PageSize) == d.count() {
		return nil
	}
	implicit := d.batch == nil
	d.writeLayer().truncate(uint32(size / PageSize))
	if implicit {
		return f.endWrite()
	}
	return nil
}

// endWrite finishes a write made outside an atomic batch.
// +checklocks:f.db.mu
func (f *file) endWrite() error {
	d := f.db
	if d.mode == ClientMode {
		d.gen++
		f.ownCommits++
		return nil
	}
	return f.commit()
}

// +checklocks:f.db.mu
func (f *file) commit() error {
	before := f.db.gen
	if err := f.db.commitBatch(); err != nil {
		return err
	}
	if f.db.gen != before {
		f.ownCommits++
	}
	return nil
}

func (f *file) BeginAtomicWrite() error {
	d := f.db
	d.mu.Lock()
	defer d.mu.Unlock()
	d.batch = newOverlay(d.count())
	return nil
}

func (f *file) CommitAtomicWrite() error {
	d := f.db
	d.mu.Lock()
	defer d.mu.Unlock()
	return f.commit()
}

func (f *file) RollbackAtomicWrite() error {
	d := f.db
	d.mu.Lock()
	defer d.mu.Unlock()
	d.batch = nil
	return nil
}

func (f *file) Sync(flags sqlitevfs.SyncFlag) error { return nil }

func (f *file) Size() (int64, error) {
	d := f.db
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(d.count()) * PageSize, nil
}

func (f *file) SectorSize() int { return PageSize }

func (f *file) DeviceCharacteristics() sqlitevfs.DeviceCharacteristic {
	return sqlitevfs.IOCAP_ATOMIC |
		sqlitevfs.IOCAP_BATCH_ATOMIC |
		sqlitevfs.IOCAP_SAFE_APPEND |
		sqlitevfs.IOCAP_SEQUENTIAL |
		sqlitevfs.IOCAP_POWERSAFE_OVERWRITE
}

func (f *file) LockState() sqlitevfs.LockLevel { return f.lock }

// lockState is SQLite's file locking among the connections of one Database,
// in memory (there is no other process to share the file with).
type lockState struct {
	mu       sync.Mutex
	waiter   *sync.Cond
	shared   int
	reserved bool
	pending  bool
}

var errBusy = errors.New("sqlsync/vfs: a connection is in a transaction")

// idle reports an error if any connection holds a lock.
func (l *lockState) idle() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shared > 0 || l.reserved || l.pending {
		return errBusy
	}
	return nil
}

func (f *file) Lock(lock sqlitevfs.LockLevel) error {
	if f.lock >= lock {
		return nil
	}
	if f.readOnly && lock >= sqlitevfs.LOCK_RESERVED {
		return sqlite3.IOERR_LOCK
	}
	l := &f.db.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	switch lock {
	case sqlitevfs.LOCK_SHARED:
		if l.pending {
			return sqlite3.BUSY
		}
		l.shared++
	case sqlitevfs.LOCK_RESERVED:
		if l.reserved {
			return sqlite3.BUSY
		}
		l.reserved = true
	case sqlitevfs.LOCK_EXCLUSIVE:
		if f.lock == sqlitevfs.LOCK_RESERVED {
			f.lock = sqlitevfs.LOCK_PENDING
			l.pending = true
		}
		if l.shared > 1 {
			// Wait briefly for readers to finish; SQLite's busy handler
			// retries after that.
			before := time.Now()
			if l.waiter == nil {
				l.waiter = sync.NewCond(&l.mu)
			}
			defer time.AfterFunc(time.Millisecond, l.waiter.Broadcast).Stop()
			for l.shared > 1 {
				if time.Since(before) > time.Millisecond {
					return sqlite3.BUSY
				}
				l.waiter.Wait()
			}
		}
	}
	f.lock = lock
	return nil
}

func (f *file) Unlock(lock sqlitevfs.LockLevel) error {
	if f.lock <= lock {
		return nil
	}
	l := &f.db.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if f.lock >= sqlitevfs.LOCK_RESERVED {
		l.reserved = false
	}
	if f.lock >= sqlitevfs.LOCK_PENDING {
		l.pending = false
	}
	if lock < sqlitevfs.LOCK_SHARED {
		if l.shared--; l.pending && l.shared <= 1 && l.waiter != nil {
			l.waiter.Broadcast()
		}
	}
	f.lock = lock
	return nil
}

func (f *file) CheckReservedLock() (bool, error) {
	if f.lock >= sqlitevfs.LOCK_RESERVED {
		return true, nil
	}
	l := &f.db.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserved, nil
}
