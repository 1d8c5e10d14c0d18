package hosttest

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
)

// benchJSON and benchRaw are the args of a benchmark's i-th mutation: the
// todo app's JSON, or raw bytes.
func benchJSON(i int) []byte {
	return []byte(`{"id":"item` + strconv.Itoa(i) + `","title":"buy milk"}`)
}

func benchRaw(i int) []byte { return []byte("item" + strconv.Itoa(i)) }

// benchMutations are what BenchmarkMutation runs through the guest.
var benchMutations = []struct {
	name, mutation string
	args           func(int) []byte
}{
	{"noop", "noop", benchRaw},
	{"json", "json", benchJSON},
	{"insert-raw", "insert-raw", benchRaw},
	{"insert", "add", benchJSON},
}

var warmOnce sync.Once

// BenchmarkMutation measures the host's overhead per mutation. Through
// WebAssembly: a mutation that does nothing (wasm/noop), one that only
// decodes JSON args (wasm/json), one that inserts a row given raw args
// (wasm/insert-raw), and the todo app's add: JSON args and an insert
// (wasm/insert). Directly in Go with ncruces/go-sqlite3, as the Go test
// mutator does: the same two inserts (direct/…). Each runs on one
// connection in one transaction, as the engine runs them. The overhead is
// wasm/insert minus direct/insert.
//
// With h.WarmUp, every path first runs that many times, once per process.
func BenchmarkMutation(b *testing.B, h Host) {
	mod := h.compile(b, Full, mutatorhost.Limits{})
	if h.WarmUp > 0 {
		warmOnce.Do(func() { warmUp(b, mod, h.WarmUp) })
	}
	for _, bc := range benchMutations {
		b.Run("wasm/"+bc.name, func(b *testing.B) { benchMutate(b, mod, bc.mutation, bc.args) })
	}
	b.Run("direct/insert-raw", func(b *testing.B) {
		conn, _ := benchConn(b, mod)
		i := 0
		for b.Loop() {
			i++
			insert(b, conn, string(benchRaw(i)), "buy milk")
		}
	})
	b.Run("direct/insert", func(b *testing.B) {
		conn, _ := benchConn(b, mod)
		i := 0
		for b.Loop() {
			i++
			insertJSON(b, conn, benchJSON(i))
		}
	})
}

// BenchmarkInsert measures the todo app's add through mod, BenchmarkMutation's
// wasm/insert, for a host to measure a variant of its own.
func BenchmarkInsert(b *testing.B, mod Module) { benchMutate(b, mod, "add", benchJSON) }

func benchMutate(b *testing.B, mod Module, mutation string, args func(int) []byte) {
	ctx := context.Background()
	conn, mut := benchConn(b, mod)
	i := 0
	for b.Loop() {
		i++
		if err := mut.Mutate(ctx, conn, mutation, args(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// warmUp runs every path of BenchmarkMutation rounds times.
func warmUp(b *testing.B, mod Module, rounds int) {
	ctx := context.Background()
	start := time.Now()
	conn, mut := benchConn(b, mod)
	for i := range rounds {
		for _, bc := range benchMutations {
			if err := mut.Mutate(ctx, conn, bc.mutation, bc.args(i)); err != nil {
				b.Fatal(err)
			}
		}
		insert(b, conn, "direct"+strconv.Itoa(i), "buy milk")
	}
	b.Logf("warmed up with %d rounds in %v", rounds, time.Since(start))
}

func insert(b *testing.B, conn *sqlite3.Conn, id, title string) {
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

func insertJSON(b *testing.B, conn *sqlite3.Conn, args []byte) {
	var a struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		b.Fatal(err)
	}
	insert(b, conn, a.ID, a.Title)
}

// benchConn returns a connection inside a transaction, migrated by a new
// Mutator of mod; both are closed when b ends. As on the coordinator, the
// Mutator keeps the guest's statements prepared on the connection (the
// Mutator's Close, which runs first, finalizes them).
func benchConn(b *testing.B, mod Module) (*sqlite3.Conn, Mutator) {
	conn := OpenConn(b)
	mut := mod.Mutator(nil)
	b.Cleanup(func() { mut.Close() })
	if sc, ok := mut.(engine.StatementCache); ok {
		sc.CacheStatements(conn)
	}
	if err := mut.Migrate(context.Background(), conn); err != nil {
		b.Fatal(err)
	}
	return conn, mut
}

// BenchmarkStart measures a document's first call: starting an instance
// (the guest's runtime and init functions) and a no-op mutation.
func BenchmarkStart(b *testing.B, h Host) {
	ctx := context.Background()
	mod := h.compile(b, Full, mutatorhost.Limits{})
	conn, _ := benchConn(b, mod)
	for b.Loop() {
		mut := mod.Mutator(nil)
		if err := mut.Mutate(ctx, conn, "noop", nil); err != nil {
			b.Fatal(err)
		}
		mut.Close()
	}
}
