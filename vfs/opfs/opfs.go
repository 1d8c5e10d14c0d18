// Package opfs is a [hackpadfs.FS] over the browser's Origin Private File
// System, through synchronous access handles, so that the crash-safe
// [github.com/sqlsync-go/sqlsync/vfs/filestore] and
// [github.com/sqlsync-go/sqlsync/shared/pendinglog] run in a Web Worker
// unchanged, with one flush per commit.
//
// It implements what those packages use and little more: OpenFile (create,
// exclusive, truncate, append), ReadAt, WriteAt, Read, Write, Seek, Truncate,
// Sync (the access handle's flush), Stat, Mkdir, MkdirAll, Rename and Remove.
//
// # Handles
//
// A synchronous access handle is exclusive: while one is open on a file, no
// other handle can be created on it, in this worker or any other, and the
// file can be neither moved nor removed. The FS therefore keeps one access
// handle per open file, shared by every [hackpadfs.File] open on it, and
// closes it when the last of them closes and around a Rename or Remove of
// the file.
//
// Rename follows POSIX as far as OPFS allows: files open on the old name
// follow the file to its new name; files open on a name that a Rename
// replaces, or that Remove deletes, fail every later operation but Close
// with [ErrReplaced] (OPFS cannot keep an unlinked file readable).
//
// The browser binding needs GOOS=js and a dedicated worker (see [New]); the
// rest of the package runs anywhere over any [Backend], which is how it is
// tested.
package opfs

import (
	"errors"
	"fmt"
	"io"
	gofs "io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/hack-pad/hackpadfs"
)

// Backend is the browser's file system as the FS needs it. Paths are
// slash-separated, relative to the FS root, never "." (the root itself).
type Backend interface {
	// Stat reports whether name is a directory and, for a file without an
	// open Handle, its size. A missing entry is hackpadfs.ErrNotExist.
	Stat(name string) (isDir bool, size int64, err error)
	// Mkdir creates directory name; its parent must exist. An existing
	// entry is hackpadfs.ErrExist.
	Mkdir(name string) error
	// CreateFile creates an empty file name if missing; with exclusive, an
	// existing one is hackpadfs.ErrExist. The parent must exist.
	CreateFile(name string, exclusive bool) error
	// Open opens the exclusive access handle of file name.
	Open(name string) (Handle, error)
	// Move renames file oldName to newName, replacing any file there. No
	// handle is open on either.
	Move(oldName, newName string) error
	// Remove deletes file or empty directory name. No handle is open on it.
	Remove(name string) error
}

// Handle is an open synchronous access handle.
type Handle interface {
	// ReadAt reads into p at off; at the end of the file it reads fewer
	// bytes, with no error.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt writes p at off, growing the file as needed.
	WriteAt(p []byte, off int64) (int, error)
	// Size returns the file's size.
	Size() (int64, error)
	// Truncate sets the file's size.
	Truncate(size int64) error
	// Flush makes the writes so far durable.
	Flush() error
	// Close releases the handle, and with it the file.
	Close() error
}

// ErrLocked reports a file whose access handle another FS (another tab or
// worker) holds.
var ErrLocked = errors.New("opfs: file is locked by another access handle")

// ErrReplaced reports an operation on a file that a Rename replaced or that
// Remove deleted while it was open.
var ErrReplaced = errors.New("opfs: file was replaced or removed while open")

// FS is a hackpadfs.FS over a Backend. It is safe for concurrent use.
type FS struct {
	b Backend

	mu    sync.Mutex
	nodes map[string]*node // files open by at least one File, by path
}

var (
	_ hackpadfs.OpenFileFS = (*FS)(nil)
	_ hackpadfs.MkdirFS    = (*FS)(nil)
	_ hackpadfs.MkdirAllFS = (*FS)(nil)
	_ hackpadfs.RenameFS   = (*FS)(nil)
	_ hackpadfs.RemoveFS   = (*FS)(nil)
	_ hackpadfs.StatFS     = (*FS)(nil)
)

// NewFS returns an FS over b.
func NewFS(b Backend) *FS {
	return &FS{b: b, nodes: map[string]*node{}}
}

// node is a file open by one or more Files, sharing one access handle.
type node struct {
	path string
	h    Handle // nil until needed, and after a Rename
	refs int
	gone bool
}

// handle returns n's access handle, opening it if needed. The caller holds
// fs.mu.
func (fsys *FS) handle(n *node) (Handle, error) {
	if n.gone {
		return nil, ErrReplaced
	}
	if n.h == nil {
		h, err := fsys.b.Open(n.path)
		if err != nil {
			return nil, err
		}
		n.h = h
	}
	return n.h, nil
}

// release closes n's access handle, if open. The caller holds fs.mu.
func (fsys *FS) release(n *node) error {
	if n.h == nil {
		return nil
	}
	h := n.h
	n.h = nil
	return h.Close()
}

func clean(op, name string) (string, error) {
	if !gofs.ValidPath(name) {
		return "", &hackpadfs.PathError{Op: op, Path: name, Err: hackpadfs.ErrInvalid}
	}
	return name, nil
}

// Open opens name for reading.
func (fsys *FS) Open(name string) (hackpadfs.File, error) {
	return fsys.OpenFile(name, hackpadfs.FlagReadOnly, 0)
}

// OpenFile opens name with flag (hackpadfs.Flag*); perm is ignored.
func (fsys *FS) OpenFile(name string, flag int, perm hackpadfs.FileMode) (hackpadfs.File, error) {
	name, err := clean("open", name)
	if err != nil {
		return nil, err
	}
	if name == "." {
		return &dir{fsys: fsys, name: name}, nil
	}
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	n := fsys.nodes[name]
	if n == nil {
		isDir, _, err := fsys.b.Stat(name)
		switch {
		case err == nil && isDir:
			if flag&(hackpadfs.FlagWriteOnly|hackpadfs.FlagReadWrite) != 0 {
				return nil, &hackpadfs.PathError{Op: "open", Path: name, Err: hackpadfs.ErrIsDir}
			}
			return &dir{fsys: fsys, name: name}, nil
		case err == nil && flag&hackpadfs.FlagCreate != 0 && flag&hackpadfs.FlagExclusive != 0:
			return nil, &hackpadfs.PathError{Op: "open", Path: name, Err: hackpadfs.ErrExist}
		case errors.Is(err, hackpadfs.ErrNotExist) && flag&hackpadfs.FlagCreate != 0:
			if err := fsys.b.CreateFile(name, flag&hackpadfs.FlagExclusive != 0); err != nil {
				return nil, &hackpadfs.PathError{Op: "open", Path: name, Err: err}
			}
		case err != nil:
			return nil, &hackpadfs.PathError{Op: "open", Path: name, Err: err}
		}
		n = &node{path: name}
	} else if flag&hackpadfs.FlagCreate != 0 && flag&hackpadfs.FlagExclusive != 0 {
		return nil, &hackpadfs.PathError{Op: "open", Path: name, Err: hackpadfs.ErrExist}
	}
	h, err := fsys.handle(n)
	if err != nil {
		return nil, &hackpadfs.PathError{Op: "open", Path: name, Err: err}
	}
	if flag&hackpadfs.FlagTruncate != 0 && flag&(hackpadfs.FlagWriteOnly|hackpadfs.FlagReadWrite) != 0 {
		if err := h.Truncate(0); err != nil {
			if n.refs == 0 {
				fsys.release(n)
			}
			return nil, &hackpadfs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	n.refs++
	fsys.nodes[name] = n
	return &file{fsys: fsys, n: n, flag: flag}, nil
}

// Stat returns name's FileInfo.
func (fsys *FS) Stat(name string) (hackpadfs.FileInfo, error) {
	name, err := clean("stat", name)
	if err != nil {
		return nil, err
	}
	if name == "." {
		return info{name: ".", dir: true}, nil
	}
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if n := fsys.nodes[name]; n != nil {
		return fsys.statNode(n)
	}
	isDir, size, err := fsys.b.Stat(name)
	if err != nil {
		return nil, &hackpadfs.PathError{Op: "stat", Path: name, Err: err}
	}
	return info{name: path.Base(name), dir: isDir, size: size}, nil
}

// statNode returns the FileInfo of an open file. The caller holds fs.mu.
func (fsys *FS) statNode(n *node) (hackpadfs.FileInfo, error) {
	h, err := fsys.handle(n)
	if err != nil {
		return nil, &hackpadfs.PathError{Op: "stat", Path: n.path, Err: err}
	}
	size, err := h.Size()
	if err != nil {
		return nil, &hackpadfs.PathError{Op: "stat", Path: n.path, Err: err}
	}
	return info{name: path.Base(n.path), size: size}, nil
}

// Mkdir creates directory name.
func (fsys *FS) Mkdir(name string, perm hackpadfs.FileMode) error {
	name, err := clean("mkdir", name)
	if err != nil {
		return err
	}
	if name == "." {
		return &hackpadfs.PathError{Op: "mkdir", Path: name, Err: hackpadfs.ErrExist}
	}
	if err := fsys.b.Mkdir(name); err != nil {
		return &hackpadfs.PathError{Op: "mkdir", Path: name, Err: err}
	}
	return nil
}

// MkdirAll creates directory name and any missing parents.
func (fsys *FS) MkdirAll(name string, perm hackpadfs.FileMode) error {
	name, err := clean("mkdirall", name)
	if err != nil {
		return err
	}
	if name == "." {
		return nil
	}
	parts := strings.Split(name, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		isDir, _, err := fsys.b.Stat(p)
		switch {
		case err == nil && isDir:
			continue
		case err == nil:
			return &hackpadfs.PathError{Op: "mkdirall", Path: p, Err: hackpadfs.ErrNotDir}
		case !errors.Is(err, hackpadfs.ErrNotExist):
			return &hackpadfs.PathError{Op: "mkdirall", Path: p, Err: err}
		}
		if err := fsys.b.Mkdir(p); err != nil && !errors.Is(err, hackpadfs.ErrExist) {
			return &hackpadfs.PathError{Op: "mkdirall", Path: p, Err: err}
		}
	}
	return nil
}

// Rename moves file oldName to newName, replacing any file there. Files
// open on oldName follow it; files open on a replaced newName go stale.
func (fsys *FS) Rename(oldName, newName string) error {
	linkErr := func(err error) error {
		return &hackpadfs.LinkError{Op: "rename", Old: oldName, New: newName, Err: err}
	}
	if !gofs.ValidPath(oldName) || !gofs.ValidPath(newName) || oldName == "." || newName == "." {
		return linkErr(hackpadfs.ErrInvalid)
	}
	if oldName == newName {
		return nil
	}
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	isDir, _, err := fsys.b.Stat(oldName)
	if err != nil {
		return linkErr(err)
	}
	if isDir {
		return linkErr(fmt.Errorf("rename of directories: %w", hackpadfs.ErrNotImplemented))
	}
	src, dst := fsys.nodes[oldName], fsys.nodes[newName]
	var errs []error
	if src != nil {
		errs = append(errs, fsys.release(src))
	}
	if dst != nil {
		errs = append(errs, fsys.release(dst))
	}
	if err := errors.Join(errs...); err != nil {
		return linkErr(fmt.Errorf("close access handles: %w", err))
	}
	if err := fsys.b.Move(oldName, newName); err != nil {
		return linkErr(err)
	}
	if dst != nil {
		dst.gone = true
		delete(fsys.nodes, newName)
	}
	if src != nil {
		src.path = newName
		delete(fsys.nodes, oldName)
		fsys.nodes[newName] = src
	}
	return nil
}

// Remove deletes file or empty directory name. Files open on it go stale.
func (fsys *FS) Remove(name string) error {
	name, err := clean("remove", name)
	if err != nil {
		return err
	}
	if name == "." {
		return &hackpadfs.PathError{Op: "remove", Path: name, Err: hackpadfs.ErrInvalid}
	}
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if n := fsys.nodes[name]; n != nil {
		if err := fsys.release(n); err != nil {
			return &hackpadfs.PathError{Op: "remove", Path: name, Err: err}
		}
		if err := fsys.b.Remove(name); err != nil {
			return &hackpadfs.PathError{Op: "remove", Path: name, Err: err}
		}
		n.gone = true
		delete(fsys.nodes, name)
		return nil
	}
	if err := fsys.b.Remove(name); err != nil {
		return &hackpadfs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// file is a File open on a node.
type file struct {
	fsys   *FS
	n      *node
	flag   int
	off    int64 // for Read, Write and Seek
	closed bool
}

var (
	_ hackpadfs.ReadWriterFile = (*file)(nil)
	_ hackpadfs.ReaderAtFile   = (*file)(nil)
	_ hackpadfs.WriterAtFile   = (*file)(nil)
	_ hackpadfs.SeekerFile     = (*file)(nil)
	_ hackpadfs.SyncerFile     = (*file)(nil)
	_ hackpadfs.TruncaterFile  = (*file)(nil)
)

// do runs f on the file's access handle under the FS lock.
func (f *file) do(op string, f2 func(Handle) error) error {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if f.closed {
		return &hackpadfs.PathError{Op: op, Path: f.n.path, Err: hackpadfs.ErrClosed}
	}
	h, err := f.fsys.handle(f.n)
	if err == nil {
		err = f2(h)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return &hackpadfs.PathError{Op: op, Path: f.n.path, Err: err}
	}
	return err
}

func (f *file) writable() bool {
	return f.flag&(hackpadfs.FlagWriteOnly|hackpadfs.FlagReadWrite) != 0
}

func (f *file) notWritable(op string) error {
	return &hackpadfs.PathError{Op: op, Path: f.n.path, Err: hackpadfs.ErrPermission}
}

// ReadAt reads len(p) bytes at off; fewer at the end of the file, with io.EOF.
func (f *file) ReadAt(p []byte, off int64) (n int, err error) {
	if off < 0 {
		return 0, &hackpadfs.PathError{Op: "readat", Path: f.n.path, Err: hackpadfs.ErrInvalid}
	}
	err = f.do("readat", func(h Handle) error {
		var rerr error
		n, rerr = h.ReadAt(p, off)
		if rerr == nil && n < len(p) {
			rerr = io.EOF
		}
		return rerr
	})
	return n, err
}

// WriteAt writes p at off, growing the file if needed.
func (f *file) WriteAt(p []byte, off int64) (n int, err error) {
	if !f.writable() {
		return 0, f.notWritable("writeat")
	}
	if off < 0 {
		return 0, &hackpadfs.PathError{Op: "writeat", Path: f.n.path, Err: hackpadfs.ErrInvalid}
	}
	err = f.do("writeat", func(h Handle) error {
		var werr error
		n, werr = h.WriteAt(p, off)
		if werr == nil && n < len(p) {
			werr = io.ErrShortWrite
		}
		return werr
	})
	return n, err
}

// Read reads from the file's offset.
func (f *file) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Write writes at the file's offset, or at its end when opened to append.
func (f *file) Write(p []byte) (int, error) {
	if f.flag&hackpadfs.FlagAppend != 0 {
		info, err := f.Stat()
		if err != nil {
			return 0, err
		}
		f.off = info.Size()
	}
	n, err := f.WriteAt(p, f.off)
	f.off += int64(n)
	return n, err
}

// Seek sets the offset of the next Read or Write.
func (f *file) Seek(offset int64, whence int) (int64, error) {
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.off
	case io.SeekEnd:
		info, err := f.Stat()
		if err != nil {
			return 0, err
		}
		base = info.Size()
	default:
		return 0, &hackpadfs.PathError{Op: "seek", Path: f.n.path, Err: hackpadfs.ErrInvalid}
	}
	if base+offset < 0 {
		return 0, &hackpadfs.PathError{Op: "seek", Path: f.n.path, Err: hackpadfs.ErrInvalid}
	}
	f.off = base + offset
	return f.off, nil
}

// Sync flushes the file's writes to storage.
func (f *file) Sync() error {
	return f.do("sync", func(h Handle) error { return h.Flush() })
}

// Truncate sets the file's size.
func (f *file) Truncate(size int64) error {
	if !f.writable() {
		return f.notWritable("truncate")
	}
	if size < 0 {
		return &hackpadfs.PathError{Op: "truncate", Path: f.n.path, Err: hackpadfs.ErrInvalid}
	}
	return f.do("truncate", func(h Handle) error { return h.Truncate(size) })
}

// Stat returns the file's FileInfo.
func (f *file) Stat() (hackpadfs.FileInfo, error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if f.closed {
		return nil, &hackpadfs.PathError{Op: "stat", Path: f.n.path, Err: hackpadfs.ErrClosed}
	}
	return f.fsys.statNode(f.n)
}

// Close closes the file, and the access handle with the last File on it.
func (f *file) Close() error {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if f.closed {
		return &hackpadfs.PathError{Op: "close", Path: f.n.path, Err: hackpadfs.ErrClosed}
	}
	f.closed = true
	f.n.refs--
	if f.n.refs > 0 {
		return nil
	}
	if !f.n.gone && f.fsys.nodes[f.n.path] == f.n {
		delete(f.fsys.nodes, f.n.path)
	}
	if err := f.fsys.release(f.n); err != nil {
		return &hackpadfs.PathError{Op: "close", Path: f.n.path, Err: err}
	}
	return nil
}

// dir is a directory opened for reading: enough to Stat it and to learn
// that it cannot be synced.
type dir struct {
	fsys *FS
	name string
}

func (d *dir) Stat() (hackpadfs.FileInfo, error) { return d.fsys.Stat(d.name) }

func (d *dir) Read([]byte) (int, error) {
	return 0, &hackpadfs.PathError{Op: "read", Path: d.name, Err: hackpadfs.ErrIsDir}
}

func (d *dir) Close() error { return nil }

// info is a FileInfo.
type info struct {
	name string
	dir  bool
	size int64
}

func (i info) Name() string { return i.name }
func (i info) Size() int64  { return i.size }
func (i info) Mode() hackpadfs.FileMode {
	if i.dir {
		return gofs.ModeDir | 0o755
	}
	return 0o644
}
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.dir }
func (i info) Sys() any           { return nil }
