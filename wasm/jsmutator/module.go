//go:build js

package jsmutator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/interrupt"
	"github.com/sqlsync-go/sqlsync/vfs/jsinterop"
)

// Limits bound what a mutator may use; see mutatorhost.Limits.
type Limits = mutatorhost.Limits

// HostGlobal is the global the worker script installs the JavaScript half
// of the host as.
const HostGlobal = "sqlsyncMutatorHost"

// Module is a compiled mutator, ready to run for any number of documents.
// Its methods are safe for concurrent use.
type Module struct {
	hash     string
	size     int
	limits   Limits
	compiled js.Value // a WebAssembly.Module
	ticks    bool     // rewritten by package interrupt: time and memory bounded

	spare mutatorhost.Spare[*instance] // started at load to check the module
}

type cacheKey struct {
	hash   string
	limits Limits
}

var (
	cacheMu sync.Mutex
	cache   = map[cacheKey]*Module{}
)

// Compile compiles and checks a mutator module, or returns the Module
// compiled earlier from the same bytes with the same limits. The module
// must be a WASI reactor exporting the ABI of package abi and importing
// only what the host grants (checked by name here: a browser cannot read
// the types of a module's imports; the coordinator checks them too), and
// must start cleanly.
func Compile(ctx context.Context, wasm []byte, limits Limits) (*Module, error) {
	return CompileHashed(ctx, wasm, "", limits)
}

// CompileHashed is Compile for a caller that has already checked that the
// module's SHA-256 (lowercase hex) is hash, as the worker script does with
// the browser's native digest: it spares a second pass over the bytes in
// Go (tens of milliseconds for a module of a few MiB). An empty hash is
// computed here.
func CompileHashed(ctx context.Context, wasm []byte, hash string, limits Limits) (*Module, error) {
	limits = limits.WithDefaults()
	if limits.MemoryPages > mutatorhost.MaxMemoryPages {
		return nil, fmt.Errorf("compile mutator: memory limit of %d pages exceeds %d", limits.MemoryPages, mutatorhost.MaxMemoryPages)
	}
	if hash == "" {
		sum := sha256.Sum256(wasm)
		hash = hex.EncodeToString(sum[:])
	}
	key := cacheKey{hash, limits}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if m := cache[key]; m != nil {
		return m, nil
	}
	m, err := compile(ctx, key.hash, wasm, limits)
	if err != nil {
		return nil, fmt.Errorf("compile mutator %s: %w", key.hash[:12], err)
	}
	cache[key] = m
	return m, nil
}

func compile(ctx context.Context, hash string, wasm []byte, limits Limits) (*Module, error) {
	host := js.Global().Get(HostGlobal)
	if host.Type() != js.TypeObject {
		return nil, fmt.Errorf("the JavaScript mutator host (globalThis.%s) is not installed: load the sqlsync worker script", HostGlobal)
	}
	m := &Module{hash: hash, size: len(wasm), limits: limits}
	// The rewrite costs seconds in a browser's Go: the host keeps its
	// output across page loads, keyed by everything it depends on.
	codeKey := fmt.Sprintf("%s-p%d-v%d", hash, limits.MemoryPages, interrupt.Version)
	compiled, cached := loadCode(ctx, host, codeKey)
	m.ticks = cached
	var instrErr error
	if !cached {
		var code []byte
		code, instrErr = interrupt.InstrumentWith(wasm, interrupt.Options{Tick: true, MaxMemoryPages: limits.MemoryPages})
		m.ticks = instrErr == nil
		if instrErr != nil {
			code = wasm
		}
		buf := js.Global().Get("Uint8Array").New(len(code))
		js.CopyBytesToJS(buf, code)
		var err error
		if cerr := jsinterop.Catch(func() { compiled, err = jsinterop.Await(ctx, js.Global().Get("WebAssembly").Call("compile", buf)) }); cerr != nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", mutatorhost.ErrBadModule, err)
		}
		if m.ticks && host.Get("storeCode").Type() == js.TypeFunction {
			host.Call("storeCode", codeKey, buf) // kept in the background; a failure only costs the next load a rewrite
		}
	}
	m.compiled = compiled
	if err := m.validate(); err != nil {
		return nil, err
	}
	if !m.ticks {
		slog.Warn("mutator runs without a time or memory limit in the browser: the rewriter could not read it", "mutator", hash[:12], "err", instrErr)
	}
	// Start one instance now: it checks the ABI version and that the module
	// starts, and the first document to run the module takes it.
	inst, err := m.instantiate(ctx, slog.Default())
	if err != nil {
		return nil, err
	}
	m.spare.Put(inst)
	return m, nil
}

// loadCode asks the JavaScript host for the rewritten module kept under
// key, compiled; it reports false when the host keeps none (or has no
// such cache).
func loadCode(ctx context.Context, host js.Value, key string) (js.Value, bool) {
	if host.Get("loadCode").Type() != js.TypeFunction {
		return js.Undefined(), false
	}
	var compiled js.Value
	var err error
	if cerr := jsinterop.Catch(func() { compiled, err = jsinterop.Await(ctx, host.Call("loadCode", key)) }); cerr != nil || err != nil {
		return js.Undefined(), false
	}
	return compiled, compiled.Type() == js.TypeObject
}

// wantExports are the ABI's function exports (their types are the
// coordinator's to check).
var wantExports = []string{abi.ExportVersion, abi.ExportAlloc, abi.ExportMutate, abi.ExportMigrate}

// validate checks the names of the module's imports and exports against
// the ABI, reporting every problem at once.
func (m *Module) validate() error {
	wa := js.Global().Get("WebAssembly").Get("Module")
	var problems []string
	imports := wa.Call("imports", m.compiled)
	for i := range imports.Length() {
		imp := imports.Index(i)
		mod, name, kind := imp.Get("module").String(), imp.Get("name").String(), imp.Get("kind").String()
		switch {
		case kind == "memory":
			problems = append(problems, "imports a memory: a mutator must define its own")
		case kind != "function":
			problems = append(problems, fmt.Sprintf("imports the %s %s.%s, which the host does not grant", kind, mod, name))
		case mod == abi.ImportModule && (name == abi.ImportRun || name == abi.ImportResult):
		case mod == mutatorhost.WASIModule && mutatorhost.GrantedWASI[name]:
		default:
			problems = append(problems, fmt.Sprintf("imports %s.%s, which the host does not grant", mod, name))
		}
	}
	exports := map[string]string{}
	list := wa.Call("exports", m.compiled)
	for i := range list.Length() {
		e := list.Index(i)
		exports[e.Get("name").String()] = e.Get("kind").String()
	}
	for _, name := range wantExports {
		if kind, ok := exports[name]; !ok || kind != "function" {
			problems = append(problems, "lacks the export "+name)
		}
	}
	if _, ok := exports[abi.ExportStart]; ok {
		problems = append(problems, "exports _start, so it is a WASI command: build a reactor (Go: -buildmode=c-shared)")
	}
	if exports[abi.ExportMemory] != "memory" {
		problems = append(problems, "lacks the export memory")
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("%w: %s", mutatorhost.ErrBadModule, strings.Join(slices.Compact(problems), "; "))
	}
	return nil
}

// Hash returns the SHA-256 of the module's bytes, in hex: its identity.
func (m *Module) Hash() string { return m.hash }

// Size returns the size of the module's bytes.
func (m *Module) Size() int { return m.size }

// Limits returns the module's limits, defaults filled in.
func (m *Module) Limits() Limits { return m.limits }

// Bounded reports whether calls are bounded in time and memory in the
// browser (the module could be rewritten to call the tick).
func (m *Module) Bounded() bool { return m.ticks }

// The guest's random stream (mutatorhost.NewRandom), the same for every
// instance: its start goes to each instance, which asks for more if it
// reads past it.
var (
	randomMu     sync.Mutex
	randomBytes  []byte
	randomReader io.Reader
	randomJS     js.Value
	randomFunc   js.Func
)

const randomStart = 4 << 10

// randomStream returns a Uint8Array holding at least n bytes of the stream.
func randomStream(n int) js.Value {
	randomMu.Lock()
	defer randomMu.Unlock()
	if randomReader == nil {
		randomReader = mutatorhost.NewRandom()
	}
	if len(randomBytes) < n || randomJS.IsUndefined() {
		more := max(n, 2*len(randomBytes), randomStart) - len(randomBytes)
		start := len(randomBytes)
		randomBytes = append(randomBytes, make([]byte, more)...)
		io.ReadFull(randomReader, randomBytes[start:])
		randomJS = js.Global().Get("Uint8Array").New(len(randomBytes))
		js.CopyBytesToJS(randomJS, randomBytes)
	}
	return randomJS
}

func randomHook() js.Func {
	randomMu.Lock()
	defer randomMu.Unlock()
	if randomFunc.IsUndefined() {
		randomFunc = js.FuncOf(func(this js.Value, args []js.Value) any {
			n := 0
			if len(args) > 0 {
				n = args[0].Int()
			}
			return randomStream(n)
		})
	}
	return randomFunc
}

// Outcomes of a call, from the JavaScript half: non-negative is 2 × the
// length of the error record copied to io (0: none), plus 1 if the guest
// wrote output; negative is a failure.
const (
	failTrap = -1
	failExit = -2
	failTime = -3
)

// instance is one running copy of the module, with its own memory.
type instance struct {
	v js.Value // the JavaScript GuestInstance
	// Its mutate and migrate methods, bound: Invoke on them spares the
	// method name's decoding that Value.Call pays at every call (several µs).
	mutate, migrate js.Value
	io              js.Value // its staging buffer
	ioCap           int
	in              []byte // name and args, before they cross
	out             *mutatorhost.Output
	log             *slog.Logger
	exec            mutatorhost.Exec
	limits          Limits
	req             []byte // the current request, copied from guest memory
	funcs           [2]js.Func
	// grow is the guest's flag of a failed memory.grow (package
	// interrupt), a WebAssembly.Global; undefined if the module was not
	// rewritten.
	grow js.Value
}

// instantiate starts an instance: _initialize runs (a Go guest's runtime
// and init functions), then the ABI version is checked.
func (m *Module) instantiate(ctx context.Context, log *slog.Logger) (*instance, error) {
	inst := &instance{out: mutatorhost.NewOutput(log, m.limits.MaxLogBytes), log: log, limits: m.limits}
	inst.funcs[0] = js.FuncOf(inst.hostRun)
	inst.funcs[1] = js.FuncOf(inst.hostResult)
	hooks := js.Global().Get("Object").New()
	hooks.Set("run", inst.funcs[0])
	hooks.Set("result", inst.funcs[1])
	hooks.Set("random", randomHook())
	opts := js.Global().Get("Object").New()
	opts.Set("random", randomStream(randomStart))
	opts.Set("outputCap", m.limits.MaxLogBytes+8<<10)
	opts.Set("walltime", mutatorhost.Walltime)
	opts.Set("monotonicStep", mutatorhost.MonotonicStep)
	var v js.Value
	var err error
	if cerr := jsinterop.Catch(func() {
		v, err = jsinterop.Await(ctx, js.Global().Get(HostGlobal).Call("instantiate", m.compiled, hooks, opts))
	}); cerr != nil {
		err = cerr
	}
	if err != nil {
		inst.Close()
		return nil, fmt.Errorf("start mutator: %w", err)
	}
	inst.v = v
	inst.mutate = v.Get("mutate").Call("bind", v)
	inst.migrate = v.Get("migrate").Call("bind", v)
	inst.io = v.Get("io")
	inst.ioCap = inst.io.Length()
	if m.ticks {
		// The JavaScript half keeps the guest's exports in its field ex.
		inst.grow = v.Get("ex").Get(interrupt.GrowFailedExport)
		if inst.grow.Type() != js.TypeObject {
			inst.Close()
			return nil, fmt.Errorf("start mutator: the flag %s is missing", interrupt.GrowFailedExport)
		}
	}

	timeout := ms(m.limits.MigrateTimeout)
	fail := func(what string, r int) error {
		var err error
		if r == failTime {
			err = fmt.Errorf("start mutator: %s did not finish within %v", what, m.limits.MigrateTimeout)
		} else {
			err = fmt.Errorf("start mutator: %s: %s%s", what, inst.failure(r), inst.out.Summary())
		}
		inst.Close()
		return err
	}
	if r := v.Call("initialize", timeout).Int(); r < 0 || r&1 != 0 {
		inst.takeOutput()
		if r < 0 {
			return nil, fail(abi.ExportInitialize, r)
		}
	}
	ver := v.Call("version", timeout).Int()
	if ver < 0 {
		inst.takeOutput()
		return nil, fail(abi.ExportVersion, ver)
	}
	if ver != abi.Version {
		inst.Close()
		return nil, fmt.Errorf("%w: it implements ABI version %d, this host version %d", mutatorhost.ErrBadModule, ver, abi.Version)
	}
	return inst, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// growFailed reports whether a memory.grow failed during the last call
// (the JavaScript half clears the flag as each call starts): false for a
// module the rewriter could not read, which has no flag.
func (inst *instance) growFailed() bool {
	return inst.grow.Truthy() && inst.grow.Get("value").Int() != 0
}

// failure describes the failure r of the last call.
func (inst *instance) failure(r int) string {
	if r == failExit {
		return fmt.Sprintf("exited with code %d", inst.v.Get("exitCode").Int())
	}
	return inst.v.Get("failure").String()
}

// takeOutput passes what the guest wrote during the last call to the
// instance's Output, which logs it and keeps the start of stderr.
func (inst *instance) takeOutput() {
	b := inst.v.Call("takeOutput")
	buf := make([]byte, b.Length())
	js.CopyBytesToGo(buf, b)
	for len(buf) >= 5 {
		stream := buf[0]
		n := int(uint32(buf[1]) | uint32(buf[2])<<8 | uint32(buf[3])<<16 | uint32(buf[4])<<24)
		buf = buf[5:]
		if stream == 255 {
			inst.log.Debug("mutator output truncated", "dropped", n)
			continue
		}
		n = min(n, len(buf))
		inst.out.Stream(int(stream)).Write(buf[:n])
		buf = buf[n:]
	}
}

// hostRun is sqlsync.run, called by the JavaScript half as run(reqLen,
// outCap, io?) with the request in io (io is passed when the JavaScript
// half replaced it). It returns the response's length, the response itself
// left in io when it fits in outCap; or a message with which the
// JavaScript half traps the guest.
func (inst *instance) hostRun(this js.Value, args []js.Value) (ret any) {
	defer func() {
		if r := recover(); r != nil {
			ret = fmt.Sprintf("sqlsync.%s: host failure: %v", abi.ImportRun, r)
		}
	}()
	if len(args) < 2 {
		return "sqlsync.run: bad call"
	}
	if len(args) > 2 && args[2].Type() == js.TypeObject {
		inst.io, inst.ioCap = args[2], args[2].Length()
	}
	reqLen := args[0].Int()
	if cap(inst.req) < reqLen {
		inst.req = make([]byte, reqLen)
	}
	req := inst.req[:reqLen]
	js.CopyBytesToGo(req, inst.io)
	out, n, err := inst.exec.Run(req, uint32(args[1].Int()))
	if cap(inst.req) > 1<<20 {
		inst.req = nil // do not pin a large request's buffer
	}
	if err != nil {
		return err.Error()
	}
	inst.stage(out)
	return int(n)
}

// hostResult is sqlsync.result, called as result(outCap).
func (inst *instance) hostResult(this js.Value, args []js.Value) (ret any) {
	defer func() {
		if r := recover(); r != nil {
			ret = fmt.Sprintf("sqlsync.%s: host failure: %v", abi.ImportResult, r)
		}
	}()
	if len(args) < 1 {
		return "sqlsync.result: bad call"
	}
	out, n, err := inst.exec.Result(uint32(args[0].Int()))
	if err != nil {
		return err.Error()
	}
	inst.stage(out)
	return int(n)
}

// stage puts a response in io, for the JavaScript half to copy to guest
// memory; nil is none.
func (inst *instance) stage(out []byte) {
	if out == nil {
		return
	}
	if len(out) > inst.ioCap {
		inst.io = inst.v.Call("ensureIO", len(out))
		inst.ioCap = inst.io.Length()
	}
	js.CopyBytesToJS(inst.io, out)
}

// Close frees the instance's callbacks; it must not run again.
func (inst *instance) Close() {
	for _, f := range inst.funcs {
		if !f.IsUndefined() {
			f.Release()
		}
	}
	inst.v, inst.mutate, inst.migrate, inst.grow = js.Undefined(), js.Undefined(), js.Undefined(), js.Undefined()
}
