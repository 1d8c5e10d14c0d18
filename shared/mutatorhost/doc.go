// Package mutatorhost is the part of a sqlsync mutator host that does not
// depend on a WebAssembly engine: the limits of a call, the errors a call
// ends with and the verdict on a failed one ([Failure]), the guest's error
// record, a Mutator's instance and its life ([Slot]: started on first use,
// discarded after a failure, none once closed), the execution of the
// guest's SQL requests (package abi's encoding) on the engine's connection
// behind the statement guard (with the statements kept prepared from call
// to call on a connection the engine opts in: the coordinator's writer),
// the guest's output, and the fixed values of
// the WASI sandbox. Both hosts share it: package wasmhost (wazero,
// natively) and package wasm/jsmutator (the browser's own engine, through
// syscall/js), so a mutator sees the same SQL semantics, refusals, sizes
// and messages on every replica and on the coordinator.
//
// Package interrupt, below it, rewrites a module so that its host can stop
// a call that runs past its time limit. Package hosttest is the contract
// both hosts' tests run.
//
// docs/mutator-abi.md describes the ABI for guests in any language.
package mutatorhost
