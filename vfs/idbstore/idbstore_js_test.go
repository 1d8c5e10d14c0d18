//go:build js

package idbstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

// TestBrowser runs the store contract over the real IndexedDB (in Chromium:
// see js/test/gowasm).
func TestBrowser(t *testing.T) {
	if !Supported() {
		t.Skip("no IndexedDB here")
	}
	ctx := context.Background()
	n := 0
	var name string
	reopen := func(t *testing.T) vfs.Store {
		s, err := Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	open := func(t *testing.T) vfs.Store {
		n++
		name = fmt.Sprintf("gotest-%d-%d", time.Now().UnixNano(), n)
		return reopen(t)
	}
	storetest.Run(t, open, reopen)
}
