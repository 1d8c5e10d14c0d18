package opfs

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sync"

	"github.com/hack-pad/hackpadfs"
)

// fakeBackend is OPFS in memory, strict about what the browser refuses: a
// second access handle on a file, and moving or removing a file with an
// open handle.
type fakeBackend struct {
	mu      sync.Mutex
	dirs    map[string]bool
	files   map[string]*fakeFile
	flushes int
}

type fakeFile struct {
	data []byte
	open bool
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{dirs: map[string]bool{}, files: map[string]*fakeFile{}}
}

func (b *fakeBackend) parentOK(name string) error {
	if dir := path.Dir(name); dir != "." && !b.dirs[dir] {
		return fmt.Errorf("parent of %s: %w", name, hackpadfs.ErrNotExist)
	}
	return nil
}

func (b *fakeBackend) Stat(name string) (bool, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dirs[name] {
		return true, 0, nil
	}
	if f := b.files[name]; f != nil {
		return false, int64(len(f.data)), nil
	}
	return false, 0, hackpadfs.ErrNotExist
}

func (b *fakeBackend) Mkdir(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dirs[name] || b.files[name] != nil {
		return hackpadfs.ErrExist
	}
	if err := b.parentOK(name); err != nil {
		return err
	}
	b.dirs[name] = true
	return nil
}

func (b *fakeBackend) CreateFile(name string, exclusive bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dirs[name] {
		return hackpadfs.ErrIsDir
	}
	if b.files[name] != nil {
		if exclusive {
			return hackpadfs.ErrExist
		}
		return nil
	}
	if err := b.parentOK(name); err != nil {
		return err
	}
	b.files[name] = &fakeFile{}
	return nil
}

func (b *fakeBackend) Open(name string) (Handle, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.files[name]
	if f == nil {
		return nil, hackpadfs.ErrNotExist
	}
	if f.open {
		return nil, ErrLocked
	}
	f.open = true
	return &fakeHandle{b: b, f: f}, nil
}

func (b *fakeBackend) Move(oldName, newName string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.files[oldName]
	if f == nil {
		return hackpadfs.ErrNotExist
	}
	if err := b.parentOK(newName); err != nil {
		return err
	}
	if f.open {
		return ErrLocked
	}
	if g := b.files[newName]; g != nil && g.open {
		return ErrLocked
	}
	delete(b.files, oldName)
	b.files[newName] = f
	return nil
}

func (b *fakeBackend) Remove(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dirs[name] {
		for p := range b.files {
			if path.Dir(p) == name {
				return hackpadfs.ErrNotEmpty
			}
		}
		for p := range b.dirs {
			if path.Dir(p) == name {
				return hackpadfs.ErrNotEmpty
			}
		}
		delete(b.dirs, name)
		return nil
	}
	f := b.files[name]
	if f == nil {
		return hackpadfs.ErrNotExist
	}
	if f.open {
		return ErrLocked
	}
	delete(b.files, name)
	return nil
}

type fakeHandle struct {
	b      *fakeBackend
	f      *fakeFile
	closed bool
}

func (h *fakeHandle) check() error {
	if h.closed {
		return errors.New("InvalidStateError: handle closed")
	}
	return nil
}

func (h *fakeHandle) ReadAt(p []byte, off int64) (int, error) {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if err := h.check(); err != nil {
		return 0, err
	}
	if off >= int64(len(h.f.data)) {
		return 0, nil
	}
	return copy(p, h.f.data[off:]), nil
}

func (h *fakeHandle) WriteAt(p []byte, off int64) (int, error) {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if err := h.check(); err != nil {
		return 0, err
	}
	if end := off + int64(len(p)); end > int64(len(h.f.data)) {
		h.f.data = append(h.f.data, make([]byte, end-int64(len(h.f.data)))...)
	}
	return copy(h.f.data[off:], p), nil
}

func (h *fakeHandle) Size() (int64, error) {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	return int64(len(h.f.data)), h.check()
}

func (h *fakeHandle) Truncate(size int64) error {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if err := h.check(); err != nil {
		return err
	}
	if size <= int64(len(h.f.data)) {
		h.f.data = h.f.data[:size]
	} else {
		h.f.data = append(h.f.data, make([]byte, size-int64(len(h.f.data)))...)
	}
	return nil
}

func (h *fakeHandle) Flush() error {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.b.flushes++
	return h.check()
}

func (h *fakeHandle) Close() error {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if err := h.check(); err != nil {
		return err
	}
	h.closed = true
	h.f.open = false
	return nil
}

var _ io.Closer = (*fakeHandle)(nil)
