package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ncruces/go-sqlite3"

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

// breaker is the todo mutator plus a mutation that ends the engine's
// transaction behind its back, as an interrupted write does.
type breaker struct{ testmutator.Mutator }

func (b breaker) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if name == "break" {
		conn.Exec(`ROLLBACK`)
		return errors.New("interrupted")
	}
	return b.Mutator.Mutate(ctx, conn, name, args)
}

func TestMutationThatBreaksTheTransaction(t *testing.T) {
	ctx := context.Background()
	c, err := engine.OpenCoordinator(ctx, memstore.New(), breaker{}, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	add := func(seq uint64, id string) engine.Mutation {
		return engine.Mutation{ClientID: "a", Seq: seq, Name: "add", Args: testmutator.Args{ID: id, Title: id}.Encode()}
	}
	res, err := c.Apply(ctx, []engine.Mutation{add(1, "x"), {ClientID: "a", Seq: 2, Name: "break"}, add(3, "y")})
	if err != nil {
		t.Fatalf("one broken mutation failed the batch: %v", err)
	}
	if len(res.Applied) != 3 || len(res.Rejected) != 1 || res.Rejected[0].Mutation.Seq != 2 {
		t.Fatalf("applied %d, rejected %+v; want 3 applied, seq 2 rejected", len(res.Applied), res.Rejected)
	}
	if rows, _ := c.Query(`SELECT count(*) FROM items`); rows.Values[0][0] != int64(2) {
		t.Fatalf("items %v, want 2", rows.Values)
	}
}

// hog is the todo mutator plus a mutation that makes SQLite run out of memory.
type hog struct{ testmutator.Mutator }

func (h hog) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if name == "hog" {
		return conn.Exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c)
			INSERT INTO items(id, title) SELECT i, randomblob(100000) FROM c LIMIT 100000`)
	}
	return h.Mutator.Mutate(ctx, conn, name, args)
}

func TestOutOfMemoryFailsOneMutation(t *testing.T) {
	ctx := context.Background()
	c, err := engine.OpenCoordinator(ctx, memstore.New(), hog{}, engine.CoordinatorOptions{MaxHeapBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Apply(ctx, []engine.Mutation{
		{ClientID: "a", Seq: 1, Name: "add", Args: testmutator.Args{ID: "x", Title: "x"}.Encode()},
		{ClientID: "a", Seq: 2, Name: "hog"},
		{ClientID: "a", Seq: 3, Name: "add", Args: testmutator.Args{ID: "y", Title: "y"}.Encode()},
	})
	if err != nil {
		t.Fatalf("an out-of-memory mutation failed the batch: %v", err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Mutation.Seq != 2 {
		t.Fatalf("rejected %+v, want seq 2 only", res.Rejected)
	}
	if rows, _ := c.Query(`SELECT count(*) FROM items`); rows.Values[0][0] != int64(2) {
		t.Fatalf("items %v, want 2", rows.Values)
	}
}

// LastSeqs reads the last seqs of several clients at once, as LastSeq
// reads each; a client with none is absent.
func TestLastSeqs(t *testing.T) {
	ctx := context.Background()
	c, err := engine.OpenCoordinator(ctx, memstore.New(), testmutator.Mutator{}, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Apply(ctx, []engine.Mutation{
		{ClientID: "a", Seq: 1, Name: "add", Args: testmutator.Args{ID: "x", Title: "t"}.Encode()},
		{ClientID: "b", Seq: 1, Name: "add", Args: testmutator.Args{ID: "y", Title: "t"}.Encode()},
		{ClientID: "a", Seq: 2, Name: "toggle", Args: testmutator.Args{ID: "x"}.Encode()},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := c.LastSeqs([]string{"a", "b", "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"] != 2 || got["b"] != 1 {
		t.Fatalf("LastSeqs = %v, want a:2 b:1", got)
	}
	for _, id := range []string{"a", "b"} {
		if seq, _ := c.LastSeq(id); seq != got[id] {
			t.Errorf("LastSeq(%s) = %d, LastSeqs says %d", id, seq, got[id])
		}
	}
}
