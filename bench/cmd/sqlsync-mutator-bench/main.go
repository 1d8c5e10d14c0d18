// Command sqlsync-mutator-bench measures what a mutator module costs the
// coordinator, for each module it is given (name=path.wasm), as package
// wasmhost runs it there: compiling it, starting an instance for a document
// and running its first mutation, and the todo app's add per mutation
// (hosttest.BenchmarkInsert: JSON args and one INSERT, the guest's
// statements kept prepared, on an in-memory connection in a transaction)
// against plain SQLite running the same INSERT, prepared once, on the same
// schema. Rounds alternate the variants, so that the ratios hold on a
// noisy machine. It prints its figures as JSON on stdout; the browser half
// and the report are bench/mutators/bench.mjs's (make bench-mutators).
//
//	sqlsync-mutator-bench -rounds 7 -n 5000 as=bin/mutators/todo.wasm go=bin/mutators/todo-go.wasm
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/interrupt"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
)

// addSQL is the todo app's add without a position (it goes last), as both
// todo modules run it.
const addSQL = `INSERT INTO items(id, title, position)
		VALUES (?, ?, (SELECT coalesce(max(position), 0) + 1 FROM items))`

// Results is what the command prints.
type Results struct {
	GoVersion string `json:"go_version"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	CPUs      int    `json:"cpus"`
	// Rounds and N: each round runs every variant N times.
	Rounds int `json:"rounds"`
	N      int `json:"n"`
	// InterruptVersion and MemoryPages name the build a browser fetches:
	// /v1/mutators/<hash>-p<MemoryPages>-v<InterruptVersion>.wasm.
	InterruptVersion int    `json:"interrupt_version"`
	MemoryPages      uint32 `json:"memory_pages"`
	// PlainNs is plain SQLite's time per insert, one value per round.
	PlainNs []float64 `json:"plain_ns"`
	Modules []Module  `json:"modules"`
	Seconds float64   `json:"seconds"`
}

// Module is one module's figures.
type Module struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Hash  string `json:"hash"`
	Bytes int    `json:"bytes"`
	// CompileMs is wasmhost.Compile on a process that has not compiled it
	// yet (no disk cache): rewrite, compile, check, first instance.
	CompileMs float64 `json:"compile_ms"`
	// StartMs is a document's first mutation: a new Mutator starts an
	// instance (the guest's runtime and init) and runs the todo app's add,
	// one value per repetition.
	StartMs []float64 `json:"start_ms"`
	// AddNs is the todo app's add through the module, per mutation, one
	// value per round.
	AddNs []float64 `json:"add_ns"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sqlsync-mutator-bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("sqlsync-mutator-bench", flag.ContinueOnError)
	rounds := fs.Int("rounds", 7, "rounds; each runs every variant")
	n := fs.Int("n", 5000, "mutations per variant and round")
	starts := fs.Int("starts", 20, "first mutations of a new instance to time per module")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: sqlsync-mutator-bench [flags] name=module.wasm ...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || *rounds < 1 || *n < 1 || *starts < 1 {
		fs.Usage()
		return errors.New("want at least one module, and positive -rounds, -n and -starts")
	}
	// testing.Benchmark reads -test.benchtime: run each variant n times.
	testing.Init()
	if err := flag.Set("test.benchtime", strconv.Itoa(*n)+"x"); err != nil {
		return err
	}
	slog.SetDefault(slog.New(slog.DiscardHandler))
	began := time.Now()
	ctx := context.Background()
	res := Results{
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(),
		Rounds: *rounds, N: *n, InterruptVersion: interrupt.Version,
		MemoryPages: mutatorhost.Limits{}.WithDefaults().MemoryPages,
	}
	var mods []*wasmhost.Module
	for _, arg := range fs.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			return fmt.Errorf("%q: want name=module.wasm", arg)
		}
		wasm, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		t := time.Now()
		mod, err := wasmhost.Compile(ctx, wasm, wasmhost.Limits{})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer mod.Close(ctx)
		res.Modules = append(res.Modules, Module{Name: name, Path: path, Hash: mod.Hash(), Bytes: len(wasm), CompileMs: ms(time.Since(t))})
		mods = append(mods, mod)
	}
	for i, mod := range mods {
		st, err := startTimes(ctx, mod, *starts)
		if err != nil {
			return fmt.Errorf("%s: %w", res.Modules[i].Name, err)
		}
		res.Modules[i].StartMs = st
	}
	schema := mods[0]
	for range *rounds {
		ns, err := bench(func(b *testing.B) { plainInsert(b, schema) })
		if err != nil {
			return fmt.Errorf("plain SQLite: %w", err)
		}
		res.PlainNs = append(res.PlainNs, ns)
		for i, mod := range mods {
			ns, err := bench(func(b *testing.B) { hosttest.BenchmarkInsert(b, module{mod}) })
			if err != nil {
				return fmt.Errorf("%s: %w", res.Modules[i].Name, err)
			}
			res.Modules[i].AddNs = append(res.Modules[i].AddNs, ns)
		}
	}
	res.Seconds = time.Since(began).Seconds()
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// bench runs f as a benchmark and returns its time per operation in ns.
func bench(f func(b *testing.B)) (float64, error) {
	r := testing.Benchmark(f)
	if r.N == 0 {
		return 0, errors.New("the benchmark failed")
	}
	return float64(r.T.Nanoseconds()) / float64(r.N), nil
}

// startTimes times a document's first mutation reps times: a new Mutator
// of mod (which starts an instance: the guest's runtime and init) running
// the todo app's add on a connection whose schema is up to date. The first
// Mutator takes the instance Compile started and is not timed.
func startTimes(ctx context.Context, mod *wasmhost.Module, reps int) ([]float64, error) {
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.Exec(`BEGIN`); err != nil {
		return nil, err
	}
	first := mod.Mutator(nil)
	err = first.Migrate(ctx, conn)
	first.Close()
	if err != nil {
		return nil, err
	}
	var out []float64
	for i := range reps {
		t := time.Now()
		mut := mod.Mutator(nil)
		err := mut.Mutate(ctx, conn, "add", []byte(`{"id":"start`+strconv.Itoa(i)+`","title":"buy milk"}`))
		mut.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, ms(time.Since(t)))
	}
	return out, nil
}

// plainInsert runs the todo app's add as plain SQLite: the same INSERT,
// prepared once, with the same values, on the schema mod's migrations make.
func plainInsert(b *testing.B, mod *wasmhost.Module) {
	conn := hosttest.OpenConn(b)
	mut := mod.Mutator(nil)
	err := mut.Migrate(context.Background(), conn)
	mut.Close()
	if err != nil {
		b.Fatal(err)
	}
	stmt, _, err := conn.Prepare(addSQL)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	i := 0
	for b.Loop() {
		i++
		stmt.BindText(1, "item"+strconv.Itoa(i))
		stmt.BindText(2, "buy milk")
		if err := stmt.Exec(); err != nil {
			b.Fatal(err)
		}
	}
}

// module is a wasmhost.Module as hosttest sees it.
type module struct{ m *wasmhost.Module }

func (m module) Mutator(log *slog.Logger) hosttest.Mutator { return m.m.Mutator(log) }
