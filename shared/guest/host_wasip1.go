//go:build wasip1

package guest

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/sqlsync-go/sqlsync/shared/abi"
)

// The host's imports; see package abi for their contracts.

//go:wasmimport sqlsync run
func hostRun(req unsafe.Pointer, reqLen uint32, out unsafe.Pointer, outCap uint32) uint32

//go:wasmimport sqlsync result
func hostResult(out unsafe.Pointer, outCap uint32) uint32

// outSize is the response buffer's size: most results fit, so most calls
// cross to the host once.
const outSize = 64 << 10

var (
	input  []byte // the region sqlsync_alloc handed out, holding a call's input
	out    []byte // responses land here when they fit
	record []byte // the error record of the last call
)

var roundTrip = hostRoundTrip

// hostRoundTrip runs an encoded request on the host and returns the encoded
// response, valid until the next call.
func hostRoundTrip(req []byte) ([]byte, error) {
	if out == nil {
		out = make([]byte, outSize)
	}
	n := hostRun(unsafe.Pointer(unsafe.SliceData(req)), uint32(len(req)), unsafe.Pointer(&out[0]), uint32(len(out)))
	if int(n) <= len(out) {
		return out[:n], nil
	}
	// Too big for the buffer: the host kept it. Fetch it into a buffer of
	// its own, not kept, so one large query does not pin memory.
	big := make([]byte, n)
	if m := hostResult(unsafe.Pointer(&big[0]), n); m != n {
		return nil, fmt.Errorf("guest: host kept a %d-byte result, then offered %d", n, m)
	}
	return big, nil
}

//go:wasmexport sqlsync_abi_version
func exportVersion() uint32 { return abi.Version }

//go:wasmexport sqlsync_alloc
func exportAlloc(size uint32) uint32 {
	if cap(input) < int(size) || cap(input) == 0 {
		input = make([]byte, max(size, 256))
	}
	input = input[:size]
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(input[:cap(input)]))))
}

//go:wasmexport sqlsync_mutate
func exportMutate(namePtr, nameLen, argsPtr, argsLen uint32) uint64 {
	name, ok1 := inputSlice(namePtr, nameLen)
	args, ok2 := inputSlice(argsPtr, argsLen)
	if !ok1 || !ok2 {
		return errorRecord(abi.StatusError, "guest: mutate input lies outside the region sqlsync_alloc returned")
	}
	// Handlers may keep their args: give them a copy, not the reused region.
	return errorRecord(mutate(name, slices.Clone(args)))
}

//go:wasmexport sqlsync_migrate
func exportMigrate() uint64 { return errorRecord(migrate()) }

// inputSlice returns the n bytes at ptr, which must lie in input.
func inputSlice(ptr, n uint32) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	base := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(input))))
	if ptr < base || uint64(ptr-base)+uint64(n) > uint64(len(input)) {
		return nil, false
	}
	off := ptr - base
	return input[off : off+n], true
}

// errorRecord returns 0 for success, else the packed pointer and length of
// a record holding status and msg, valid until the next call.
func errorRecord(status abi.Status, msg string) uint64 {
	if status == abi.StatusOK {
		return 0
	}
	record = append(append(record[:0], byte(status)), msg...)
	return abi.PackError(uint32(uintptr(unsafe.Pointer(&record[0]))), uint32(len(record)))
}
