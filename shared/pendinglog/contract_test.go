package pendinglog_test

import (
	"fmt"
	"testing"

	"github.com/hack-pad/hackpadfs/mem"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog/logtest"
)

func TestContract(t *testing.T) {
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	logtest.Run(t, func(t *testing.T) logtest.Opener {
		n++
		name := fmt.Sprintf("pending-%d", n)
		return func(t *testing.T) logtest.Log {
			l, err := pendinglog.Open(fsys, name)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
	})
}
