package bigdoc_test

import (
	"testing"

	"github.com/sqlsync-go/sqlsync/internal/bigdoc"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

func TestFill(t *testing.T) {
	store := memstore.New()
	rows, err := bigdoc.Fill(store, 20<<20)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(store.PageCount()) * vfs.PageSize
	if size < 20<<20 || size > 32<<20 {
		t.Fatalf("filled to %d bytes, asked for 20 MiB", size)
	}
	if rows < 16000 || store.LSN() < 3 {
		t.Fatalf("%d rows in %d commits", rows, store.LSN())
	}
}
