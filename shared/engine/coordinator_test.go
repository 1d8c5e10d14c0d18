package engine_test

import (
	"context"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

func TestMutatorHashRecordedOnce(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	open := func(hash string) *engine.Coordinator {
		c, err := engine.OpenCoordinator(ctx, store, testmutator.Mutator{}, engine.CoordinatorOptions{MutatorHash: hash})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open("v1")
	lsn := c.LSN()
	if h, _ := c.MutatorHash(); h != "v1" {
		t.Fatalf("recorded hash %q, want v1", h)
	}
	c.Close()
	c = open("v1")
	if c.LSN() != lsn {
		t.Fatalf("reopening with the same mutator committed: LSN %d, want %d", c.LSN(), lsn)
	}
	c.Close()
	c = open("v2")
	defer c.Close()
	if h, _ := c.MutatorHash(); h != "v2" || c.LSN() != lsn+1 {
		t.Fatalf("upgrade: hash %q at LSN %d, want v2 at %d", h, c.LSN(), lsn+1)
	}
}

func TestRefusedAndSizeLimit(t *testing.T) {
	ctx := context.Background()
	c, err := engine.OpenCoordinator(ctx, memstore.New(), testmutator.Mutator{}, engine.CoordinatorOptions{MaxPages: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Apply(ctx, []engine.Mutation{
		{ClientID: "a", Seq: 1, Name: "add", Args: testmutator.Args{ID: "x", Title: "t"}.Encode(), Refused: "read-only"},
		{ClientID: "a", Seq: 2, Name: "bulk", Args: testmutator.Args{Prefix: "p", N: 2000}.Encode()},
		{ClientID: "a", Seq: 3, Name: "add", Args: testmutator.Args{ID: "y", Title: "t"}.Encode()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 2 || len(res.Applied) != 3 {
		t.Fatalf("applied %d, rejected %d; want 3 and 2", len(res.Applied), len(res.Rejected))
	}
	rows, _ := c.Query(`SELECT id FROM items`)
	if len(rows.Values) != 1 || rows.Values[0][0] != "y" {
		t.Fatalf("items %v, want only y", rows.Values)
	}
	if seq, _ := c.LastSeq("a"); seq != 3 {
		t.Fatalf("last seq %d, want 3", seq)
	}
}
