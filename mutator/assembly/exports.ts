// The exports of the mutator ABI (docs/mutator-abi.md). The build command
// compiles this file as a second entry beside the app's mutator, so the
// app's file holds only its migrations and handlers. It imports the SDK by
// its package name, as the app does, so both see the same registry.

import { abiAlloc, abiMigrate, abiMutate } from "@sqlsync-go/mutator";

/** The ABI version this SDK implements. */
export function sqlsync_abi_version(): i32 {
  return 1;
}

/** A region of at least size bytes for the host's input. */
export function sqlsync_alloc(size: i32): usize {
  return abiAlloc(size);
}

/** Runs the named mutation on its args: 0, or an error record. */
export function sqlsync_mutate(namePtr: usize, nameLen: i32, argsPtr: usize, argsLen: i32): i64 {
  return abiMutate(namePtr, nameLen, argsPtr, argsLen);
}

/** Brings the document's schema up to date: 0, or an error record. */
export function sqlsync_migrate(): i64 {
  return abiMigrate();
}
