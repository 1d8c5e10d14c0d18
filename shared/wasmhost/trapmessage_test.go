package wasmhost

import (
	"errors"
	"testing"
)

// A trap names the guest function it happened in, past the frames of
// AssemblyScript's library, when the module's name section names it.
func TestTrapMessage(t *testing.T) {
	cases := []struct{ err, want string }{
		{"wasm error: out of bounds memory access\nwasm stack trace:\n\t.start:full~anonymous|11(i32,i32) i32\n\t\t0x2a: /x/full.ts:198:3\n\t.sqlsync_mutate(i32,i32,i32,i32) i64",
			"wasm error: out of bounds memory access in start:full~anonymous|11"},
		{"wasm error: unreachable\nwasm stack trace:\n\t.~lib/@sqlsync-go/mutator/assembly/index/abortHandler(i32,i32,i32,i32)\n\t.~lib/arraybuffer/ArrayBuffer#constructor(i32) i32\n\t.todo/add(i32,i32) i32",
			"wasm error: unreachable in todo/add"},
		{"wasm error: unreachable\nwasm stack trace:\n\tmod.$12()\n\tmod.$3()", "wasm error: unreachable"},
		{"wasm error: unreachable\nwasm stack trace:\n\t.~lib/rt/tlsf/growMemory(i32,i32)", "wasm error: unreachable"},
		{"wasm error: integer divide by zero", "wasm error: integer divide by zero"},
	}
	for _, tc := range cases {
		if got := trapMessage(errors.New(tc.err)); got != tc.want {
			t.Errorf("trapMessage(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
