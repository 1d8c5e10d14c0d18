//go:build js

package jsmutator_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest/wasmbin"
	"github.com/sqlsync-go/sqlsync/wasm/jsmutator"
)

// growMutator is a mutator written by hand, as a guest without Go's
// runtime would be (the one wasmhost's TestGrowFailed runs): its memory
// starts at 1 page, with no maximum of its own, and each mutation grows it
// by one page per byte of args. When that fails, "grow" traps with
// unreachable and prints nothing, and "try" copes and returns 0; "crash"
// always traps, after its grow.
//
//	(func $mutate (param $name i32 $nameLen i32 $args i32 $argsLen i32) (result i64)
//	  local.get $argsLen  memory.grow 0  i32.const -1  i32.eq
//	  local.get $nameLen  i32.const 4  i32.eq  i32.and  if unreachable end
//	  local.get $nameLen  i32.const 5  i32.eq  if unreachable end
//	  i64.const 0)
func growMutator() []byte {
	i32, i64 := byte(wasmbin.I32), byte(wasmbin.I64)
	return wasmbin.Module(
		wasmbin.Section(1, wasmbin.Vec(
			wasmbin.FuncType(nil, []byte{i32}),
			wasmbin.FuncType([]byte{i32}, []byte{i32}),
			wasmbin.FuncType([]byte{i32, i32, i32, i32}, []byte{i64}),
			wasmbin.FuncType(nil, []byte{i64}))),
		wasmbin.Section(3, wasmbin.Vec([]byte{0}, []byte{1}, []byte{2}, []byte{3})),
		wasmbin.Section(5, wasmbin.Vec([]byte{0x00, 0x01})),
		wasmbin.Section(7, wasmbin.Vec(
			append(wasmbin.Name(abi.ExportMemory), 0x02, 0x00),
			wasmbin.ExportFunc(abi.ExportVersion, 0),
			wasmbin.ExportFunc(abi.ExportAlloc, 1),
			wasmbin.ExportFunc(abi.ExportMutate, 2),
			wasmbin.ExportFunc(abi.ExportMigrate, 3))),
		wasmbin.Section(10, wasmbin.Vec(
			wasmbin.Body(0x41, abi.Version, 0x0b),
			wasmbin.Body(0x41, 0x80, 0x08, 0x0b),
			wasmbin.Body(
				0x20, 0x03, 0x40, 0x00, 0x41, 0x7f, 0x46,
				0x20, 0x01, 0x41, 0x04, 0x46, 0x71, 0x04, 0x40, 0x00, 0x0b,
				0x20, 0x01, 0x41, 0x05, 0x46, 0x04, 0x40, 0x00, 0x0b,
				0x42, 0x00, 0x0b),
			wasmbin.Body(0x42, 0x00, 0x0b))),
	)
}

// A guest that traps after a memory.grow failed at the memory limit (the
// maximum the rewriter gave its memory), saying nothing, is over the
// memory limit, and its instance is discarded; one whose grow succeeded,
// or that trapped in a later call than its failed grow, only trapped.
func TestGrowFailed(t *testing.T) {
	ctx := context.Background()
	m, err := jsmutator.Compile(ctx, growMutator(), mutatorhost.Limits{MemoryPages: 32}) // 2 MiB
	if err != nil {
		t.Fatal(err)
	}
	if !m.Bounded() {
		t.Fatal("the module was not rewritten")
	}
	mut := m.Mutator(nil)
	defer mut.Close()
	pages := func(n int) []byte { return make([]byte, n) }
	mutate := func(name string, args []byte) error {
		return mut.Mutate(ctx, hosttest.OpenConn(t), name, args)
	}
	if err := mutate("grow", pages(20)); err != nil {
		t.Fatalf("a grow within the limit: %v", err)
	}
	err = mutate("grow", pages(20)) // 41 pages
	if !errors.Is(err, mutatorhost.ErrMemoryLimit) || err.Error() != "mutator exceeded its memory limit of 2 MiB" {
		t.Fatalf("a grow past the limit: got %v, want ErrMemoryLimit", err)
	}
	// A fresh instance (1 page) grows to the limit; the last one (21
	// pages) could not have.
	if err := mutate("grow", pages(31)); err != nil {
		t.Fatalf("the instance was not discarded: %v", err)
	}
	// A failed grow the guest copes with fails nothing; a trap in the next
	// call is a trap, the flag cleared in between.
	if err := mutate("try", pages(1)); err != nil {
		t.Fatalf("a failed grow the guest copes with: %v", err)
	}
	err = mutate("crash", nil)
	if !errors.Is(err, mutatorhost.ErrTrap) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("a trap after a failed grow in an earlier call: got %v, want ErrTrap", err)
	}
	err = mutate("crash", pages(1))
	if !errors.Is(err, mutatorhost.ErrTrap) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("a trap after a grow within the limit: got %v, want ErrTrap", err)
	}
}
