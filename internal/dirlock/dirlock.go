// Package dirlock keeps a state directory to one process at a time: an
// exclusive, non-blocking advisory lock (flock) on a lock file inside it,
// held for as long as the directory is open and released when its holder
// closes it or dies.
//
// flock locks belong to an open file description, so a second open of the
// same directory fails even within the one process that holds it.
//
// Only file systems backed by the operating system's files are locked: those
// that map their paths to OS paths (hackpadfs's os FS, with ToOSPath), on
// systems with flock. Others are private to one process (memory) or keep
// writers apart themselves (OPFS sync access handles are exclusive); on them
// Acquire returns a lock that holds nothing.
package dirlock

import (
	"errors"
	"fmt"
	"os"

	"github.com/hack-pad/hackpadfs"
)

// ErrInUse reports a state directory another process (or another open in
// this one) holds.
var ErrInUse = errors.New("in use by another process")

// Lock is a held lock. The zero Lock, and nil, hold nothing.
type Lock struct {
	f *os.File
}

// osPather is a file system whose paths are OS paths under some root.
type osPather interface {
	ToOSPath(fsPath string) (string, error)
}

// Acquire locks the file name of fsys, creating it if missing, for the
// state directory what (a description used in the error: "state directory
// D"). It does not wait: if the lock is held, the error wraps ErrInUse and
// reads "<what> <path> is in use by another process".
func Acquire(fsys hackpadfs.FS, name, what string) (*Lock, error) {
	op, ok := fsys.(osPather)
	if !ok || !Supported {
		return &Lock{}, nil
	}
	p, err := op.ToOSPath(name)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%s is %w (lock file %s)", what, ErrInUse, p)
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return &Lock{f: f}, nil
}

// OSPath returns the OS path of name in fsys, or name itself when fsys is
// not backed by OS files: for error messages.
func OSPath(fsys hackpadfs.FS, name string) string {
	if op, ok := fsys.(osPather); ok {
		if p, err := op.ToOSPath(name); err == nil {
			return p
		}
	}
	return name
}

// Release releases the lock. It is safe to call more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}
