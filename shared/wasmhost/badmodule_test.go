package wasmhost_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
)

// Modules that are not mutators are refused at load, with what is wrong.
func TestBadModules(t *testing.T) {
	const (
		i32 = 0x7f
		i64 = 0x7e
	)
	cases := []struct {
		name string
		wasm []byte
		want []string
	}{
		{"not WebAssembly", []byte("#!/bin/sh\necho hi\n"), []string{"not a sqlsync mutator", "invalid magic number"}},
		{"empty module", wasmModule(), []string{
			"lacks the export sqlsync_abi_version () -> (i32)",
			"lacks the export sqlsync_alloc (i32) -> (i32)",
			"lacks the export sqlsync_migrate () -> (i64)",
			"lacks the export sqlsync_mutate (i32, i32, i32, i32) -> (i64)",
			"lacks the export memory",
		}},
		{"ungranted import", wasmModule(
			section(1, vec(funcType(nil, nil))),
			section(2, vec(importFunc("env", "evil", 0))),
		), []string{"imports env.evil, which the host does not grant"}},
		{"ungranted WASI import", wasmModule(
			section(1, vec(funcType([]byte{i32, i32, i32, i32, i32, i64, i64, i32, i32}, []byte{i32}))),
			section(2, vec(importFunc("wasi_snapshot_preview1", "path_open", 0))),
		), []string{"imports wasi_snapshot_preview1.path_open, which the host does not grant"}},
		{"import of the wrong type", wasmModule(
			section(1, vec(funcType([]byte{i64}, nil))),
			section(2, vec(importFunc("sqlsync", "run", 0))),
		), []string{"imports sqlsync.run as (i64) -> (), want (i32, i32, i32, i32) -> (i32)"}},
		{"command module", wasmModule(
			section(1, vec(funcType(nil, nil))),
			section(3, vec([]byte{0})),
			section(7, vec(exportFunc("_start", 0))),
			section(10, vec(funcBody())),
		), []string{"exports _start, so it is a WASI command"}},
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

// The smallest pieces of the WebAssembly binary format, to write modules by
// hand.

func wasmModule(sections ...[]byte) []byte {
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

func section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(len(content))...), content...)
}

func vec(items ...[]byte) []byte { return append(uleb(len(items)), bytes.Join(items, nil)...) }

func name(s string) []byte { return append(uleb(len(s)), s...) }

func funcType(params, results []byte) []byte {
	b := append([]byte{0x60}, uleb(len(params))...)
	b = append(b, params...)
	b = append(b, uleb(len(results))...)
	return append(b, results...)
}

func importFunc(module, field string, typeIdx int) []byte {
	return bytes.Join([][]byte{name(module), name(field), {0x00}, uleb(typeIdx)}, nil)
}

func exportFunc(field string, funcIdx int) []byte {
	return bytes.Join([][]byte{name(field), {0x00}, uleb(funcIdx)}, nil)
}

// funcBody is an empty function body: no locals, end.
func funcBody() []byte { return append(uleb(2), 0x00, 0x0b) }
