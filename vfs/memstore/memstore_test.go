package memstore_test

import (
	"testing"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) vfs.Store { return memstore.New() }, nil)
}
