//go:build js

package idblog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/pendinglog/logtest"
)

// TestBrowser runs the pending log contract over the real IndexedDB (in
// Chromium: see js/test/gowasm).
func TestBrowser(t *testing.T) {
	n := 0
	logtest.Run(t, func(t *testing.T) logtest.Opener {
		n++
		name := fmt.Sprintf("gotest-log-%d-%d", time.Now().UnixNano(), n)
		return func(t *testing.T) logtest.Log {
			l, err := Open(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
	})
}
