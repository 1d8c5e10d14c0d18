package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/enginetest"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

func TestMain(m *testing.M) {
	wasmtest.Prebuild(".")
	wasmtest.PrebuildAS("mutator.ts")
	os.Exit(m.Run())
}

// modules are the todo mutator's two sources: this package (the Go SDK)
// and mutator.ts (the AssemblyScript SDK, the module the demo runs). Each
// test runs on both.
var modules = []struct {
	name    string
	compile func(t *testing.T) *wasmhost.Module
}{
	{"go", func(t *testing.T) *wasmhost.Module { return wasmtest.Compile(t, ".", wasmhost.Limits{}) }},
	{"as", func(t *testing.T) *wasmhost.Module { return wasmtest.CompileAS(t, "mutator.ts", wasmhost.Limits{}) }},
}

// The seeded simulation of package enginetest, with this mutator compiled
// to WebAssembly on the coordinator and every client: each seed runs on
// both modules (Go and AssemblyScript), and the two must end with
// byte-identical dumps.
//
// SQLSYNC_SIM_SEEDS=N runs N seeds (default 20, 3 with -short);
// SQLSYNC_SIM_SEED=S runs seed S alone.
func TestSimulation(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 3
	}
	// A malformed value fails the test rather than running no seed.
	first, seeds, err := enginetest.Seeds(seeds)
	if err != nil {
		t.Fatal(err)
	}
	mods := make([]*wasmhost.Module, len(modules))
	for i, m := range modules {
		mods[i] = m.compile(t)
	}
	for seed := first; seed < first+uint64(seeds); seed++ {
		start := time.Now()
		dumps := make([]string, len(mods))
		for i, mod := range mods {
			mut := mod.Mutator(nil)
			dump, err := enginetest.RunDump(seed, 5, 200, mut)
			mut.Close()
			if err != nil {
				t.Fatalf("%s module, seed=%d: %v\nreproduce: SQLSYNC_SIM_SEED=%d go test ./demo-todo/mutator -run TestSimulation", modules[i].name, seed, err, seed)
			}
			dumps[i] = dump
		}
		for i := 1; i < len(dumps); i++ {
			if dumps[i] != dumps[0] {
				t.Fatalf("seed=%d: the %s and %s modules' dumps differ\n%s:\n%s\n%s:\n%s\nreproduce: SQLSYNC_SIM_SEED=%d go test ./demo-todo/mutator -run TestSimulation",
					seed, modules[0].name, modules[i].name, modules[0].name, dumps[0], modules[i].name, dumps[i], seed)
			}
		}
		t.Logf("seed=%d: %v, dumps of %d bytes identical", seed, time.Since(start).Round(time.Millisecond), len(dumps[0]))
		if testing.Short() && time.Since(start) > 20*time.Second {
			break
		}
	}
}

// The WebAssembly mutators (Go and AssemblyScript) and the Go reference
// mutator, given the same mutations, leave the same database and reject
// the same mutations; the two modules with the same messages.
func TestSameAsGoMutator(t *testing.T) {
	for _, m := range modules {
		t.Run(m.name, func(t *testing.T) { testSameAsGoMutator(t, m.compile(t)) })
	}
}

func testSameAsGoMutator(t *testing.T, mod *wasmhost.Module) {
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SQLSYNC_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SQLSYNC_SEED=%q: want a seed, a number", s)
		}
	}
	t.Logf("seed=%d (SQLSYNC_SEED=%d reproduces)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 1))

	wasm := openCoordinator(t, mod.Mutator(nil))
	native := openCoordinator(t, testmutator.Mutator{})
	var ids []string
	pick := func() string {
		if len(ids) == 0 || r.IntN(10) == 0 {
			return "missing"
		}
		return ids[r.IntN(len(ids))]
	}
	for seq := uint64(1); seq <= 400; seq++ {
		var name string
		a := testmutator.Args{}
		switch n := r.IntN(110); {
		case n < 30:
			name, a.ID, a.Title = "add", fmt.Sprintf("i%d", r.IntN(200)), fmt.Sprintf("item %d", r.IntN(1000))
			ids = append(ids, a.ID)
		case n < 35:
			pos := float64(r.IntN(100)) / 4
			name, a.ID, a.Title, a.Position = "add", fmt.Sprintf("i%d", r.IntN(200)), "placed", &pos
			ids = append(ids, a.ID)
		case n < 40:
			pos := float64(r.IntN(100)) / 3
			name, a.ID, a.Position = "move", pick(), &pos
		case n < 42:
			name, a.ID = "move", pick() // no position
		case n < 45:
			name, a.Title = "retitle", fmt.Sprintf("list %d", r.IntN(100))
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
		case n < 93:
			name, a.Prefix, a.N = "bulk", "x", 10001
		case n < 96:
			name, a.Message = "fail", "refused on purpose"
		case n < 98:
			name = "nope"
		case n >= 100:
			name, a.ID = "delete", pick()
		}
		args := a.Encode()
		if name == "" {
			name, args = "add", []byte(`{"id": 5}`) // bad args
		}
		m := engine.Mutation{ClientID: "c", Seq: seq, Name: name, Args: args}
		gotW, err := wasm.Apply(ctx, []engine.Mutation{m})
		if err != nil {
			t.Fatalf("seed=%d: wasm: %v", seed, err)
		}
		gotN, err := native.Apply(ctx, []engine.Mutation{m})
		if err != nil {
			t.Fatalf("seed=%d: native: %v", seed, err)
		}
		if w, n := len(gotW.Rejected), len(gotN.Rejected); w != n {
			t.Fatalf("seed=%d: mutation %d %s %s: wasm rejected %d, Go rejected %d (%v / %v)", seed, seq, name, args, w, n, gotW.Rejected, gotN.Rejected)
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
		t.Fatalf("seed=%d: dumps differ\nwasm:\n%s\nGo:\n%s", seed, w.String(), n.String())
	}
	if want := fmt.Sprintf("PRAGMA user_version=%d;", len(testmutator.Migrations)); !strings.Contains(w.String(), want) {
		t.Fatalf("dump lacks %s:\n%s", want, w.String())
	}
}

// Error messages reach the engine as the mutator wrote them, the same
// from both modules.
func TestRejectionMessages(t *testing.T) {
	for _, m := range modules {
		t.Run(m.name, func(t *testing.T) { testRejectionMessages(t, m.compile(t)) })
	}
}

func testRejectionMessages(t *testing.T, mod *wasmhost.Module) {
	ctx := context.Background()
	c := openCoordinator(t, mod.Mutator(nil))
	args := func(a testmutator.Args) []byte { return a.Encode() }
	cases := []struct {
		name string
		args []byte
		want string
	}{
		{"fail", args(testmutator.Args{Message: "refused on purpose"}), "refused on purpose"},
		{"toggle", args(testmutator.Args{ID: "ghost"}), `no such item: "ghost"`},
		{"nope", []byte(`{}`), `unknown mutation "nope"`},
		{"add", []byte(`{`), "bad args"},
		{"bulk", args(testmutator.Args{N: -1}), "bulk: n -1 outside 0..10000"},
	}
	for i, tc := range cases {
		res, err := c.Apply(ctx, []engine.Mutation{{ClientID: "c", Seq: uint64(i + 1), Name: tc.name, Args: tc.args}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Err.Error(), tc.want) {
			t.Errorf("%s %s: rejected %v, want a message with %q", tc.name, tc.args, res.Rejected, tc.want)
		}
	}
}

func openCoordinator(t *testing.T, mut engine.Mutator) *engine.Coordinator {
	t.Helper()
	c, err := engine.OpenCoordinator(context.Background(), memstore.New(), mut, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
