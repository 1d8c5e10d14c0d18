//go:build js

package jsmutator_test

// These tests run in Chromium (make test-gowasm): the runner serves the
// mutators built from source at $SQLSYNC_MUTATORS (full.wasm, the
// contract suite's mutator; full-as.wasm, its AssemblyScript port,
// shared/wasmhost/testdata/full-as; sandbox.wasm, testdata/sandbox;
// todo.wasm, demo-todo/mutator) and installs the JavaScript half of the
// host. The contract every host meets is package hosttest's, which
// wasmhost runs too: the same modules, the same failures, the same
// messages (but for the engine's own wording of a trap).

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall/js"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/enginetest"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/jsinterop"
	"github.com/sqlsync-go/sqlsync/wasm/jsmutator"
)

var (
	fetchMu sync.Mutex
	fetched = map[string][]byte{}
)

// load returns the bytes of the test mutator name (full, full-as, todo, sandbox),
// or skips t when the runner serves none.
func load(tb testing.TB, name string) []byte {
	tb.Helper()
	base := os.Getenv("SQLSYNC_MUTATORS")
	if base == "" {
		tb.Skip("SQLSYNC_MUTATORS is not set: run with make test-gowasm")
	}
	fetchMu.Lock()
	defer fetchMu.Unlock()
	if b, ok := fetched[name]; ok {
		return b
	}
	ctx := context.Background()
	resp, err := jsinterop.Await(ctx, js.Global().Call("fetch", base+name+".wasm"))
	if err != nil {
		tb.Fatal(err)
	}
	if !resp.Get("ok").Bool() {
		tb.Fatalf("fetch %s: HTTP %d", name, resp.Get("status").Int())
	}
	ab, err := jsinterop.Await(ctx, resp.Call("arrayBuffer"))
	if err != nil {
		tb.Fatal(err)
	}
	u8 := js.Global().Get("Uint8Array").New(ab)
	b := make([]byte, u8.Length())
	js.CopyBytesToGo(b, u8)
	fetched[name] = b
	return b
}

func compile(tb testing.TB, name string, limits mutatorhost.Limits) *jsmutator.Module {
	tb.Helper()
	m, err := jsmutator.Compile(context.Background(), load(tb, name), limits)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// host is jsmutator for the contract suite.
var host = hosttest.Host{
	Compile: func(tb testing.TB, wasm []byte, limits mutatorhost.Limits) (hosttest.Module, error) {
		m, err := jsmutator.Compile(context.Background(), wasm, limits)
		if err != nil {
			return nil, err
		}
		return module{m}, nil
	},
	Load: load,
	Trap: "memory access out of bounds",
	// V8 first runs the host (the Go runtime and SQLite, some 18 MB of
	// WebAssembly) in its baseline tier and optimizes hot functions over
	// the next seconds: $SQLSYNC_WARMUP mutations of each kind (default
	// 30 000) warm both paths up before the benchmark measures.
	WarmUp: warmUp(),
}

func warmUp() int {
	if s := os.Getenv("SQLSYNC_WARMUP"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
	}
	return 30000
}

// module is a jsmutator.Module as the contract suite sees it.
type module struct{ m *jsmutator.Module }

func (m module) Mutator(log *slog.Logger) hosttest.Mutator { return m.m.Mutator(log) }

// TestHost runs the contract every mutator host meets.
func TestHost(t *testing.T) { hosttest.Run(t, host) }

// Both test mutators with Full's mutations, Go's and AssemblyScript's,
// are rewritten to call the tick (and bounded in memory).
func TestBounded(t *testing.T) {
	for _, name := range []string{hosttest.Full, hosttest.FullAS} {
		if !compile(t, name, hosttest.Limits).Bounded() {
			t.Errorf("%s: the module could not be rewritten to call the tick", name)
		}
	}
}

// The todo mutator in the browser and the Go reference mutator, given the
// same mutations, leave the same database and reject the same mutations.
func TestSameAsGoMutator(t *testing.T) {
	ctx := context.Background()
	mod := compile(t, "todo", mutatorhost.Limits{})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed=%d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	wasm := hosttest.OpenCoordinator(t, mod.Mutator(nil))
	native := hosttest.OpenCoordinator(t, testmutator.Mutator{})
	var ids []string
	pick := func() string {
		if len(ids) == 0 || r.IntN(10) == 0 {
			return "missing"
		}
		return ids[r.IntN(len(ids))]
	}
	for seq := uint64(1); seq <= 200; seq++ {
		var name string
		a := testmutator.Args{}
		switch n := r.IntN(100); {
		case n < 30:
			name, a.ID, a.Title = "add", fmt.Sprintf("i%d", r.IntN(100)), fmt.Sprintf("item %d", r.IntN(1000))
			ids = append(ids, a.ID)
		case n < 40:
			pos := float64(r.IntN(100)) / 3
			name, a.ID, a.Position = "move", pick(), &pos
		case n < 50:
			name, a.ID, a.Title = "rename", pick(), fmt.Sprintf("renamed %d", r.IntN(1000))
		case n < 65:
			name, a.ID = "toggle", pick()
		case n < 80:
			name, a.ID = "delete", pick()
		case n < 85:
			name = "purge"
		case n < 90:
			name, a.Prefix, a.N = "bulk", fmt.Sprintf("b%d-", r.IntN(5)), r.IntN(20)
		case n < 95:
			name, a.Message = "fail", "refused on purpose"
		default:
			name, a.Title = "retitle", fmt.Sprintf("list %d", r.IntN(100))
		}
		m := engine.Mutation{ClientID: "c", Seq: seq, Name: name, Args: a.Encode()}
		gotW, err := wasm.Apply(ctx, []engine.Mutation{m})
		if err != nil {
			t.Fatal(err)
		}
		gotN, err := native.Apply(ctx, []engine.Mutation{m})
		if err != nil {
			t.Fatal(err)
		}
		if len(gotW.Rejected) != len(gotN.Rejected) {
			t.Fatalf("mutation %d %s: browser rejected %v, Go %v", seq, name, gotW.Rejected, gotN.Rejected)
		}
	}
	var w, n strings.Builder
	if err := wasm.Dump(&w); err != nil {
		t.Fatal(err)
	}
	if err := native.Dump(&n); err != nil {
		t.Fatal(err)
	}
	if w.String() != n.String() {
		t.Fatalf("dumps differ\nbrowser:\n%s\nGo:\n%s", w.String(), n.String())
	}
}

// The engine's seeded simulation (clients going on and offline, rebasing,
// converging byte for byte), with every replica running the todo module
// on the browser's engine.
func TestSimulation(t *testing.T) {
	mod := compile(t, "todo", mutatorhost.Limits{})
	mut := mod.Mutator(nil)
	defer mut.Close()
	if err := enginetest.Run(1, 3, 60, mut); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkMutation measures the browser host's overhead per mutation, as
// wasmhost's benchmark of the same name does natively (see
// hosttest.BenchmarkMutation), after a warm-up (see host.WarmUp).
//
//	make bench-mutator-browser
func BenchmarkMutation(b *testing.B) { hosttest.BenchmarkMutation(b, host) }

// BenchmarkStart measures a document's first call: starting an instance
// (WebAssembly.instantiate, the guest's runtime and init functions) and a
// no-op mutation.
func BenchmarkStart(b *testing.B) { hosttest.BenchmarkStart(b, host) }

// BenchmarkCompile measures loading a module the worker has not compiled
// yet: rewriting it (package interrupt), WebAssembly.compile, checking its
// exports and starting its first instance.
func BenchmarkCompile(b *testing.B) {
	wasm := load(b, "todo")
	for i := 0; b.Loop(); i++ {
		// Another limit makes another cache entry: a fresh compilation.
		if _, err := jsmutator.Compile(context.Background(), wasm, mutatorhost.Limits{MaxLogBytes: 1000 + i}); err != nil {
			b.Fatal(err)
		}
	}
}
