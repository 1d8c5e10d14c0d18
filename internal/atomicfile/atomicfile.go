// Package atomicfile writes a file whole or not at all: through a
// temporary file in the same directory, renamed over it. It does not sync:
// it is for caches, which a crash may lose but must never leave torn.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes b to name, creating its directory with perm if needed, so
// that a reader sees the old content or the new, never a part.
func Write(name string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(name)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
