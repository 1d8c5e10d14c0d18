// Package wasmhost runs sqlsync mutators, WebAssembly modules built against
// the ABI of package abi (in Go, with package guest), on the native side:
// the coordinator, and native clients. It uses wazero, with one compilation
// cache for the process, kept on disk across processes after [SetCacheDir].
//
// [Compile] loads a module once, refusing it with [ErrBadModule] if it does
// not export the ABI or imports anything the host does not grant. A
// [Module] hands out a [Mutator] per document; a Mutator implements
// engine.Mutator and holds one instance of the module, started on first
// use, which runs its calls one at a time with the engine's connection
// reachable through two host imports (sqlsync.run and sqlsync.result).
//
// Calls are stopped at their deadline by an interrupt flag the module is
// rewritten to check at every loop head (package mutatorhost/interrupt);
// a module the rewriter cannot read runs under wazero's own, slower,
// termination checks instead.
//
// Every call is bounded ([Limits]): wall time (an infinite loop is stopped),
// linear memory, args size and result size. A guest that traps, panics,
// exits or runs out of time or memory fails that call only, with a clear
// error; its instance is discarded and a fresh one serves the next call.
// The host also refuses statements that would escape the engine's
// transaction (BEGIN, COMMIT, SAVEPOINT, RELEASE, …), reach other databases
// (ATTACH), change the connection (most PRAGMAs), create TEMP objects, or
// touch the engine's own tables.
//
// What does not depend on wazero (limits, errors and the verdict on a
// failed call, the instance's life from start to discard, the guest's SQL
// behind the statement guard, its output, the WASI values) is package
// mutatorhost's, which the browser's host (wasm/jsmutator) shares, so a
// mutator behaves the same on the coordinator and in every replica; both
// hosts pass the same tests (package mutatorhost/hosttest).
//
// docs/mutator-abi.md describes the ABI for guests in any language.
package wasmhost
