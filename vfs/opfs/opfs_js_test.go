//go:build js

package opfs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
)

// The browser tests run the suite over the real OPFS (in a dedicated
// worker of Chromium: see js/test/gowasm).

var runID = time.Now().UnixNano()

func browserFS(t *testing.T, opts Options) *FS {
	t.Helper()
	if !Supported() {
		t.Skip("no OPFS synchronous access handles here")
	}
	fsys, err := New(context.Background(), fmt.Sprintf("gotest-%d/%s", runID, t.Name()), opts)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func TestBrowser(t *testing.T) {
	runSuite(t, func(t *testing.T) *FS { return browserFS(t, Options{}) })
}

// TestBrowserExclusive checks what the FS assumes of OPFS: a second access
// handle on a file fails while the first is open.
func TestBrowserExclusive(t *testing.T) {
	a := browserFS(t, Options{LockWait: time.Millisecond})
	b, err := New(context.Background(), fmt.Sprintf("gotest-%d/%s", runID, t.Name()), Options{LockWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f, err := a.OpenFile("f", hackpadfs.FlagReadWrite|hackpadfs.FlagCreate, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.OpenFile("f", hackpadfs.FlagReadWrite, 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("second handle: %v, want ErrLocked", err)
	}
	f.Close()
	g, err := b.OpenFile("f", hackpadfs.FlagReadWrite, 0)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	g.Close()
}
