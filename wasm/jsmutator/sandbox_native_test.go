//go:build !js

package jsmutator_test

import (
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
)

// On wazero, the sandbox test mutator sees sandboxFacts.
func TestSandboxNative(t *testing.T) {
	mod := wasmtest.Compile(t, "./testdata/sandbox", wasmhost.Limits{})
	for range 2 {
		mut := mod.Mutator(nil)
		checkSandbox(t, mut)
		mut.Close()
	}
}
