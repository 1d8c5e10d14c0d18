package interrupt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest/wasmbin"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/interrupt"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// spinModule is a module with a memory, a global of its own and one export,
// spin, that loops forever:
//
//	(module (memory 1) (global (mut i32) (i32.const 7))
//	  (func (export "spin") (loop (br 0))))
func spinModule() []byte {
	return wasmbin.Module(
		wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType(nil, nil))),
		wasmbin.Section(3, wasmbin.Vec([]byte{0})),
		wasmbin.Section(5, wasmbin.Vec([]byte{0x00, 0x01})),
		wasmbin.Section(6, wasmbin.Vec([]byte{0x7f, 0x01, 0x41, 0x07, 0x0b})),
		wasmbin.Section(7, wasmbin.Vec(wasmbin.ExportFunc("spin", 0))),
		wasmbin.Section(10, wasmbin.Vec(wasmbin.Body(0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b))),
		wasmbin.Section(0, append(wasmbin.Name(".debug_info"), 1, 2, 3)),
	)
}

// A spinning guest lets stop-the-world pauses through, and stops once the
// flag is set.
func TestInterruptSpin(t *testing.T) {
	ctx := context.Background()
	wasm, err := interrupt.Instrument(spinModule())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wasm, []byte(".debug_info")) {
		t.Error("debug info kept")
	}
	r := wazero.NewRuntime(ctx) // no WithCloseOnContextDone: the flag is the only way out
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if g := mod.ExportedGlobal(interrupt.Export); g == nil || g.Get() != 0 {
		t.Fatalf("flag %v", g)
	}
	flag := mod.ExportedGlobal(interrupt.Export).(api.MutableGlobal)
	done := make(chan error, 1)
	go func() {
		_, err := mod.ExportedFunction("spin").Call(ctx)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	gcDone := make(chan struct{})
	go func() {
		runtime.GC() // stops the world: must not wait for the spinning guest forever
		close(gcDone)
	}()
	select {
	case <-gcDone:
	case <-time.After(5 * time.Second):
		t.Fatal("a GC did not finish while the guest spun")
	}
	select {
	case err := <-done:
		t.Fatalf("spin returned early: %v", err)
	default:
	}
	flag.Set(1)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("spin returned %v, want an unreachable trap", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the guest did not stop after the flag was set")
	}
}

// With Tick, a spinning guest calls the function the host put in the
// exported table every Slice loop iterations, and stops when it throws.
func TestTick(t *testing.T) {
	ctx := context.Background()
	wasm, err := interrupt.InstrumentWith(spinModule(), interrupt.Options{Tick: true})
	if err != nil {
		t.Fatal(err)
	}
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	ticks := 0
	_, err = r.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(context.Context) {
			if ticks++; ticks == 3 {
				panic(errors.New("deadline passed"))
			}
		}).Export("tick").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	guest, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("guest"))
	if err != nil {
		t.Fatal(err)
	}
	if guest.ExportedGlobal(interrupt.Export) != nil {
		t.Error("the flag is exported too")
	}
	// Without a function in the slot, the first check traps.
	if _, err := guest.ExportedFunction("spin").Call(ctx); err == nil {
		t.Fatal("spin returned without a tick function")
	}
	// A second module fills the slot with a function that calls env.tick:
	//	(import "env" "tick" (func)) (import "guest" "sqlsync_tick" (table 1 funcref))
	//	(func call 0) (elem (i32.const 0) 1)
	filler := wasmbin.Module(
		wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType(nil, nil))),
		wasmbin.Section(2, wasmbin.Vec(
			append(append(wasmbin.Name("env"), wasmbin.Name("tick")...), 0x00, 0x00),
			append(append(wasmbin.Name("guest"), wasmbin.Name(interrupt.TickExport)...), 0x01, 0x70, 0x00, 0x01))),
		wasmbin.Section(3, wasmbin.Vec([]byte{0})),
		wasmbin.Section(9, wasmbin.Vec([]byte{0x00, 0x41, 0x00, 0x0b, 0x01, 0x01})),
		wasmbin.Section(10, wasmbin.Vec(wasmbin.Body(0x10, 0x00, 0x0b))),
	)
	if _, err := r.Instantiate(ctx, filler); err != nil {
		t.Fatal(err)
	}
	_, err = guest.ExportedFunction("spin").Call(ctx)
	if err == nil || !strings.Contains(err.Error(), "deadline passed") {
		t.Fatalf("spin returned %v, want the tick's error", err)
	}
	if ticks != 3 {
		t.Fatalf("%d ticks, want 3", ticks)
	}
}

// growModule is (module (memory min max?) (func (export "grow") (param i32)
// (result i32) local.get 0 memory.grow 0)).
func growModule(limits ...byte) []byte {
	return wasmbin.Module(
		wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType([]byte{0x7f}, []byte{0x7f}))),
		wasmbin.Section(3, wasmbin.Vec([]byte{0})),
		wasmbin.Section(5, wasmbin.Vec(limits)),
		wasmbin.Section(7, wasmbin.Vec(wasmbin.ExportFunc("grow", 0))),
		wasmbin.Section(10, wasmbin.Vec(wasmbin.Body(0x20, 0x00, 0x40, 0x00, 0x0b))),
	)
}

func TestMaxMemoryPages(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	for _, tc := range []struct {
		name   string
		limits []byte
		grows  []uint32 // memory.grow results for grow(1), ...
	}{
		{"no maximum", []byte{0x00, 0x01}, []uint32{1, 2, 0xffffffff}},
		{"lower maximum kept", []byte{0x01, 0x01, 0x02}, []uint32{1, 0xffffffff}},
		{"higher maximum lowered", []byte{0x01, 0x01, 0x10}, []uint32{1, 2, 0xffffffff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wasm, err := interrupt.InstrumentWith(growModule(tc.limits...), interrupt.Options{Tick: true, MaxMemoryPages: 3})
			if err != nil {
				t.Fatal(err)
			}
			mod, err := r.Instantiate(ctx, wasm)
			if err != nil {
				t.Fatal(err)
			}
			defer mod.Close(ctx)
			for i, want := range tc.grows {
				res, err := mod.ExportedFunction("grow").Call(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				if got := uint32(res[0]); got != want {
					t.Fatalf("grow %d: memory.grow returned %d, want %d", i, int32(got), int32(want))
				}
			}
		})
	}
	if _, err := interrupt.InstrumentWith(growModule(0x00, 0x04), interrupt.Options{MaxMemoryPages: 3}); !errors.Is(err, interrupt.ErrUnsupported) {
		t.Errorf("a memory starting over the limit: got %v", err)
	}
}

// oomModule is a module whose grow grows its memory, at most 3 pages, by
// n pages and traps with unreachable when that fails, printing nothing, as
// a guest in a language without Go's runtime may. It imports a function
// and has a global of its own, so the rewriter's function and global come
// after them:
//
//	(module (import "env" "nop" (func)) (memory (export "memory") 1 3)
//	  (global (mut i32) (i32.const 7))
//	  (func (export "grow") (param i32)
//	    call 0
//	    local.get 0  memory.grow 0  i32.const -1  i32.eq  if unreachable end))
func oomModule() []byte {
	return wasmbin.Module(
		wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType(nil, nil), wasmbin.FuncType([]byte{wasmbin.I32}, nil))),
		wasmbin.Section(2, wasmbin.Vec(wasmbin.ImportFunc("env", "nop", 0))),
		wasmbin.Section(3, wasmbin.Vec([]byte{1})),
		wasmbin.Section(5, wasmbin.Vec([]byte{0x01, 0x01, 0x03})),
		wasmbin.Section(6, wasmbin.Vec([]byte{0x7f, 0x01, 0x41, 0x07, 0x0b})),
		wasmbin.Section(7, wasmbin.Vec(wasmbin.ExportFunc("grow", 1), append(wasmbin.Name("memory"), 0x02, 0x00))),
		wasmbin.Section(10, wasmbin.Vec(wasmbin.Body(
			0x10, 0x00,
			0x20, 0x00, 0x40, 0x00, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x00, 0x0b,
			0x0b))),
	)
}

// A failed memory.grow sets the exported flag, in both modes; one that
// succeeds leaves it alone. The guest's own result is unchanged.
func TestGrowFailed(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []interrupt.Options{{}, {Tick: true, MaxMemoryPages: 3}} {
		t.Run(fmt.Sprintf("tick=%v", opts.Tick), func(t *testing.T) {
			wasm, err := interrupt.InstrumentWith(oomModule(), opts)
			if err != nil {
				t.Fatal(err)
			}
			r := wazero.NewRuntime(ctx)
			defer r.Close(ctx)
			nops := 0
			_, err = r.NewHostModuleBuilder("env").NewFunctionBuilder().
				WithFunc(func(context.Context) { nops++ }).Export("nop").Instantiate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mod, err := r.Instantiate(ctx, wasm)
			if err != nil {
				t.Fatal(err)
			}
			flag, ok := mod.ExportedGlobal(interrupt.GrowFailedExport).(api.MutableGlobal)
			if !ok {
				t.Fatalf("no mutable global %s", interrupt.GrowFailedExport)
			}
			grow := mod.ExportedFunction("grow")
			if _, err := grow.Call(ctx, 2); err != nil {
				t.Fatalf("grow(2): %v", err)
			}
			if flag.Get() != 0 {
				t.Errorf("flag %d after a grow that succeeded", flag.Get())
			}
			if pages, _ := mod.Memory().Grow(0); pages != 3 {
				t.Errorf("%d pages after grow(2), want 3", pages)
			}
			_, err = grow.Call(ctx, 1)
			if err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Fatalf("grow(1) past the maximum returned %v, want an unreachable trap", err)
			}
			if flag.Get() != 1 {
				t.Errorf("flag %d after a grow that failed, want 1", flag.Get())
			}
			flag.Set(0) // as the host does before a call
			if _, err := grow.Call(ctx, 0); err != nil || flag.Get() != 0 {
				t.Errorf("grow(0): %v, flag %d", err, flag.Get())
			}
			if nops != 3 {
				t.Errorf("the imported function ran %d times, want 3", nops)
			}
		})
	}
}

func TestUnsupported(t *testing.T) {
	cases := map[string][]byte{
		"not wasm":  []byte("nope"),
		"no memory": wasmbin.Module(wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType(nil, nil))), wasmbin.Section(3, wasmbin.Vec([]byte{0})), wasmbin.Section(10, wasmbin.Vec(wasmbin.Body(0x0b)))),
		"unknown opcode": wasmbin.Module(
			wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType(nil, nil))), wasmbin.Section(3, wasmbin.Vec([]byte{0})), wasmbin.Section(5, wasmbin.Vec([]byte{0x00, 0x01})),
			wasmbin.Section(10, wasmbin.Vec(wasmbin.Body(0xc5, 0x0b)))),
		"flag exported already": wasmbin.Module(
			wasmbin.Section(5, wasmbin.Vec([]byte{0x00, 0x01})),
			wasmbin.Section(7, wasmbin.Vec(append(wasmbin.Name(interrupt.Export), 0x02, 0x00)))),
		"grow flag exported already": wasmbin.Module(
			wasmbin.Section(5, wasmbin.Vec([]byte{0x00, 0x01})),
			wasmbin.Section(7, wasmbin.Vec(append(wasmbin.Name(interrupt.GrowFailedExport), 0x02, 0x00)))),
		// 2^28-1 local declarations in 7 bytes: refused at once, not
		// after as many reads past the end.
		"vector longer than its bytes": wasmbin.Module(
			wasmbin.Section(5, wasmbin.Vec([]byte{0x00, 0x01})),
			wasmbin.Section(10, wasmbin.Vec([]byte{0x07, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00, 0x00}))),
		"64-bit memory": wasmbin.Module(wasmbin.Section(5, wasmbin.Vec([]byte{0x04, 0x01}))),
		"memory.grow of a memory that does not exist": wasmbin.Module(
			wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType(nil, nil))), wasmbin.Section(3, wasmbin.Vec([]byte{0})), wasmbin.Section(5, wasmbin.Vec([]byte{0x00, 0x01})),
			wasmbin.Section(10, wasmbin.Vec(wasmbin.Body(0x41, 0x00, 0x40, 0x01, 0x1a, 0x0b)))),
	}
	for name, wasm := range cases {
		if _, err := interrupt.Instrument(wasm); !errors.Is(err, interrupt.ErrUnsupported) {
			t.Errorf("%s: got %v, want ErrUnsupported", name, err)
		}
	}
}

// Whatever the input, Instrument does not panic, and a module wazero
// accepts is still accepted once instrumented.
func FuzzInstrument(f *testing.F) {
	f.Add(spinModule())
	f.Add(oomModule())
	f.Add(growModule(0x00, 0x01))
	f.Add(wasmbin.Module(wasmbin.Section(5, wasmbin.Vec([]byte{0x00, 0x01}))))
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Fuzz(func(t *testing.T, wasm []byte) {
		for _, opts := range []interrupt.Options{{}, {Tick: true, MaxMemoryPages: 1024}} {
			out, err := interrupt.InstrumentWith(wasm, opts)
			if errors.Is(err, interrupt.ErrMalformed) {
				return // the hosts refuse it without handing it to wazero
			}
			if err != nil {
				continue
			}
			if _, err := r.CompileModule(ctx, wasm); err != nil {
				return
			}
			if _, err := r.CompileModule(ctx, out); err != nil {
				t.Fatalf("instrumented module (%+v) refused: %v", opts, err)
			}
		}
	})
}

// A section whose vector claims more items than it has bytes is malformed:
// refused at once, so that no parser allocates by its count (wazero asks
// for gigabytes for this one, found by FuzzInstrument).
func TestMalformedVector(t *testing.T) {
	wasm := []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x000\n\t\xff\xff\xff\xff\v0000")
	_, err := interrupt.Instrument(wasm)
	if !errors.Is(err, interrupt.ErrMalformed) || !errors.Is(err, interrupt.ErrUnsupported) {
		t.Fatalf("got %v, want ErrMalformed wrapped in ErrUnsupported", err)
	}
	if !strings.Contains(err.Error(), "section 10") {
		t.Errorf("error %q does not name the section", err)
	}
}
