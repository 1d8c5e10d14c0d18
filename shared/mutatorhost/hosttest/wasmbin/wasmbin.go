// Package wasmbin holds the smallest pieces of the WebAssembly binary
// format, for tests that write modules by hand: the contract suite's
// modules that are not mutators, the interrupt rewriter's inputs.
package wasmbin

import "bytes"

// Value types, as the binary format writes them.
const (
	I32 = 0x7f
	I64 = 0x7e
)

// Module returns a module made of sections, after the magic number and
// version.
func Module(sections ...[]byte) []byte {
	return append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Join(sections, nil)...)
}

// ULEB returns n in unsigned LEB128.
func ULEB(n int) []byte {
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
	return append(append([]byte{id}, ULEB(len(content))...), content...)
}

// Vec returns a vector of items.
func Vec(items ...[]byte) []byte { return append(ULEB(len(items)), bytes.Join(items, nil)...) }

// Name returns s as a name: its length, then its bytes.
func Name(s string) []byte { return append(ULEB(len(s)), s...) }

// FuncType returns a function type, for the type section.
func FuncType(params, results []byte) []byte {
	b := append([]byte{0x60}, ULEB(len(params))...)
	b = append(b, params...)
	b = append(b, ULEB(len(results))...)
	return append(b, results...)
}

// ImportFunc returns an import of module.field as a function of type
// typeIdx, for the import section.
func ImportFunc(module, field string, typeIdx int) []byte {
	return bytes.Join([][]byte{Name(module), Name(field), {0x00}, ULEB(typeIdx)}, nil)
}

// ExportFunc returns an export of function funcIdx as field, for the
// export section.
func ExportFunc(field string, funcIdx int) []byte {
	return bytes.Join([][]byte{Name(field), {0x00}, ULEB(funcIdx)}, nil)
}

// Body returns a function body without locals, of the given code (which
// ends with the end opcode, 0x0b), for the code section.
func Body(code ...byte) []byte {
	b := append([]byte{0x00}, code...)
	return append(ULEB(len(b)), b...)
}
