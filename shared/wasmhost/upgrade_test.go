package wasmhost_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

const versioned = "./testdata/versioned"

// TestUpgrade deploys version 2 of a mutator over a document made by
// version 1, while a client holds mutations made with version 1.
func TestUpgrade(t *testing.T) {
	ctx := context.Background()
	v1 := wasmtest.Compile(t, versioned, hosttest.Limits, "-X=main.version=1")
	v2 := wasmtest.Compile(t, versioned, hosttest.Limits, "-X=main.version=2")
	if v1.Hash() == v2.Hash() {
		t.Fatal("both versions have the same hash")
	}
	store := memstore.New()
	openCoord := func(mut engine.Mutator) *engine.Coordinator {
		t.Helper()
		c, err := engine.OpenCoordinator(ctx, store, mut, engine.CoordinatorOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	schema := func(c *engine.Coordinator) string {
		t.Helper()
		ver, err := c.Query(`PRAGMA user_version`)
		if err != nil {
			t.Fatal(err)
		}
		steps, err := c.Query(`SELECT group_concat(n) FROM steps`)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("version %v, steps %v", ver.Values[0][0], steps.Values[0][0])
	}

	// Version 1 makes the document; one mutation lands.
	coord := openCoord(v1.Mutator(nil))
	if got, want := schema(coord), "version 1, steps 1"; got != want {
		t.Fatalf("v1: %s, want %s", got, want)
	}
	if _, err := coord.Apply(ctx, []engine.Mutation{{ClientID: "B", Seq: 1, Name: "add", Args: []byte(`{"id": "n0", "body": "zero"}`)}}); err != nil {
		t.Fatal(err)
	}

	// A client on version 1 works offline: its mutations stay pending.
	cstore, plog := memstore.New(), pendinglog.NewMemory("A")
	client, err := engine.OpenClient(ctx, cstore, plog, v1.Mutator(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ name, args string }{
		{"add", `{"id": "n1", "body": "one"}`},
		{"legacy", `{"id": "n1"}`},
		{"add", `{"id": "n2", "body": "two"}`},
	} {
		if _, err := client.Mutate(ctx, m.name, []byte(m.args)); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	coord.Close()

	// Version 2 is deployed: the document migrates once.
	coord = openCoord(v2.Mutator(nil))
	if got, want := schema(coord), "version 2, steps 1,2"; got != want {
		t.Fatalf("v2: %s, want %s", got, want)
	}
	coord.Close()
	coord = openCoord(v2.Mutator(nil))
	defer coord.Close()
	if got, want := schema(coord), "version 2, steps 1,2"; got != want {
		t.Fatalf("v2 reopened: %s, want %s", got, want)
	}

	// The client, still on version 1, takes version 2's schema: its
	// migration finds nothing to do and its pending mutations replay.
	diff, err := coord.Diff(client.LSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Rebase(ctx, diff); err != nil {
		t.Fatalf("v1 client rebasing on a v2 document: %v", err)
	}
	rows, err := client.Query(`SELECT id, body, tag FROM notes ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(rows.Values), "[[n0 zero ] [n1 one (legacy) ] [n2 two ]]"; got != want {
		t.Fatalf("v1 client after rebase: %s, want %s", got, want)
	}
	client.Close()

	// The client reloads with version 2 and pushes: every pending mutation
	// is either applied or rejected with its reason, none lost.
	client, err = engine.OpenClient(ctx, cstore, plog, v2.Mutator(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	pending := client.Pending()
	if len(pending) != 3 {
		t.Fatalf("%d pending mutations, want 3", len(pending))
	}
	res, err := coord.Apply(ctx, pending)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 3 || len(res.Gaps) != 0 {
		t.Fatalf("applied %d, gaps %v", len(res.Applied), res.Gaps)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Mutation.Name != "legacy" ||
		!strings.Contains(res.Rejected[0].Err.Error(), `unknown mutation "legacy"`) {
		t.Fatalf("rejected %v, want legacy as an unknown mutation", res.Rejected)
	}
	diff, err = coord.Diff(client.LSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Rebase(ctx, diff); err != nil {
		t.Fatal(err)
	}
	if n := client.PendingCount(); n != 0 {
		t.Fatalf("%d mutations still pending", n)
	}
	if _, err := client.Mutate(ctx, "tag", []byte(`{"id": "n2", "tag": "new"}`)); err != nil {
		t.Fatalf("v2 mutation: %v", err)
	}
	rows, err = client.Query(`SELECT id, body, tag FROM notes ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(rows.Values), "[[n0 zero ] [n1 one ] [n2 two new]]"; got != want {
		t.Fatalf("v2 client: %s, want %s", got, want)
	}
}
