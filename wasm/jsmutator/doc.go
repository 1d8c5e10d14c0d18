// Package jsmutator runs sqlsync mutators, WebAssembly modules built
// against the ABI of package abi (docs/mutator-abi.md), inside the browser
// client: on the browser's own WebAssembly engine, reached through
// syscall/js, not on wazero (which under GOOS=js is an interpreter, some
// 400 times slower). It is the browser's counterpart of package wasmhost
// and shares with it package mutatorhost: limits, errors and the verdict
// on a failed call, the instance's life (mutatorhost.Slot), the guest's SQL
// (the statement guard and the encoding), its output and the WASI values;
// both pass the same tests (package mutatorhost/hosttest).
//
// The JavaScript half of the host (js/src/worker/mutator-host.ts, installed
// by the worker script as globalThis.sqlsyncMutatorHost) instantiates the
// module with a WASI shim and wraps its exports; this package compiles the
// module (once per content and limits, for the life of the worker), hands
// out a [Mutator] per document, and runs the guest's SQL on the engine's
// connection when the guest calls sqlsync.run. A mutation costs two calls
// from Go into JavaScript (write the input, call sqlsync_mutate), about
// 1–2 µs each, plus one call from the guest back into Go (js.FuncOf, tens
// of µs) per statement batch.
//
// Calls are bounded as on the coordinator ([mutatorhost.Limits]), with one
// difference of means: nothing can interrupt a guest running on the very
// thread that would have to stop it, so the module is rewritten before it
// is compiled (package interrupt, Options.Tick) to call a JavaScript
// function every 16 384 loop iterations, which throws once the call's
// deadline has passed; the same rewrite caps its memory at
// Limits.MemoryPages. A module the rewriter cannot read runs without
// either bound in the browser (the coordinator's limits still decide its
// mutations' fate).
//
// Its tests run in Chromium: make test-gowasm (see mk/browser.mk).
package jsmutator
