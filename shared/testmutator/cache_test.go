package testmutator

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// migrated opens a connection in a transaction with the todo schema.
func migrated(t *testing.T) *sqlite3.Conn {
	t.Helper()
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(`BEGIN`); err != nil {
		t.Fatal(err)
	}
	if err := (Mutator{}).Migrate(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

// On a connection opted in, the mutations give the same outcomes and
// errors as on one that is not, the statements are kept (one per text),
// and after ForgetStatements the connection closes.
func TestKeptStatements(t *testing.T) {
	ctx := context.Background()
	var m Mutator
	kept, plain := migrated(t), migrated(t)
	defer plain.Close()
	m.CacheStatements(kept)
	pos := 2.5
	steps := []struct {
		name string
		args Args
	}{
		{"add", Args{ID: "a", Title: "one"}},
		{"add", Args{ID: "b", Title: "two", Position: &pos}},
		{"add", Args{ID: "a", Title: "again"}}, // UNIQUE
		{"rename", Args{ID: "a", Title: "uno"}},
		{"rename", Args{ID: "zz", Title: "none"}}, // no such item
		{"toggle", Args{ID: "b"}},
		{"move", Args{ID: "a", Position: &pos}},
		{"delete", Args{ID: "b"}},
		{"retitle", Args{Title: "list"}},
		{"bulk", Args{Prefix: "x", N: 3}},
		{"purge", Args{}},
		{"add", Args{ID: "c", Title: "three"}},
	}
	for round := range 2 {
		for i, st := range steps {
			if round == 1 && i == 0 {
				// A schema change between uses: the kept statements
				// are prepared again.
				for _, c := range []*sqlite3.Conn{kept, plain} {
					if err := c.Exec(`DELETE FROM items; DELETE FROM list; ALTER TABLE items ADD COLUMN extra DEFAULT 'x'`); err != nil {
						t.Fatal(err)
					}
				}
			}
			errKept := m.Mutate(ctx, kept, st.name, st.args.Encode())
			errPlain := m.Mutate(ctx, plain, st.name, st.args.Encode())
			if fmt.Sprint(errKept) != fmt.Sprint(errPlain) {
				t.Fatalf("round %d, %s %+v: kept %v, plain %v", round, st.name, st.args, errKept, errPlain)
			}
		}
	}
	for _, q := range []string{`SELECT * FROM items ORDER BY id`, `SELECT * FROM list`} {
		a, err := sqlrows.Query(kept, q)
		if err != nil {
			t.Fatal(err)
		}
		b, err := sqlrows.Query(plain, q)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("%s: kept %v, plain %v", q, a, b)
		}
	}
	n := 0
	for range kept.Stmts() {
		n++
	}
	if n != 9 { // the mutator's nine texts
		t.Errorf("%d statements kept, want 9", n)
	}
	for range plain.Stmts() {
		t.Fatal("a statement is left on the connection not opted in")
	}
	if err := kept.Close(); !errors.Is(err, sqlite3.BUSY) {
		t.Fatalf("close with statements kept: %v, want BUSY", err)
	}
	if err := m.ForgetStatements(kept); err != nil {
		t.Fatal(err)
	}
	if err := kept.Close(); err != nil {
		t.Fatalf("close after ForgetStatements: %v", err)
	}
	if err := m.ForgetStatements(kept); err != nil {
		t.Fatalf("ForgetStatements again: %v", err)
	}
}

// A coordinator opts its writer in, and closes cleanly.
func TestCoordinatorKeepsStatements(t *testing.T) {
	ctx := context.Background()
	c, err := engine.OpenCoordinator(ctx, memstore.New(), Mutator{}, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var batch []engine.Mutation
	for i := range 10 {
		batch = append(batch, engine.Mutation{ClientID: "c", Seq: uint64(i + 1), Name: "add", Args: Args{ID: fmt.Sprint(i), Title: "t"}.Encode()})
	}
	res, err := c.Apply(ctx, batch)
	if err != nil || len(res.Applied) != 10 || len(res.Rejected) != 0 {
		t.Fatalf("Apply: %+v, %v", res, err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close the coordinator: %v", err)
	}
}
