package hosttest

import (
	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest/wasmbin"
)

// GrowMutator is a mutator written by hand, as a guest without Go's
// runtime would be: its memory starts at 1 page, with no maximum of its
// own, and each mutation grows it by one page per byte of args. When that
// fails, "grow" traps with unreachable and prints nothing, and "try" copes
// and returns 0; "crash" always traps, after its grow. Every other export
// does the least the ABI asks (alloc returns 1024, in the first page).
// Both hosts' tests of the record of a failed memory.grow run it.
//
//	(func $mutate (param $name i32 $nameLen i32 $args i32 $argsLen i32) (result i64)
//	  local.get $argsLen  memory.grow 0  i32.const -1  i32.eq
//	  local.get $nameLen  i32.const 4  i32.eq  i32.and  if unreachable end
//	  local.get $nameLen  i32.const 5  i32.eq  if unreachable end
//	  i64.const 0)
func GrowMutator() []byte {
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
