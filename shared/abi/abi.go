// Package abi is the binary interface between a sqlsync mutator (a
// WebAssembly guest) and the host that runs it: export and import names,
// status and value codes, and the little-endian encoding of SQL requests and
// results. The guest SDK (package guest) and the native host (package
// wasmhost) share it; it imports no WebAssembly runtime, so it builds for
// wasip1, js and native targets alike. docs/mutator-abi.md is the
// language-neutral description of the same interface.
package abi

import "strconv"

// Version is the ABI version this package describes; a guest returns it
// from [ExportVersion] and a host refuses a guest that returns another.
const Version = 1

// Names of the guest's exports.
const (
	// ExportVersion is `() -> i32`: the ABI version the guest implements.
	ExportVersion = "sqlsync_abi_version"
	// ExportAlloc is `(size i32) -> i32`: a pointer to size writable bytes
	// the host fills with a call's input, or 0 if the guest cannot allocate.
	ExportAlloc = "sqlsync_alloc"
	// ExportMutate is `(name_ptr, name_len, args_ptr, args_len i32) -> i64`:
	// runs the named mutation; 0 or an error record (see [PackError]).
	ExportMutate = "sqlsync_mutate"
	// ExportMigrate is `() -> i64`: brings the schema up to date; 0 or an
	// error record.
	ExportMigrate = "sqlsync_migrate"
	// ExportMemory is the guest's linear memory.
	ExportMemory = "memory"
	// ExportInitialize is the WASI reactor initializer, called once per
	// instance before anything else.
	ExportInitialize = "_initialize"
	// ExportStart marks a WASI command module, which a host refuses.
	ExportStart = "_start"
)

// Names of the host's imports, all in module [ImportModule].
const (
	ImportModule = "sqlsync"
	// ImportRun is `(req_ptr, req_len, out_ptr, out_cap i32) -> i32`: runs
	// an encoded request (a batch of statements) and returns the length of
	// the encoded response. The response is written at out_ptr if it fits
	// in out_cap bytes; otherwise the host keeps it for [ImportResult].
	ImportRun = "run"
	// ImportResult is `(out_ptr, out_cap i32) -> i32`: copies the response
	// the host kept to out_ptr if it fits, then forgets it; returns its
	// length either way (0 if none is kept).
	ImportResult = "result"
)

// Status is the first byte of an error record returned by [ExportMutate]
// or [ExportMigrate].
type Status uint8

// Statuses of a mutation or migration.
const (
	StatusOK      Status = 0 // never in a record: success is a 0 return
	StatusError   Status = 1 // the handler returned an error
	StatusUnknown Status = 2 // no handler has that name
	StatusBadArgs Status = 3 // the args could not be decoded
	StatusPanic   Status = 4 // the guest recovered from a panic; the host discards the instance
)

// String names the status.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusError:
		return "error"
	case StatusUnknown:
		return "unknown mutation"
	case StatusBadArgs:
		return "bad args"
	case StatusPanic:
		return "panic"
	}
	return "status " + strconv.Itoa(int(s))
}

// PackError packs the pointer and length of an error record into the i64
// that [ExportMutate] and [ExportMigrate] return. The record is one
// [Status] byte followed by a UTF-8 message; n counts both.
func PackError(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// UnpackError is the inverse of [PackError].
func UnpackError(v uint64) (ptr, n uint32) { return uint32(v >> 32), uint32(v) }

// Type is the type tag of an encoded SQL value.
type Type uint8

// SQL value types, as SQLite's fundamental datatypes.
const (
	TypeNull    Type = 0
	TypeInteger Type = 1 // i64
	TypeReal    Type = 2 // f64, IEEE 754 bits
	TypeText    Type = 3 // u32 length, UTF-8 bytes
	TypeBlob    Type = 4 // u32 length, bytes
)

// FlagRows is a statement flag: return the statement's columns and rows.
const FlagRows uint8 = 1

// SQLite result codes a host uses for errors of its own (the rest come
// from SQLite unchanged, as extended result codes).
const (
	CodeError     = 1  // SQLITE_ERROR
	CodeInterrupt = 9  // SQLITE_INTERRUPT: the time limit ran out
	CodeTooBig    = 18 // SQLITE_TOOBIG: a result exceeded the host's limit
	CodeAuth      = 23 // SQLITE_AUTH: a statement a mutator may not run
	CodeRange     = 25 // SQLITE_RANGE: wrong number of parameters
)

// Value is one SQL value. Bytes holds TEXT and BLOB contents; a decoded
// Value's Bytes alias the buffer it was decoded from.
type Value struct {
	Type  Type
	Int   int64
	Real  float64
	Bytes []byte
}
