//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package dirlock

import (
	"os"
	"syscall"
)

// Supported reports whether Acquire locks anything on this system.
const Supported = true

var errWouldBlock = syscall.EWOULDBLOCK

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
