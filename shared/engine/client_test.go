package engine_test

import (
	"context"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

func TestChangeTracksTables(t *testing.T) {
	ctx := context.Background()
	c, err := engine.OpenClient(ctx, memstore.New(), pendinglog.NewMemory("c"), testmutator.Mutator{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var changes []engine.Change
	c.OnChange(func(ch engine.Change) { changes = append(changes, ch) })
	if _, err := c.Mutate(ctx, "add", testmutator.Args{ID: "a", Title: "x"}.Encode()); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].All || !changes[0].Tables["items"] {
		t.Fatalf("an insert into items reported %+v", changes)
	}
	_, tables, err := c.QueryTables(`SELECT title FROM items WHERE id = ?`, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !tables["items"] || len(tables) != 1 {
		t.Fatalf("QueryTables read %v, want items only", tables)
	}
	if _, err := c.Query(`DELETE FROM items`); err == nil {
		t.Fatal("Query ran a write")
	}
	if n := c.PendingCount(); n != 1 {
		t.Fatalf("%d pending, want 1", n)
	}
}
