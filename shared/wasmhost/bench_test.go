package wasmhost_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
)

// BenchmarkMutation measures the host's overhead per mutation. Through
// WebAssembly: a mutation that does nothing (noop), one that only decodes
// JSON args (json), one that inserts a row given raw args (insert-raw), and
// the todo app's add: JSON args and an insert (insert). Directly in Go with
// ncruces/go-sqlite3, as the Go test mutator does: the same two inserts.
// Each runs on one connection in one transaction, as the engine runs them.
// The overhead is wasm/insert minus direct/insert.
//
//	go test ./shared/wasmhost -run '^$' -bench Mutation -benchtime 20000x -count 5
func BenchmarkMutation(b *testing.B) {
	ctx := context.Background()
	mod := wasmtest.Compile(b, full, wasmhost.Limits{})
	jsonArgs := func(i int) []byte {
		return []byte(`{"id":"item` + strconv.Itoa(i) + `","title":"buy milk"}`)
	}
	rawArgs := func(i int) []byte { return []byte("item" + strconv.Itoa(i)) }

	for _, bc := range []struct {
		name string
		args func(int) []byte
	}{
		{"noop", rawArgs},
		{"json", jsonArgs},
		{"insert-raw", rawArgs},
		{"insert", jsonArgs},
	} {
		mutation := bc.name
		if mutation == "insert" {
			mutation = "add"
		}
		b.Run("wasm/"+bc.name, func(b *testing.B) {
			conn, mut := benchConn(b, mod)
			i := 0
			for b.Loop() {
				i++
				if err := mut.Mutate(ctx, conn, mutation, bc.args(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}

	b.Run("wasm-wazero-checks/insert", func(b *testing.B) {
		defer wasmhost.UseInterruptFlag(false)()
		mod := wasmtest.Compile(b, full, wasmhost.Limits{})
		conn, mut := benchConn(b, mod)
		i := 0
		for b.Loop() {
			i++
			if err := mut.Mutate(ctx, conn, "add", jsonArgs(i)); err != nil {
				b.Fatal(err)
			}
		}
	})

	insert := func(b *testing.B, conn *sqlite3.Conn, id, title string) {
		stmt, _, err := conn.Prepare(`INSERT INTO items(id, title) VALUES (?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		stmt.BindText(1, id)
		stmt.BindText(2, title)
		err = stmt.Exec()
		stmt.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("direct/insert-raw", func(b *testing.B) {
		conn, _ := benchConn(b, mod)
		i := 0
		for b.Loop() {
			i++
			insert(b, conn, string(rawArgs(i)), "buy milk")
		}
	})
	b.Run("direct/insert", func(b *testing.B) {
		conn, _ := benchConn(b, mod)
		i := 0
		for b.Loop() {
			i++
			var a struct {
				ID    string `json:"id"`
				Title string `json:"title"`
			}
			if err := json.Unmarshal(jsonArgs(i), &a); err != nil {
				b.Fatal(err)
			}
			insert(b, conn, a.ID, a.Title)
		}
	})
}

// benchConn returns a connection inside a transaction, migrated by a new
// Mutator of mod.
func benchConn(b *testing.B, mod *wasmhost.Module) (*sqlite3.Conn, *wasmhost.Mutator) {
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if err := conn.Exec(`BEGIN`); err != nil {
		b.Fatal(err)
	}
	mut := mod.Mutator(nil)
	b.Cleanup(func() { mut.Close() })
	if err := mut.Migrate(context.Background(), conn); err != nil {
		b.Fatal(err)
	}
	return conn, mut
}

// BenchmarkStart measures a document's first call: starting an instance
// (the guest's runtime and init functions) and a no-op mutation.
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	mod := wasmtest.Compile(b, full, wasmhost.Limits{})
	conn, _ := benchConn(b, mod)
	for b.Loop() {
		mut := mod.Mutator(nil)
		if err := mut.Mutate(ctx, conn, "noop", nil); err != nil {
			b.Fatal(err)
		}
		mut.Close()
	}
}
