package client

import (
	"path/filepath"
	"strings"
)

// toFSPath turns an OS directory into a hackpadfs path (slash-separated,
// relative to the root).
func toFSPath(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return strings.TrimPrefix(filepath.ToSlash(abs), "/")
}
