// Package interrupt rewrites a WebAssembly module so that its host can stop
// it cheaply. It adds two mutable i32 globals, an interrupt flag exported as
// [Export] and a fuel counter, and a few instructions at the head of every
// loop: the fuel counts down, and when it runs out (every [Slice] loop
// iterations) the guest checks the flag, trapping with unreachable if the
// host has set it (from any goroutine), and then executes memory.grow 0.
// That no-op exits to the Go runtime, which matters as much as the flag: Go
// cannot preempt a goroutine running generated machine code, so a guest
// that never left it would stall every stop-the-world pause of the process
// (and with it the timer that sets the flag). Code without loops runs to
// an end or exhausts the stack, so no computation outlives the flag for
// more than one slice.
//
// wazero's own WithCloseOnContextDone does the same job by calling out to
// the Go runtime at every loop head, which makes Go guests (whose every
// function body is a loop) several times slower. A module the rewriter
// cannot read (an opcode it does not know, no memory) is reported with
// [ErrUnsupported], and the host falls back to wazero's checks.
package interrupt

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Export is the name of the interrupt flag the rewritten module exports.
const Export = "sqlsync_interrupt"

// Slice is the number of loop iterations between two checks of the flag.
const Slice = 1 << 14

// ErrUnsupported reports a module the rewriter cannot handle.
var ErrUnsupported = errors.New("interrupt: module not supported")

// Section ids, and the order sections must come in.
const (
	secCustom = 0
	secImport = 2
	secMemory = 5
	secGlobal = 6
	secExport = 7
	secCode   = 10
)

var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

type section struct {
	id   byte
	data []byte
}

// Instrument returns a copy of the module wasm with the interrupt global
// and its checks added.
func Instrument(wasm []byte) (_ []byte, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
	}()
	if len(wasm) < 8 || !bytes.Equal(wasm[:8], []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, errors.New("not a WebAssembly 1.0 binary")
	}
	r := reader{b: wasm, i: 8}
	var sections []section
	for r.more() {
		id := r.byte()
		n := r.u32()
		sections = append(sections, section{id: id, data: r.bytes(int(n))})
		if r.err != nil {
			return nil, r.err
		}
	}

	var importedGlobals, definedGlobals, memories uint32
	for _, s := range sections {
		switch s.id {
		case secImport:
			if importedGlobals, memories, err = countImports(s.data); err != nil {
				return nil, err
			}
		case secMemory:
			mr := reader{b: s.data}
			memories += mr.u32()
		case secGlobal:
			gr := reader{b: s.data}
			definedGlobals = gr.u32()
			if gr.err != nil {
				return nil, gr.err
			}
		case secExport:
			if exports(s.data, Export) {
				return nil, fmt.Errorf("the module already exports %s", Export)
			}
		}
	}
	if memories == 0 {
		return nil, errors.New("the module has no memory")
	}
	flag, fuel := importedGlobals+definedGlobals, importedGlobals+definedGlobals+1
	check := loopCheck(flag, fuel)

	// mut i32 flag = 0, mut i32 fuel = Slice
	newGlobals := append([]byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41}, sleb(Slice)...)
	newGlobals = append(newGlobals, 0x0b)
	newExport := append(append(name(Export), 0x03), uleb(flag)...)
	var out []section
	haveGlobal, haveExport := false, false
	for _, s := range sections {
		switch s.id {
		case secCustom:
			if n := customName(s.data); strings.HasPrefix(n, ".debug") || n == "sourceMappingURL" {
				continue // code offsets change: debug info would lie
			}
		case secGlobal:
			s.data, haveGlobal = appendToVec(s.data, newGlobals, 2), true
		case secExport:
			s.data, haveExport = appendToVec(s.data, newExport, 1), true
		case secCode:
			if s.data, err = rewriteCode(s.data, check); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	if !haveGlobal {
		out = insertSection(out, section{secGlobal, appendToVec([]byte{0}, newGlobals, 2)})
	}
	if !haveExport {
		out = insertSection(out, section{secExport, appendToVec([]byte{0}, newExport, 1)})
	}
	b := append([]byte(nil), wasm[:8]...)
	for _, s := range out {
		b = append(b, s.id)
		b = append(b, uleb(uint32(len(s.data)))...)
		b = append(b, s.data...)
	}
	return b, nil
}

// loopCheck returns the instructions put at the head of every loop:
//
//	global.get $fuel  i32.const 1  i32.sub  global.set $fuel
//	global.get $fuel  i32.eqz
//	if
//	  global.get $flag  if unreachable end
//	  i32.const Slice  global.set $fuel
//	  i32.const 0  memory.grow 0  drop
//	end
func loopCheck(flag, fuel uint32) []byte {
	var b []byte
	b = append(append(b, 0x23), uleb(fuel)...)
	b = append(b, 0x41, 0x01, 0x6b)
	b = append(append(b, 0x24), uleb(fuel)...)
	b = append(append(b, 0x23), uleb(fuel)...)
	b = append(b, 0x45, 0x04, 0x40)
	b = append(append(b, 0x23), uleb(flag)...)
	b = append(b, 0x04, 0x40, 0x00, 0x0b)
	b = append(append(b, 0x41), sleb(Slice)...)
	b = append(append(b, 0x24), uleb(fuel)...)
	b = append(b, 0x41, 0x00, 0x40, 0x00, 0x1a)
	return append(b, 0x0b)
}

// insertSection puts s before the first non-custom section that must follow it.
func insertSection(sections []section, s section) []section {
	for i, o := range sections {
		if o.id != secCustom && sectionRank[o.id] > sectionRank[s.id] {
			return append(sections[:i], append([]section{s}, sections[i:]...)...)
		}
	}
	return append(sections, s)
}

// appendToVec appends n encoded items to an encoded vector, fixing its count.
func appendToVec(vec []byte, items []byte, n uint32) []byte {
	r := reader{b: vec}
	count := r.u32()
	out := append(uleb(count+n), vec[r.i:]...)
	return append(out, items...)
}

// countImports returns the number of imported globals and memories.
func countImports(data []byte) (globals, memories uint32, err error) {
	r := reader{b: data}
	for range r.u32() {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // function
			r.u32()
		case 0x01: // table
			r.refType()
			r.limits()
		case 0x02: // memory
			r.limits()
			memories++
		case 0x03: // global
			r.valType()
			r.byte()
			globals++
		case 0x04: // tag
			r.byte()
			r.u32()
		default:
			return 0, 0, fmt.Errorf("import kind %#x", kind)
		}
		if r.err != nil {
			break
		}
	}
	return globals, memories, r.err
}

func exports(data []byte, want string) bool {
	r := reader{b: data}
	for range r.u32() {
		n := r.name()
		r.byte()
		r.u32()
		if r.err != nil {
			return false
		}
		if n == want {
			return true
		}
	}
	return false
}

func customName(data []byte) string {
	r := reader{b: data}
	return r.name()
}

// rewriteCode inserts check after every loop instruction of every body.
func rewriteCode(data, check []byte) ([]byte, error) {
	r := reader{b: data}
	n := r.u32()
	out := uleb(n)
	for i := range n {
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			return nil, r.err
		}
		nb, err := rewriteBody(body, check)
		if err != nil {
			return nil, fmt.Errorf("function body %d: %w", i, err)
		}
		out = append(out, uleb(uint32(len(nb)))...)
		out = append(out, nb...)
	}
	if r.more() {
		return nil, errors.New("trailing bytes in the code section")
	}
	return out, nil
}

func rewriteBody(body, check []byte) ([]byte, error) {
	r := reader{b: body}
	for range r.u32() { // local declarations
		r.u32()
		r.valType()
	}
	out := make([]byte, 0, len(body)+len(body)/8)
	start := 0
	for r.more() && r.err == nil {
		op := r.byte()
		if err := r.immediates(op); err != nil {
			return nil, err
		}
		if op == 0x03 { // loop: check on every iteration
			out = append(out, body[start:r.i]...)
			out = append(out, check...)
			start = r.i
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(out, body[start:]...), nil
}

// immediates skips the immediates of the instruction op.
func (r *reader) immediates(op byte) error {
	switch {
	case op == 0x02 || op == 0x03 || op == 0x04 || op == 0x06: // block, loop, if, try
		r.blockType()
	case op == 0x07 || op == 0x08 || op == 0x09 || op == 0x18: // catch, throw, rethrow, delegate
		r.u32()
	case op == 0x0c || op == 0x0d || op == 0xd4 || op == 0xd6: // br, br_if, br_on_null, br_on_non_null
		r.u32()
	case op == 0x0e: // br_table
		for range r.u32() {
			r.u32()
		}
		r.u32()
	case op == 0x10 || op == 0x12 || op == 0x14 || op == 0x15: // call, return_call, call_ref, return_call_ref
		r.u32()
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		for range r.u32() {
			r.valType()
		}
	case op == 0x1f: // try_table
		r.blockType()
		for range r.u32() {
			switch kind := r.byte(); kind {
			case 0x00, 0x01: // catch, catch_ref: tag, label
				r.u32()
				r.u32()
			case 0x02, 0x03: // catch_all, catch_all_ref: label
				r.u32()
			default:
				return fmt.Errorf("catch kind %#x", kind)
			}
		}
	case op >= 0x20 && op <= 0x26: // locals, globals, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memArg()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41: // i32.const
		r.sleb()
	case op == 0x42: // i64.const
		r.sleb()
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null
		r.heapType()
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		return r.miscImmediates(r.u32())
	case op == 0xfd:
		return r.simdImmediates(r.u32())
	case op == 0xfe:
		if r.u32() == 0x03 { // atomic.fence
			r.byte()
		} else {
			r.memArg()
		}
	case op <= 0x01 || op == 0x05 || op == 0x0a || op == 0x0b || op == 0x0f || op == 0x19 ||
		op == 0x1a || op == 0x1b || (op >= 0x45 && op <= 0xc4) || op == 0xd1 || op == 0xd3:
		// no immediates
	default:
		return fmt.Errorf("opcode %#x", op)
	}
	return nil
}

func (r *reader) miscImmediates(sub uint32) error {
	switch {
	case sub <= 7: // saturating truncations
	case sub == 8: // memory.init
		r.u32()
		r.u32()
	case sub == 9 || sub == 13: // data.drop, elem.drop
		r.u32()
	case sub == 10 || sub == 12 || sub == 14: // memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	case sub == 11 || (sub >= 15 && sub <= 17): // memory.fill, table.grow/size/fill
		r.u32()
	default:
		return fmt.Errorf("opcode 0xfc %d", sub)
	}
	return nil
}

func (r *reader) simdImmediates(sub uint32) error {
	switch {
	case sub <= 0x0b || sub == 0x5c || sub == 0x5d: // loads and stores
		r.memArg()
	case sub == 0x0c || sub == 0x0d: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 0x15 && sub <= 0x22: // extract and replace lane
		r.byte()
	case sub >= 0x54 && sub <= 0x5b: // lane loads and stores
		r.memArg()
		r.byte()
	case sub <= 0x113:
		// no immediates
	default:
		return fmt.Errorf("opcode 0xfd %d", sub)
	}
	return nil
}

// reader decodes the binary format; after an error every read is a no-op.
type reader struct {
	b   []byte
	i   int
	err error
}

func (r *reader) more() bool { return r.err == nil && r.i < len(r.b) }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.i >= len(r.b) {
		r.fail(errors.New("unexpected end"))
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.i {
		r.fail(errors.New("unexpected end"))
		return nil
	}
	p := r.b[r.i : r.i+n]
	r.i += n
	return p
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail(errors.New("LEB128 too long"))
	return 0
}

// uleb64 skips an unsigned LEB128 of up to 64 bits.
func (r *reader) uleb64() {
	for range 10 {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail(errors.New("LEB128 too long"))
}

// sleb skips a signed LEB128 of up to 64 bits.
func (r *reader) sleb() { r.uleb64() }

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *reader) memArg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.uleb64()
}

func (r *reader) limits() {
	flags := r.byte()
	r.uleb64()
	if flags&1 != 0 {
		r.uleb64()
	}
}

func (r *reader) blockType() {
	if r.err != nil || r.i >= len(r.b) {
		r.fail(errors.New("unexpected end"))
		return
	}
	switch c := r.b[r.i]; {
	case c == 0x40 || isValType(c):
		r.i++
	case c == 0x63 || c == 0x64: // a typed reference
		r.i++
		r.heapType()
	default:
		r.sleb() // a type index, as a signed 33-bit LEB128
	}
}

func (r *reader) valType() {
	c := r.byte()
	if c == 0x63 || c == 0x64 { // (ref null ht), (ref ht)
		r.heapType()
		return
	}
	if !isValType(c) && r.err == nil {
		r.fail(fmt.Errorf("value type %#x", c))
	}
}

func (r *reader) refType() { r.valType() }

func (r *reader) heapType() { r.sleb() }

func isValType(c byte) bool {
	switch c {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, // i32 i64 f32 f64 v128
		0x70, 0x6f, 0x69: // funcref externref exnref
		return true
	}
	return false
}

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sleb(v int32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func name(s string) []byte { return append(uleb(uint32(len(s))), s...) }
