package wasmhost_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest/wasmbin"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
)

// Modules that are not mutators are refused at load, with what is wrong,
// in the detail only wazero gives: the types of imports and exports, the
// decoder's complaint (the contract suite checks the rest, TestHost/BadModules).
func TestBadModules(t *testing.T) {
	cases := []struct {
		name string
		wasm []byte
		want []string
	}{
		{"not WebAssembly", []byte("#!/bin/sh\necho hi\n"), []string{"not a sqlsync mutator", "invalid magic number"}},
		{"empty module", wasmbin.Module(), []string{
			"lacks the export sqlsync_abi_version () -> (i32)",
			"lacks the export sqlsync_alloc (i32) -> (i32)",
			"lacks the export sqlsync_migrate () -> (i64)",
			"lacks the export sqlsync_mutate (i32, i32, i32, i32) -> (i64)",
			"lacks the export memory",
		}},
		{"import of the wrong type", wasmbin.Module(
			wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType([]byte{wasmbin.I64}, nil))),
			wasmbin.Section(2, wasmbin.Vec(wasmbin.ImportFunc("sqlsync", "run", 0))),
		), []string{"imports sqlsync.run as (i64) -> (), want (i32, i32, i32, i32) -> (i32)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wasmhost.Compile(context.Background(), tc.wasm, wasmhost.Limits{})
			if !errors.Is(err, wasmhost.ErrBadModule) {
				t.Fatalf("got %v, want ErrBadModule", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}

	// A Go mutator built with the SDK, plus an import of its own.
	t.Run("Go mutator with an ungranted import", func(t *testing.T) {
		_, err := wasmhost.Compile(context.Background(), wasmtest.Build(t, "./testdata/badimport"), wasmhost.Limits{})
		if !errors.Is(err, wasmhost.ErrBadModule) || !strings.Contains(err.Error(), "imports env.open_socket, which the host does not grant") {
			t.Fatalf("got %v", err)
		}
	})
}
