package jsmutator_test

import (
	"context"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// sandboxFacts is what the WASI sandbox gives the first mutation of the
// sandbox test mutator (testdata/sandbox) on a fresh instance: the same on
// every host, since wazero's defaults and the browser's shim both follow
// package mutatorhost. The native test checks wazero against it, the
// browser's test the browser's host.
var sandboxFacts = map[string]string{
	"wall":     "2000-01-01T00:00:00Z", // the stopped wall clock
	"elapsed":  "1ms",                  // one monotonic reading since init, 1 ms each
	"mathrand": "8362fbc048991ed5",     // seeded by the runtime from random_get
	"args":     "0",
	"env":      "0",
}

// checkSandbox runs the sandbox mutator's record mutation on a new
// coordinator document and compares what it recorded with sandboxFacts.
func checkSandbox(t *testing.T, mut engine.Mutator) {
	t.Helper()
	ctx := context.Background()
	c, err := engine.OpenCoordinator(ctx, memstore.New(), mut, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Apply(ctx, []engine.Mutation{{ClientID: "c", Seq: 1, Name: "record"}})
	if err != nil || len(res.Rejected) > 0 {
		t.Fatalf("record: %v %v", err, res.Rejected)
	}
	rows, err := c.Query(`SELECT k, v FROM facts ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows.Values {
		got[r[0].(string)] = r[1].(string)
	}
	for k, want := range sandboxFacts {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
}
