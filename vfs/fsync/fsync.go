// Package fsync makes writes through a hackpadfs file system durable: the
// one place that knows which file systems cannot sync (the memory FS, OPFS
// directories) and that for them there is nothing to flush.
package fsync

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/hack-pad/hackpadfs"
)

// File flushes f to stable storage. A file system whose files cannot be
// synced (such as the memory FS) has nothing to flush.
func File(f hackpadfs.File) error {
	err := hackpadfs.SyncFile(f)
	if err == nil {
		files.Add(1)
	}
	if err != nil && !errors.Is(err, hackpadfs.ErrNotImplemented) {
		return err
	}
	return nil
}

var files atomic.Int64

// Files returns how many times File has flushed a file to stable storage
// in this process: what a benchmark or a test counts fsyncs by.
func Files() int64 { return files.Load() }

// Dir makes a creation or a rename in dir durable, on file systems whose
// directories can be synced.
func Dir(fsys hackpadfs.FS, dir string) error {
	d, err := hackpadfs.OpenFile(fsys, dir, hackpadfs.FlagReadOnly, 0)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	err = hackpadfs.SyncFile(d)
	if errors.Is(err, hackpadfs.ErrNotImplemented) || errors.Is(err, hackpadfs.ErrInvalid) || errors.Is(err, errors.ErrUnsupported) {
		err = nil // the file system cannot sync directories
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
