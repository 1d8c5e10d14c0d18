package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/internal/dirlock"
)

// TestNewLocksDataDir: a second Server on a data directory in use fails in
// New with a clear error; once the first is closed, New works again.
func TestNewLocksDataDir(t *testing.T) {
	if !dirlock.Supported {
		t.Skip("no flock on this system") // listed in docs/test-skips.md
	}
	dir := t.TempDir()
	a, err := New(Config{DataDir: dir, Logger: testLogger(), Mutator: todoMutator})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{DataDir: dir, Logger: testLogger(), Mutator: todoMutator})
	if !errors.Is(err, dirlock.ErrInUse) || !strings.Contains(err.Error(), "data directory "+dir+" is in use by another process") {
		t.Fatalf("second New: %v, want data directory %s in use", err, dir)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{DataDir: dir, Logger: testLogger(), Mutator: todoMutator})
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	b.Close(context.Background())
}
