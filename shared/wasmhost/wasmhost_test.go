package wasmhost_test

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
)

// The test mutators of the contract suite, built from source: Go
// packages, and AssemblyScript files built by the SDK's build command.
var (
	mutators = map[string]string{
		hosttest.Full:    "./testdata/full",
		hosttest.Sandbox: "../../wasm/jsmutator/testdata/sandbox",
	}
	asMutators = map[string]string{
		hosttest.FullAS: "./testdata/full-as/full.ts",
	}
)

func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.fuzz").Value.String() != "" || flag.Lookup("test.fuzzworker").Value.String() == "true" {
		os.Exit(m.Run()) // fuzzing the guard needs no module
	}
	for _, dir := range mutators {
		wasmtest.Prebuild(dir)
	}
	for _, entry := range asMutators {
		wasmtest.PrebuildAS(entry)
	}
	wasmtest.Prebuild(versioned, "-X=main.version=1")
	wasmtest.Prebuild(versioned, "-X=main.version=2")
	wasmtest.Prebuild("./testdata/badimport")
	os.Exit(m.Run())
}

// host is wasmhost for the contract suite. Every module it compiles must
// carry the interrupt flag, or must not, as interruptible says (see
// wasmhost.UseInterruptFlag).
func host(interruptible bool) hosttest.Host {
	return hosttest.Host{
		Compile: func(tb testing.TB, wasm []byte, limits mutatorhost.Limits) (hosttest.Module, error) {
			tb.Helper()
			mod, err := wasmhost.Compile(context.Background(), wasm, limits)
			if err != nil {
				return nil, err
			}
			tb.Cleanup(func() { mod.Close(context.Background()) })
			if mod.Interruptible() != interruptible {
				tb.Fatalf("module interruptible: %v, want %v", mod.Interruptible(), interruptible)
			}
			return module{mod}, nil
		},
		Load: func(tb testing.TB, name string) []byte {
			tb.Helper()
			if entry, ok := asMutators[name]; ok {
				return wasmtest.BuildAS(tb, entry)
			}
			dir, ok := mutators[name]
			if !ok {
				tb.Fatalf("no test mutator %q", name)
			}
			return wasmtest.Build(tb, dir)
		},
		Trap: "out of bounds memory access",
		// Only a module rewritten with the interrupt flag records a
		// failed memory.grow.
		NoGrowRecord: !interruptible,
	}
}

// module is a wasmhost.Module as the contract suite sees it.
type module struct{ m *wasmhost.Module }

func (m module) Mutator(log *slog.Logger) hosttest.Mutator { return m.m.Mutator(log) }

// TestHost runs the contract every mutator host meets, with calls stopped
// by the interrupt flag.
func TestHost(t *testing.T) { hosttest.Run(t, host(true)) }

// TestFailures runs the contract's failure cases again with the other way
// of stopping a call, wazero's own termination checks, which a module the
// interrupt rewriter cannot read gets: on the Go test mutator, then on its
// AssemblyScript port (subtest full-as).
func TestFailures(t *testing.T) {
	t.Run("wazero checks", func(t *testing.T) {
		if testing.Short() {
			t.Skip("the fallback is slower to compile; skipped with -short")
		}
		defer wasmhost.UseInterruptFlag(false)()
		hosttest.Failures(t, host(false), hosttest.Full)
		t.Run(hosttest.FullAS, func(t *testing.T) { hosttest.Failures(t, host(false), hosttest.FullAS) })
	})
}
