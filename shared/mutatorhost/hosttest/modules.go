package hosttest

import (
	"errors"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest/wasmbin"
)

// Modules that are not mutators are refused at load with ErrBadModule,
// every problem listed. Only what both hosts can tell is checked here: the
// browser sees the names and kinds of imports and exports, not their
// types.
func testBadModules(t *testing.T, h Host) {
	cases := []struct {
		name string
		wasm []byte
		want []string
	}{
		{"not WebAssembly", []byte("#!/bin/sh\necho hi\n"), []string{"not a sqlsync mutator"}},
		{"four bytes", []byte("nope"), []string{"not a sqlsync mutator"}},
		{"empty module", wasmbin.Module(), []string{
			"lacks the export sqlsync_abi_version",
			"lacks the export sqlsync_alloc",
			"lacks the export sqlsync_migrate",
			"lacks the export sqlsync_mutate",
			"lacks the export memory",
		}},
		{"ungranted import", wasmbin.Module(
			wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType(nil, nil))),
			wasmbin.Section(2, wasmbin.Vec(wasmbin.ImportFunc("env", "evil", 0))),
		), []string{"imports env.evil, which the host does not grant"}},
		{"ungranted import, own memory not exported", wasmbin.Module(
			wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType(nil, nil))),
			wasmbin.Section(2, wasmbin.Vec(wasmbin.ImportFunc("env", "open_socket", 0))),
			wasmbin.Section(5, wasmbin.Vec([]byte{0x00, 0x01})), // (memory 1)
		), []string{"imports env.open_socket, which the host does not grant", "lacks the export sqlsync_mutate", "lacks the export memory"}},
		{"ungranted WASI import", wasmbin.Module(
			wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType([]byte{wasmbin.I32, wasmbin.I32, wasmbin.I32, wasmbin.I32, wasmbin.I32, wasmbin.I64, wasmbin.I64, wasmbin.I32, wasmbin.I32}, []byte{wasmbin.I32}))),
			wasmbin.Section(2, wasmbin.Vec(wasmbin.ImportFunc("wasi_snapshot_preview1", "path_open", 0))),
		), []string{"imports wasi_snapshot_preview1.path_open, which the host does not grant"}},
		{"command module", wasmbin.Module(
			wasmbin.Section(1, wasmbin.Vec(wasmbin.FuncType(nil, nil))),
			wasmbin.Section(3, wasmbin.Vec([]byte{0})),
			wasmbin.Section(7, wasmbin.Vec(wasmbin.ExportFunc("_start", 0))),
			wasmbin.Section(10, wasmbin.Vec(wasmbin.Body(0x0b))),
		), []string{"exports _start, so it is a WASI command"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Compile(t, tc.wasm, mutatorhost.Limits{})
			if !errors.Is(err, mutatorhost.ErrBadModule) {
				t.Fatalf("got %v, want ErrBadModule", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
