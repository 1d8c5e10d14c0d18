package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// vandalMutator is the todo mutator plus "vandalize", which writes text
// into every other client's last_seq: a buggy or hostile mutator.
type vandalMutator struct{ testmutator.Mutator }

func (m vandalMutator) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if name == "vandalize" {
		return conn.Exec(`UPDATE ` + engine.ClientsTable + ` SET last_seq = 'vandalized'`)
	}
	return m.Mutator.Mutate(ctx, conn, name, args)
}

// TestClientsTableGarbage: a clients table holding something other than an
// integer (a mutator wrote it, or a diff carried it) is an error for the
// coordinator and the replicas, never a crash.
func TestClientsTableGarbage(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	coord, err := engine.OpenCoordinator(ctx, store, vandalMutator{}, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	victim, err := engine.OpenClient(ctx, memstore.New(), pendinglog.NewMemory("victim"), vandalMutator{})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	seq, err := victim.Mutate(ctx, "add", testmutator.Args{ID: "a", Title: "A"}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []engine.Mutation{
		{ClientID: "victim", Seq: seq, Name: "add", Args: testmutator.Args{ID: "a", Title: "A"}.Encode()},
		{ClientID: "vandal", Seq: 1, Name: "vandalize"},
	} {
		if _, err := coord.Apply(ctx, []engine.Mutation{m}); err != nil {
			t.Fatal(err)
		}
	}

	// The replica reads its last seq from the diff's clients table.
	d, err := coord.Diff(victim.LSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := victim.Rebase(ctx, d); err == nil || !strings.Contains(err.Error(), "last seq") {
		t.Fatalf("rebase onto a vandalized clients table: got %v, want an error about the last seq", err)
	}

	// The coordinator reads the table again when it reopens.
	coord.Close()
	coord, err = engine.OpenCoordinator(ctx, store, vandalMutator{}, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	_, err = coord.Apply(ctx, []engine.Mutation{{ClientID: "victim", Seq: seq + 1, Name: "add", Args: testmutator.Args{ID: "b", Title: "B"}.Encode()}})
	if err == nil || !strings.Contains(err.Error(), "clients table") {
		t.Fatalf("apply over a vandalized clients table: got %v, want an error about the clients table", err)
	}
}
