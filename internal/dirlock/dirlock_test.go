package dirlock_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	osfs "github.com/hack-pad/hackpadfs/os"

	"github.com/sqlsync-go/sqlsync/internal/dirlock"
)

func osFS(t *testing.T, dir string) hackpadfs.FS {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := osfs.NewFS().Sub(strings.TrimPrefix(filepath.ToSlash(abs), "/"))
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func TestSecondAcquireFailsUntilRelease(t *testing.T) {
	if !dirlock.Supported {
		t.Skip("no flock on this system") // listed in docs/test-skips.md
	}
	fsys := osFS(t, t.TempDir())
	l, err := dirlock.Acquire(fsys, "lock", "state directory D")
	if err != nil {
		t.Fatal(err)
	}
	_, err = dirlock.Acquire(fsys, "lock", "state directory D")
	if !errors.Is(err, dirlock.ErrInUse) {
		t.Fatalf("second Acquire: %v, want ErrInUse", err)
	}
	if !strings.HasPrefix(err.Error(), "state directory D is in use by another process") {
		t.Fatalf("second Acquire's message %q", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	l, err = dirlock.Acquire(fsys, "lock", "state directory D")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l.Release()
}

func TestMemoryFSIsNotLocked(t *testing.T) {
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	a, err := dirlock.Acquire(fsys, "lock", "x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := dirlock.Acquire(fsys, "lock", "x")
	if err != nil {
		t.Fatalf("a memory FS is private to its process, yet: %v", err)
	}
	a.Release()
	b.Release()
}

// TestTwoProcesses: a lock held by one process keeps another out until the
// first exits.
func TestTwoProcesses(t *testing.T) {
	if dir := os.Getenv("DIRLOCK_HELPER_DIR"); dir != "" {
		// The child: try the lock and report.
		if _, err := dirlock.Acquire(osFS(t, dir), "lock", "state directory "+dir); err != nil {
			os.Stdout.WriteString("refused: " + err.Error())
		} else {
			os.Stdout.WriteString("acquired")
		}
		return
	}
	if !dirlock.Supported {
		t.Skip("no flock on this system") // listed in docs/test-skips.md
	}
	dir := t.TempDir()
	child := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcesses$")
		cmd.Env = append(os.Environ(), "DIRLOCK_HELPER_DIR="+dir)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return string(out)
	}
	l, err := dirlock.Acquire(osFS(t, dir), "lock", "state directory "+dir)
	if err != nil {
		t.Fatal(err)
	}
	if out := child(); !strings.Contains(out, "refused: state directory "+dir+" is in use by another process") {
		t.Fatalf("while held, the other process got %q", out)
	}
	l.Release()
	if out := child(); !strings.Contains(out, "acquired") {
		t.Fatalf("after release, the other process got %q", out)
	}
}
