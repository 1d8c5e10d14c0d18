package hosttest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
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
		{"empty module", WasmModule(), []string{
			"lacks the export sqlsync_abi_version",
			"lacks the export sqlsync_alloc",
			"lacks the export sqlsync_migrate",
			"lacks the export sqlsync_mutate",
			"lacks the export memory",
		}},
		{"ungranted import", WasmModule(
			Section(1, Vec(FuncType(nil, nil))),
			Section(2, Vec(ImportFunc("env", "evil", 0))),
		), []string{"imports env.evil, which the host does not grant"}},
		{"ungranted import, own memory not exported", WasmModule(
			Section(1, Vec(FuncType(nil, nil))),
			Section(2, Vec(ImportFunc("env", "open_socket", 0))),
			Section(5, Vec([]byte{0x00, 0x01})), // (memory 1)
		), []string{"imports env.open_socket, which the host does not grant", "lacks the export sqlsync_mutate", "lacks the export memory"}},
		{"ungranted WASI import", WasmModule(
			Section(1, Vec(FuncType([]byte{I32, I32, I32, I32, I32, I64, I64, I32, I32}, []byte{I32}))),
			Section(2, Vec(ImportFunc("wasi_snapshot_preview1", "path_open", 0))),
		), []string{"imports wasi_snapshot_preview1.path_open, which the host does not grant"}},
		{"command module", WasmModule(
			Section(1, Vec(FuncType(nil, nil))),
			Section(3, Vec([]byte{0})),
			Section(7, Vec(ExportFunc("_start", 0))),
			Section(10, Vec(FuncBody())),
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

// The smallest pieces of the WebAssembly binary format, to write modules
// by hand.

// Value types, as the binary format writes them.
const (
	I32 = 0x7f
	I64 = 0x7e
)

// WasmModule returns a module made of sections, after the magic number and
// version.
func WasmModule(sections ...[]byte) []byte {
	return append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Join(sections, nil)...)
}

func uleb(n int) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// Section returns the section id holding content.
func Section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(len(content))...), content...)
}

// Vec returns a vector of items.
func Vec(items ...[]byte) []byte { return append(uleb(len(items)), bytes.Join(items, nil)...) }

func name(s string) []byte { return append(uleb(len(s)), s...) }

// FuncType returns a function type, for the type section.
func FuncType(params, results []byte) []byte {
	b := append([]byte{0x60}, uleb(len(params))...)
	b = append(b, params...)
	b = append(b, uleb(len(results))...)
	return append(b, results...)
}

// ImportFunc returns an import of module.field as a function of type
// typeIdx, for the import section.
func ImportFunc(module, field string, typeIdx int) []byte {
	return bytes.Join([][]byte{name(module), name(field), {0x00}, uleb(typeIdx)}, nil)
}

// ExportFunc returns an export of function funcIdx as field, for the
// export section.
func ExportFunc(field string, funcIdx int) []byte {
	return bytes.Join([][]byte{name(field), {0x00}, uleb(funcIdx)}, nil)
}

// FuncBody returns an empty function body (no locals, end), for the code
// section.
func FuncBody() []byte { return append(uleb(2), 0x00, 0x0b) }
