package wasmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/sqlsync-go/sqlsync/internal/atomicfile"
	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/interrupt"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Limits bound what a mutator may use. Zero fields take their defaults.
type Limits = mutatorhost.Limits

// ErrBadModule reports a module that is not a sqlsync mutator: not
// WebAssembly, lacking the ABI's exports, importing what the host does not
// grant, or of another ABI version.
var ErrBadModule = mutatorhost.ErrBadModule

// useInterruptFlag turns the interrupt flag off, for tests of the fallback.
var useInterruptFlag = true

// compilationCache is shared by every Module of the process, so a module
// compiled once (the slow part of loading it) is not compiled again.
var compilationCache = wazero.NewCompilationCache()

// The on-disk cache, when SetCacheDir has chosen a directory: one wazero
// cache per module, in a subdirectory named by the module's hash, so that
// a damaged entry is removed without touching the others. (wazero names
// the entry inside by the code it compiled: the module as package
// interrupt rewrote it.)
var (
	diskMu     sync.Mutex
	diskDir    string
	diskCaches = map[string]wazero.CompilationCache{} // by directory
)

// SetCacheDir keeps the machine code of the modules compiled from now on
// in dir, so that a later process compiling the same module (a CLI
// command, a restarted coordinator) reads it instead of compiling it
// again, the slow part of loading a module. dir is created if needed and
// must be writable; on error the setting is left as it was. "" goes back
// to the default, a cache in memory for the life of the process. An entry
// that cannot be read or written does not fail Compile: the module is then
// compiled in memory, and the entry is removed for the next process to
// write again.
func SetCacheDir(dir string) error {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("set compilation cache dir: %w", err)
		}
		probe, err := os.CreateTemp(dir, ".probe-*")
		if err != nil {
			return fmt.Errorf("set compilation cache dir: %w", err)
		}
		probe.Close()
		os.Remove(probe.Name())
	}
	diskMu.Lock()
	diskDir = dir
	diskMu.Unlock()
	return nil
}

// diskCache returns the on-disk cache of the module with this hash and
// its directory, or nil and "" when there is none (no SetCacheDir, or it
// cannot be opened).
func diskCache(hash string) (wazero.CompilationCache, string) {
	diskMu.Lock()
	defer diskMu.Unlock()
	if diskDir == "" {
		return nil, ""
	}
	dir := filepath.Join(diskDir, hash)
	if c, ok := diskCaches[dir]; ok {
		return c, dir
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		slog.Debug("compilation cache unusable: compiling in memory", "dir", dir, "err", err)
		return nil, ""
	}
	diskCaches[dir] = c
	return c, dir
}

// dropDiskCache forgets the cache in dir after it failed and removes its
// files, so that the next process compiles the module afresh and writes
// them again. The cache itself is not closed: a Module of this process
// may still run code it compiled.
func dropDiskCache(dir string, err error) {
	slog.Debug("compiling through the on-disk cache failed: compiling in memory and removing its entry", "dir", dir, "err", err)
	diskMu.Lock()
	delete(diskCaches, dir)
	diskMu.Unlock()
	if err := os.RemoveAll(dir); err != nil {
		slog.Debug("remove compilation cache entry", "dir", dir, "err", err)
	}
}

// instrument returns the module rewritten by package interrupt, from the
// on-disk cache after SetCacheDir when it holds this module's rewrite by
// this version of the rewriter (rewriting a 4 MB module takes about a
// quarter of a cached CLI command), else rewriting it and keeping the
// result there. A cached copy carries its SHA-256, so a damaged one is
// rewritten, never run.
func instrument(hash string, wasm []byte) ([]byte, error) {
	diskMu.Lock()
	dir := diskDir
	diskMu.Unlock()
	if dir == "" || !useInterruptFlag {
		return interrupt.Instrument(wasm)
	}
	name := filepath.Join(dir, hash, fmt.Sprintf("interrupt-v%d.wasm", interrupt.Version))
	if b, err := os.ReadFile(name); err == nil && len(b) > sha256.Size {
		if sum := sha256.Sum256(b[sha256.Size:]); bytes.Equal(sum[:], b[:sha256.Size]) {
			return b[sha256.Size:], nil
		}
		slog.Debug("cached rewritten mutator damaged: rewriting it", "file", name)
	}
	code, err := interrupt.Instrument(wasm)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(code)
	if err := atomicfile.Write(name, append(sum[:], code...), 0o700); err != nil {
		slog.Debug("keep rewritten mutator", "file", name, "err", err)
	}
	return code, nil
}

// Module is a compiled mutator, ready to run for any number of documents.
// Its methods are safe for concurrent use.
type Module struct {
	hash     string
	size     int
	limits   Limits
	rt       wazero.Runtime
	compiled wazero.CompiledModule

	// interruptible is set when the module carries the interrupt flag of
	// package interrupt; else wazero's WithCloseOnContextDone stops calls.
	interruptible bool

	spare mutatorhost.Spare[*instance] // started at load to check the module
}

// Compile compiles and checks a mutator module: it must be a WASI reactor
// exporting the ABI of package abi, importing only what the host grants
// (the sqlsync imports and some of WASI's), and starting cleanly. The
// machine code is cached for the life of the process, keyed by the bytes,
// and on disk too after SetCacheDir.
func Compile(ctx context.Context, wasm []byte, limits Limits) (*Module, error) {
	limits = limits.WithDefaults()
	if limits.MemoryPages > mutatorhost.MaxMemoryPages {
		return nil, fmt.Errorf("compile mutator: memory limit of %d pages exceeds %d", limits.MemoryPages, mutatorhost.MaxMemoryPages)
	}
	sum := sha256.Sum256(wasm)
	m := &Module{hash: hex.EncodeToString(sum[:]), size: len(wasm), limits: limits}
	// Calls must stop at their deadline. The cheap way is an interrupt flag
	// the module checks at every loop head; a module the rewriter cannot
	// read gets wazero's own checks, correct but several times slower.
	code, err := instrument(m.hash, wasm)
	if errors.Is(err, interrupt.ErrMalformed) {
		// wazero would allocate by the vector's count before it noticed.
		return nil, fmt.Errorf("compile mutator %s: %w: %w", m.hash[:12], ErrBadModule, err)
	}
	if !useInterruptFlag {
		err = errors.New("disabled")
	}
	m.interruptible = err == nil
	if err != nil {
		code = wasm
		slog.Debug("mutator runs with wazero's termination checks", "mutator", m.hash[:12], "err", err)
	}
	if err := m.load(ctx, code); err != nil {
		if m.rt != nil {
			m.rt.Close(ctx)
		}
		return nil, fmt.Errorf("compile mutator %s: %w", m.hash[:12], err)
	}
	return m, nil
}

// newRuntime returns a runtime for the module's code over cache, with the
// host modules it may import defined.
func (m *Module) newRuntime(ctx context.Context, cache wazero.CompilationCache) (wazero.Runtime, error) {
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithCloseOnContextDone(!m.interruptible).
		WithMemoryLimitPages(m.limits.MemoryPages)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("define WASI: %w", err)
	}
	if err := instantiateHostModule(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("define sqlsync imports: %w", err)
	}
	return rt, nil
}

// compile sets m.rt and m.compiled: the code compiled through the on-disk
// cache if there is one and it works, else through the process's cache
// in memory.
func (m *Module) compile(ctx context.Context, code []byte) error {
	if cache, dir := diskCache(m.hash); cache != nil {
		rt, err := m.newRuntime(ctx, cache)
		if err != nil {
			return err
		}
		compiled, err := rt.CompileModule(ctx, code)
		if err == nil {
			m.rt, m.compiled = rt, compiled
			return nil
		}
		rt.Close(ctx)
		// A damaged entry, or one that could not be written; or the
		// module is bad, which compiling again in memory says quickly.
		dropDiskCache(dir, err)
	}
	rt, err := m.newRuntime(ctx, compilationCache)
	if err != nil {
		return err
	}
	m.rt = rt
	compiled, err := rt.CompileModule(ctx, code)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadModule, err)
	}
	m.compiled = compiled
	return nil
}

func (m *Module) load(ctx context.Context, wasm []byte) error {
	if err := m.compile(ctx, wasm); err != nil {
		return err
	}
	if err := m.validate(); err != nil {
		return err
	}
	// Start one instance now: it checks the ABI version and that the
	// module starts, and the first document to run the module takes it.
	inst, err := m.instantiate(ctx, slog.Default())
	if err != nil {
		return err
	}
	m.spare.Put(inst)
	return nil
}

// wantExports are the ABI's exports with their types.
var wantExports = map[string]signature{
	abi.ExportVersion: {nil, []api.ValueType{api.ValueTypeI32}},
	abi.ExportAlloc:   {[]api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	abi.ExportMutate: {
		[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32},
		[]api.ValueType{api.ValueTypeI64},
	},
	abi.ExportMigrate: {nil, []api.ValueType{api.ValueTypeI64}},
}

type signature struct{ params, results []api.ValueType }

func signatureOf(def api.FunctionDefinition) signature {
	return signature{def.ParamTypes(), def.ResultTypes()}
}

func (s signature) equal(o signature) bool {
	return slices.Equal(s.params, o.params) && slices.Equal(s.results, o.results)
}

func (s signature) String() string {
	names := func(ts []api.ValueType) string {
		var b strings.Builder
		for i, t := range ts {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(api.ValueTypeName(t))
		}
		return b.String()
	}
	return "(" + names(s.params) + ") -> (" + names(s.results) + ")"
}

// validate checks the module's imports and exports against the ABI,
// reporting every problem at once.
func (m *Module) validate() error {
	var problems []string
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		granted := mod == abi.ImportModule || (mod == wasi_snapshot_preview1.ModuleName && mutatorhost.GrantedWASI[name])
		var host api.FunctionDefinition
		if granted {
			host = m.rt.Module(mod).ExportedFunctionDefinitions()[name]
		}
		if host == nil {
			problems = append(problems, fmt.Sprintf("imports %s.%s, which the host does not grant", mod, name))
			continue
		}
		if got, want := signatureOf(f), signatureOf(host); !got.equal(want) {
			problems = append(problems, fmt.Sprintf("imports %s.%s as %v, want %v", mod, name, got, want))
		}
	}
	if len(m.compiled.ImportedMemories()) > 0 {
		problems = append(problems, "imports a memory: a mutator must define its own")
	}
	exports := m.compiled.ExportedFunctions()
	for _, name := range slices.Sorted(maps.Keys(wantExports)) {
		want := wantExports[name]
		def, ok := exports[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("lacks the export %s %v", name, want))
		case !signatureOf(def).equal(want):
			problems = append(problems, fmt.Sprintf("exports %s as %v, want %v", name, signatureOf(def), want))
		}
	}
	if _, ok := exports[abi.ExportStart]; ok {
		problems = append(problems, "exports _start, so it is a WASI command: build a reactor (Go: -buildmode=c-shared)")
	}
	if _, ok := m.compiled.ExportedMemories()[abi.ExportMemory]; !ok {
		problems = append(problems, "lacks the export memory")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrBadModule, strings.Join(problems, "; "))
	}
	return nil
}

// Hash returns the SHA-256 of the module's bytes, in hex: its identity.
func (m *Module) Hash() string { return m.hash }

// Size returns the size of the module's bytes.
func (m *Module) Size() int { return m.size }

// Limits returns the module's limits, defaults filled in.
func (m *Module) Limits() Limits { return m.limits }

// Close releases the module and every instance of it; its Mutators fail
// from then on.
func (m *Module) Close(ctx context.Context) error {
	m.spare.Take() // closed with the runtime
	return m.rt.Close(ctx)
}

// fixedWalltime is the guest's clock: 2000-01-01T00:00:00Z, always.
func fixedWalltime() (sec int64, nsec int32) { return mutatorhost.Walltime, 0 }

// instance is one running copy of the module, with its own memory.
type instance struct {
	mod                    api.Module
	flag                   api.MutableGlobal // the interrupt flag, or nil
	grow                   api.MutableGlobal // set by a failed memory.grow, or nil
	mem                    api.Memory
	alloc, mutate, migrate api.Function
	out                    *mutatorhost.Output
	exec                   mutatorhost.Exec // the guest's SQL during a call
	limits                 Limits
	inPtr, inCap           uint32 // the region sqlsync_alloc last returned
	stack                  [4]uint64
}

// instantiate starts an instance: _initialize runs (a Go guest's runtime
// and init functions), then the ABI version is checked.
func (m *Module) instantiate(ctx context.Context, log *slog.Logger) (*instance, error) {
	out := mutatorhost.NewOutput(log, m.limits.MaxLogBytes)
	cfg := wazero.NewModuleConfig().
		WithName("").         // anonymous: any number of instances
		WithStartFunctions(). // _initialize runs below, under the time limit
		WithStdout(out.Stream(mutatorhost.Stdout)).
		WithStderr(out.Stream(mutatorhost.Stderr)).
		WithWalltime(fixedWalltime, 1).
		WithRandSource(mutatorhost.NewRandom())
	// The fake monotonic clock (1 ms more at each reading, from 0) and the
	// no-op sleep are wazero's defaults; the browser host gives the same.
	ctx, cancel := context.WithTimeout(ctx, m.limits.MigrateTimeout)
	defer cancel()
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("start mutator: %s%s", firstLine(err.Error()), out.Summary())
	}
	inst := &instance{
		mod:     mod,
		mem:     mod.Memory(),
		alloc:   mod.ExportedFunction(abi.ExportAlloc),
		mutate:  mod.ExportedFunction(abi.ExportMutate),
		migrate: mod.ExportedFunction(abi.ExportMigrate),
		out:     out,
		limits:  m.limits,
	}
	if m.interruptible {
		inst.flag, _ = mod.ExportedGlobal(interrupt.Export).(api.MutableGlobal)
		if inst.flag == nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("start mutator: the interrupt flag %s is missing", interrupt.Export)
		}
		inst.grow, _ = mod.ExportedGlobal(interrupt.GrowFailedExport).(api.MutableGlobal)
		if inst.grow == nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("start mutator: the flag %s is missing", interrupt.GrowFailedExport)
		}
	}
	if init := mod.ExportedFunction(abi.ExportInitialize); init != nil {
		stop := inst.watch(ctx)
		err := init.CallWithStack(ctx, inst.stack[:])
		stop()
		if err != nil {
			mod.Close(ctx)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("start mutator: %s did not finish within %v", abi.ExportInitialize, m.limits.MigrateTimeout)
			}
			return nil, fmt.Errorf("start mutator: %s: %s%s", abi.ExportInitialize, firstLine(err.Error()), out.Summary())
		}
	}
	if err := mod.ExportedFunction(abi.ExportVersion).CallWithStack(ctx, inst.stack[:]); err != nil {
		mod.Close(ctx)
		return nil, fmt.Errorf("start mutator: %s: %s%s", abi.ExportVersion, firstLine(err.Error()), out.Summary())
	}
	if v := api.DecodeU32(inst.stack[0]); v != abi.Version {
		mod.Close(ctx)
		return nil, fmt.Errorf("%w: it implements ABI version %d, this host version %d", ErrBadModule, v, abi.Version)
	}
	return inst, nil
}

// watch sets the instance's interrupt flag once ctx is done, so that a
// guest still running then traps within one slice of loop iterations
// (see package interrupt). The returned
// function disarms it; call it when the guest has returned.
func (inst *instance) watch(ctx context.Context) (stop func()) {
	if inst.flag == nil {
		return func() {} // wazero watches ctx itself
	}
	var mu sync.Mutex
	running := true
	stopAfter := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if running {
			inst.flag.Set(1)
		}
	})
	return func() {
		stopAfter()
		mu.Lock()
		running = false
		mu.Unlock()
		inst.flag.Set(0)
	}
}

// growFailed reports whether a memory.grow failed since the flag was last
// cleared: false for a module the rewriter could not read, which has no
// flag.
func (inst *instance) growFailed() bool { return inst.grow != nil && inst.grow.Get() != 0 }

// clearGrowFailed clears the flag growFailed reads, before a call.
func (inst *instance) clearGrowFailed() {
	if inst.grow != nil {
		inst.grow.Set(0)
	}
}

// Close stops the instance.
func (inst *instance) Close() {
	inst.mod.Close(context.Background())
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
