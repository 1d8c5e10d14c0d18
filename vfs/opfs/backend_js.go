//go:build js

package opfs

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/vfs/jsinterop"
)

// Supported reports whether this JavaScript context has OPFS with
// synchronous access handles (a dedicated worker of a current browser).
func Supported() bool {
	storage := js.Global().Get("navigator").Get("storage")
	if storage.IsUndefined() || storage.Get("getDirectory").IsUndefined() {
		return false
	}
	fh := js.Global().Get("FileSystemFileHandle")
	return !fh.IsUndefined() && !fh.Get("prototype").Get("createSyncAccessHandle").IsUndefined()
}

// ErrUnsupported reports a context without OPFS synchronous access handles.
var ErrUnsupported = errors.New("opfs: synchronous access handles are not available here (they need a dedicated worker)")

// Options tune New.
type Options struct {
	// LockWait is how long opening a file retries while another handle
	// holds it, as happens for a moment while a closing tab's worker
	// releases its handles; default 5 s.
	LockWait time.Duration
}

// New returns an FS rooted at directory dir (created if missing) of the
// origin's private file system.
func New(ctx context.Context, dir string, opts Options) (*FS, error) {
	if !Supported() {
		return nil, ErrUnsupported
	}
	if opts.LockWait == 0 {
		opts.LockWait = 5 * time.Second
	}
	root, err := jsinterop.Await(ctx, js.Global().Get("navigator").Get("storage").Call("getDirectory"))
	if err != nil {
		return nil, fmt.Errorf("opfs: open root: %w", mapErr(err))
	}
	b := &jsBackend{root: root, opts: opts, dirs: map[string]js.Value{}, files: map[string]js.Value{}}
	if dir != "" && dir != "." {
		for _, part := range strings.Split(dir, "/") {
			root, err = jsinterop.Await(ctx, root.Call("getDirectoryHandle", part, map[string]any{"create": true}))
			if err != nil {
				return nil, fmt.Errorf("opfs: open %s: %w", dir, mapErr(err))
			}
		}
		b.root = root
	}
	return NewFS(b), nil
}

// jsBackend is OPFS through the File System API. Directory and file handles
// are cached by path; a moved FileSystemFileHandle follows its file.
type jsBackend struct {
	root js.Value
	opts Options

	mu    sync.Mutex
	dirs  map[string]js.Value
	files map[string]js.Value
}

var ctx = context.Background()

// mapErr turns a DOMException into the matching hackpadfs error.
func mapErr(err error) error {
	var jsErr js.Error
	if !errors.As(err, &jsErr) {
		return err
	}
	name := jsErr.Value.Get("name").String()
	var base error
	switch name {
	case "NotFoundError":
		base = hackpadfs.ErrNotExist
	case "TypeMismatchError":
		base = hackpadfs.ErrNotDir
	case "InvalidModificationError":
		base = hackpadfs.ErrNotEmpty
	case "NoModificationAllowedError":
		base = ErrLocked
	case "NotAllowedError", "SecurityError":
		base = hackpadfs.ErrPermission
	default:
		return fmt.Errorf("%s: %s", name, jsErr.Value.Get("message").String())
	}
	return fmt.Errorf("%w (%s: %s)", base, name, jsErr.Value.Get("message").String())
}

// dir returns the handle of directory name ("." is the root).
func (b *jsBackend) dir(name string) (js.Value, error) {
	if name == "." || name == "" {
		return b.root, nil
	}
	b.mu.Lock()
	d, ok := b.dirs[name]
	b.mu.Unlock()
	if ok {
		return d, nil
	}
	parent, err := b.dir(path.Dir(name))
	if err != nil {
		return js.Value{}, err
	}
	d, err = jsinterop.Await(ctx, parent.Call("getDirectoryHandle", path.Base(name)))
	if err != nil {
		return js.Value{}, mapErr(err)
	}
	b.mu.Lock()
	b.dirs[name] = d
	b.mu.Unlock()
	return d, nil
}

// file returns the handle of file name.
func (b *jsBackend) file(name string, create bool) (js.Value, error) {
	b.mu.Lock()
	f, ok := b.files[name]
	b.mu.Unlock()
	if ok {
		return f, nil
	}
	parent, err := b.dir(path.Dir(name))
	if err != nil {
		return js.Value{}, err
	}
	f, err = jsinterop.Await(ctx, parent.Call("getFileHandle", path.Base(name), map[string]any{"create": create}))
	if err != nil {
		err = mapErr(err)
		if errors.Is(err, hackpadfs.ErrNotDir) {
			err = fmt.Errorf("%w: %s is a directory", hackpadfs.ErrIsDir, name)
		}
		return js.Value{}, err
	}
	b.mu.Lock()
	b.files[name] = f
	b.mu.Unlock()
	return f, nil
}

func (b *jsBackend) Stat(name string) (bool, int64, error) {
	if _, err := b.dir(name); err == nil {
		return true, 0, nil
	} else if !errors.Is(err, hackpadfs.ErrNotDir) {
		return false, 0, err
	}
	f, err := b.file(name, false)
	if err != nil {
		return false, 0, err
	}
	blob, err := jsinterop.Await(ctx, f.Call("getFile"))
	if err != nil {
		return false, 0, mapErr(err)
	}
	return false, int64(blob.Get("size").Float()), nil
}

func (b *jsBackend) Mkdir(name string) error {
	if _, _, err := b.Stat(name); err == nil {
		return hackpadfs.ErrExist
	} else if !errors.Is(err, hackpadfs.ErrNotExist) {
		return err
	}
	parent, err := b.dir(path.Dir(name))
	if err != nil {
		return err
	}
	if _, err := jsinterop.Await(ctx, parent.Call("getDirectoryHandle", path.Base(name), map[string]any{"create": true})); err != nil {
		return mapErr(err)
	}
	return nil
}

func (b *jsBackend) CreateFile(name string, exclusive bool) error {
	if exclusive {
		if _, _, err := b.Stat(name); err == nil {
			return hackpadfs.ErrExist
		}
	}
	_, err := b.file(name, true)
	return err
}

func (b *jsBackend) Open(name string) (Handle, error) {
	f, err := b.file(name, false)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(b.opts.LockWait)
	wait := time.Millisecond
	for {
		h, err := jsinterop.Await(ctx, f.Call("createSyncAccessHandle"))
		if err == nil {
			return &jsHandle{h: h, at: js.Global().Get("Object").New()}, nil
		}
		err = mapErr(err)
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}

func (b *jsBackend) Move(oldName, newName string) error {
	f, err := b.file(oldName, false)
	if err != nil {
		return err
	}
	dst, err := b.dir(path.Dir(newName))
	if err != nil {
		return err
	}
	if _, err := jsinterop.Await(ctx, f.Call("move", dst, path.Base(newName))); err != nil {
		return mapErr(err)
	}
	b.mu.Lock()
	delete(b.files, oldName)
	b.files[newName] = f
	b.mu.Unlock()
	return nil
}

func (b *jsBackend) Remove(name string) error {
	parent, err := b.dir(path.Dir(name))
	if err != nil {
		return err
	}
	if _, err := jsinterop.Await(ctx, parent.Call("removeEntry", path.Base(name))); err != nil {
		return mapErr(err)
	}
	b.mu.Lock()
	delete(b.files, name)
	for p := range b.dirs {
		if p == name || strings.HasPrefix(p, name+"/") {
			delete(b.dirs, p)
		}
	}
	b.mu.Unlock()
	return nil
}

// jsHandle is a FileSystemSyncAccessHandle. Its methods are synchronous in
// every browser that ships them in workers today.
type jsHandle struct {
	h       js.Value
	at      js.Value // the reused {at: offset} options object
	scratch js.Value // a reused Uint8Array
	size    int
}

// buf returns a Uint8Array view of n bytes of the scratch buffer.
func (h *jsHandle) buf(n int) js.Value {
	if n > h.size {
		h.size = max(n, 64<<10)
		h.scratch = js.Global().Get("Uint8Array").New(h.size)
	}
	if n == h.size {
		return h.scratch
	}
	return h.scratch.Call("subarray", 0, n)
}

func (h *jsHandle) ReadAt(p []byte, off int64) (n int, err error) {
	if len(p) == 0 {
		return 0, nil
	}
	err = jsinterop.Catch(func() {
		buf := h.buf(len(p))
		h.at.Set("at", off)
		n = h.h.Call("read", buf, h.at).Int()
		js.CopyBytesToGo(p[:n], buf)
	})
	return n, mapErr(err)
}

func (h *jsHandle) WriteAt(p []byte, off int64) (n int, err error) {
	if len(p) == 0 {
		return 0, nil
	}
	err = jsinterop.Catch(func() {
		buf := h.buf(len(p))
		js.CopyBytesToJS(buf, p)
		h.at.Set("at", off)
		n = h.h.Call("write", buf, h.at).Int()
	})
	return n, mapErr(err)
}

func (h *jsHandle) Size() (size int64, err error) {
	err = jsinterop.Catch(func() { size = int64(h.h.Call("getSize").Float()) })
	return size, mapErr(err)
}

func (h *jsHandle) Truncate(size int64) error {
	return mapErr(jsinterop.Catch(func() { h.h.Call("truncate", size) }))
}

func (h *jsHandle) Flush() error {
	return mapErr(jsinterop.Catch(func() { h.h.Call("flush") }))
}

func (h *jsHandle) Close() error {
	return mapErr(jsinterop.Catch(func() { h.h.Call("close") }))
}
