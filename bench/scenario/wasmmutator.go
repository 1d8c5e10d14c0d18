package scenario

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
)

// The "wasm" mutator is the todo app's own mutator, demo-todo/mutator,
// built for WebAssembly and run by package wasmhost as the coordinator and
// native clients run it. It honours the same contract as testmutator.
func init() {
	RegisterMutator(Mutator{Name: "wasm", New: newWasmMutator})
}

// wasmTodoPackage is the Go package of the todo mutator.
const wasmTodoPackage = "github.com/sqlsync-go/sqlsync/demo-todo/mutator"

var wasmModule struct {
	once sync.Once
	mod  *wasmhost.Module
	err  error
}

// newWasmMutator returns a wasmhost mutator of the todo module, loading
// (and if need be building) the module once per process.
func newWasmMutator(ctx context.Context, cfg *Config) (engine.Mutator, error) {
	wasmModule.once.Do(func() {
		wasm, err := loadTodoWasm(ctx, cfg)
		if err != nil {
			wasmModule.err = err
			return
		}
		wasmModule.mod, wasmModule.err = wasmhost.Compile(context.Background(), wasm, wasmhost.Limits{})
	})
	if wasmModule.err != nil {
		return nil, wasmModule.err
	}
	return wasmModule.mod.Mutator(slog.New(slog.DiscardHandler)), nil
}

// loadTodoWasm reads cfg.WasmModule or builds the todo mutator with the go
// command (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared), from the module
// the working directory is in.
func loadTodoWasm(ctx context.Context, cfg *Config) ([]byte, error) {
	if cfg.WasmModule != "" {
		b, err := os.ReadFile(cfg.WasmModule)
		if err != nil {
			return nil, fmt.Errorf("load wasm mutator: %w", err)
		}
		return b, nil
	}
	dir, err := os.MkdirTemp(cfg.Dir, "sqlsync-bench-wasm-")
	if err != nil {
		return nil, fmt.Errorf("build wasm mutator: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "todo.wasm")
	cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-o", out, wasmTodoPackage)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build wasm mutator %s: %w\n%s", wasmTodoPackage, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("build wasm mutator: %w", err)
	}
	return b, nil
}
