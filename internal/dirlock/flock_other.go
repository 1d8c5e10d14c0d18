//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package dirlock

import (
	"errors"
	"os"
)

// Supported is false where there is no flock (js/wasm, windows, ...):
// Acquire locks nothing there.
const Supported = false

var errWouldBlock = errors.New("would block")

func flock(*os.File) error { return nil }
