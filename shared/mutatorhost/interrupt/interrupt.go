// Package interrupt rewrites a WebAssembly module so that its host can stop
// it cheaply. [Instrument] adds two mutable i32 globals, an interrupt flag
// exported as [Export] and a fuel counter, and a few instructions at the
// head of every loop: the fuel counts down, and when it runs out (every
// [Slice] loop iterations) the guest checks the flag, trapping with
// unreachable if the host has set it (from any goroutine), and then
// executes memory.grow 0.
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
//
// A browser runs the guest on the thread that would have to set the flag,
// so nothing can set it while the guest runs. [InstrumentWith] with
// [Options.Tick] calls out instead: every [Slice] loop iterations the guest
// calls the function at index 0 of a one-slot table it exports as
// [TickExport], which the host fills with a function of its own (one that
// throws once the call's deadline has passed, say). The table is defined by
// the module, added after its own, so no index of the module changes.
// [Options.MaxMemoryPages] caps the module's memory, for engines that, like
// browsers, have no per-instance memory limit of their own.
//
// In both modes the rewriter also records a failed memory.grow, so that a
// host can tell a guest that ran out of memory from one that trapped for
// another reason, whatever its language: every memory.grow of the module's
// code becomes a call to a function added after the module's own, which
// grows the memory and, when that fails (returns -1), sets a third mutable
// i32 global, exported as [GrowFailedExport]. The host clears it before a
// call and reads it when the call traps.
package interrupt

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Version names the rewriter's output: hosts that keep rewritten modules
// (the browser caches them across page loads) key them by it. Bump it
// whenever the output for the same input and options changes.
const Version = 2

// Export is the name of the interrupt flag the rewritten module exports.
const Export = "sqlsync_interrupt"

// TickExport is the name of the table a module rewritten with Options.Tick
// exports: one funcref slot, for a function of type () -> () the host sets
// before the first call.
const TickExport = "sqlsync_tick"

// GrowFailedExport is the name of the mutable i32 global a rewritten module
// exports, in both modes, and sets to 1 when a memory.grow of its code
// fails. Nothing in the module clears it: the host does, before each call.
const GrowFailedExport = "sqlsync_grow_failed"

// Slice is the number of loop iterations between two checks of the flag.
const Slice = 1 << 14

// Options change how [InstrumentWith] rewrites a module.
type Options struct {
	// Tick, if set, makes each check call the function in the exported
	// table TickExport instead of checking a flag; the module then has no
	// flag and does not execute memory.grow 0.
	Tick bool
	// MaxMemoryPages, if not 0, sets the maximum of the module's memories
	// to at most that many 64 KiB pages: memory.grow past it fails (returns
	// -1), as under a host's memory limit. A memory that starts larger is
	// an error.
	MaxMemoryPages uint32
}

// ErrUnsupported reports a module the rewriter cannot handle.
var ErrUnsupported = errors.New("interrupt: module not supported")

// ErrMalformed reports a module that is not valid WebAssembly in a way
// that is cheap to see and costly to parse: a section whose vector claims
// more items than it has bytes (a parser that allocates by the count
// would ask for gigabytes). It comes wrapped with ErrUnsupported; a host
// refuses such a module rather than hand it to its engine.
var ErrMalformed = errors.New("interrupt: malformed module")

// Section ids, and the order sections must come in.
const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secTable    = 4
	secMemory   = 5
	secGlobal   = 6
	secExport   = 7
	secCode     = 10
)

// vectorSections are the sections that are a vector of items of a byte
// or more each: type, import, function, table, memory, global, export,
// element, code, data.
var vectorSections = map[byte]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 9: true, 10: true, 11: true}

var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

type section struct {
	id   byte
	data []byte
}

// Instrument returns a copy of the module wasm with the interrupt global
// and its checks added, and failed memory.grow recorded.
func Instrument(wasm []byte) ([]byte, error) { return InstrumentWith(wasm, Options{}) }

// InstrumentWith returns a copy of the module wasm with checks added at
// every loop head, as opts says, and failed memory.grow recorded.
func InstrumentWith(wasm []byte, opts Options) (_ []byte, err error) {
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
		if vectorSections[id] {
			vr := reader{b: sections[len(sections)-1].data}
			if vr.vec(); vr.err != nil {
				return nil, fmt.Errorf("%w: section %d: %w", ErrMalformed, id, vr.err)
			}
		}
	}

	var imported importCounts
	var definedGlobals, definedTables, definedFuncs, types uint32
	var definedMemories []byte
	for _, s := range sections {
		switch s.id {
		case secType:
			if types, err = countFuncTypes(s.data); err != nil {
				return nil, err
			}
		case secImport:
			if imported, err = countImports(s.data); err != nil {
				return nil, err
			}
		case secFunction:
			fr := reader{b: s.data}
			definedFuncs = fr.u32()
			if fr.err != nil {
				return nil, fr.err
			}
		case secTable:
			tr := reader{b: s.data}
			definedTables = tr.u32()
		case secMemory:
			if definedMemories, err = memoryFlags(s.data); err != nil {
				return nil, err
			}
		case secGlobal:
			gr := reader{b: s.data}
			definedGlobals = gr.u32()
			if gr.err != nil {
				return nil, gr.err
			}
		case secExport:
			for _, name := range []string{Export, TickExport, GrowFailedExport} {
				if exports(s.data, name) {
					return nil, fmt.Errorf("the module already exports %s", name)
				}
			}
		}
	}
	// The memory index space: imported memories first.
	memories := append(append([]byte(nil), imported.memories...), definedMemories...)
	if len(memories) == 0 {
		return nil, errors.New("the module has no memory")
	}
	if opts.MaxMemoryPages > 0 && len(imported.memories) > 0 {
		return nil, errors.New("the module imports its memory: its maximum cannot be set")
	}
	for i, flags := range memories {
		if flags&^0x03 != 0 { // memory64 (memory.grow takes an i64), custom page sizes
			return nil, fmt.Errorf("memory %d has limits flags %#x", i, flags)
		}
	}

	// Without Tick: mut i32 flag = 0, mut i32 fuel = Slice, the flag
	// exported. With Tick: mut i32 fuel = Slice, a one-slot funcref table
	// exported, and the type () -> () for the call through it. Then in
	// both: mut i32 growFailed = 0, exported, the type (i32) -> (i32) and
	// one function of that type per memory, after the module's own, which
	// replaces memory.grow on that memory.
	globals := imported.globals + definedGlobals
	var (
		check, newGlobals, newExports, newTable, newTypes []byte
		nGlobals, nTypes                                  uint32
	)
	fuelGlobal := append([]byte{0x7f, 0x01, 0x41}, sleb(Slice)...)
	fuelGlobal = append(fuelGlobal, 0x0b)
	if opts.Tick {
		fuel, table := globals, imported.tables+definedTables
		check = tickCheck(fuel, types, table)
		newGlobals, nGlobals = fuelGlobal, 1
		newExports = append(append(name(TickExport), 0x01), uleb(table)...)
		newTable = []byte{0x70, 0x01, 0x01, 0x01}      // funcref, min 1, max 1
		newTypes, nTypes = []byte{0x60, 0x00, 0x00}, 1 // () -> ()
	} else {
		flag, fuel := globals, globals+1
		check = loopCheck(flag, fuel)
		newGlobals, nGlobals = append([]byte{0x7f, 0x01, 0x41, 0x00, 0x0b}, fuelGlobal...), 2
		newExports = append(append(name(Export), 0x03), uleb(flag)...)
	}
	growFailed := globals + nGlobals
	newGlobals, nGlobals = append(newGlobals, 0x7f, 0x01, 0x41, 0x00, 0x0b), nGlobals+1
	newExports = append(append(newExports, name(GrowFailedExport)...), 0x03)
	newExports = append(newExports, uleb(growFailed)...)
	growType := types + nTypes
	newTypes, nTypes = append(newTypes, 0x60, 0x01, 0x7f, 0x01, 0x7f), nTypes+1 // (i32) -> (i32)
	var (
		growFuncs         = make([]uint32, len(memories)) // by memory
		newFuncs, newCode []byte
	)
	for mem := range memories {
		growFuncs[mem] = imported.funcs + definedFuncs + uint32(mem)
		newFuncs = append(newFuncs, uleb(growType)...)
		body := growBody(uint32(mem), growFailed)
		newCode = append(append(newCode, uleb(uint32(len(body)))...), body...)
	}
	nFuncs := uint32(len(memories))

	var out []section
	have := map[byte]bool{}
	for _, s := range sections {
		switch s.id {
		case secCustom:
			if n := customName(s.data); strings.HasPrefix(n, ".debug") || n == "sourceMappingURL" {
				continue // code offsets change: debug info would lie
			}
		case secType:
			s.data = appendToVec(s.data, newTypes, nTypes)
		case secFunction:
			s.data = appendToVec(s.data, newFuncs, nFuncs)
		case secTable:
			if newTable != nil {
				s.data = appendToVec(s.data, newTable, 1)
			}
		case secMemory:
			if opts.MaxMemoryPages > 0 {
				if s.data, err = capMemories(s.data, opts.MaxMemoryPages); err != nil {
					return nil, err
				}
			}
		case secGlobal:
			s.data = appendToVec(s.data, newGlobals, nGlobals)
		case secExport:
			s.data = appendToVec(s.data, newExports, 2)
		case secCode:
			if s.data, err = rewriteCode(s.data, check, growFuncs); err != nil {
				return nil, err
			}
			s.data = appendToVec(s.data, newCode, nFuncs)
		}
		have[s.id] = true
		out = append(out, s)
	}
	if !have[secType] {
		out = insertSection(out, section{secType, appendToVec([]byte{0}, newTypes, nTypes)})
	}
	if !have[secFunction] {
		out = insertSection(out, section{secFunction, appendToVec([]byte{0}, newFuncs, nFuncs)})
	}
	if newTable != nil && !have[secTable] {
		out = insertSection(out, section{secTable, appendToVec([]byte{0}, newTable, 1)})
	}
	if !have[secGlobal] {
		out = insertSection(out, section{secGlobal, appendToVec([]byte{0}, newGlobals, nGlobals)})
	}
	if !have[secExport] {
		out = insertSection(out, section{secExport, appendToVec([]byte{0}, newExports, 2)})
	}
	if !have[secCode] {
		out = insertSection(out, section{secCode, appendToVec([]byte{0}, newCode, nFuncs)})
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

// tickCheck returns the instructions put at the head of every loop with
// Options.Tick:
//
//	global.get $fuel  i32.const 1  i32.sub  global.set $fuel
//	global.get $fuel  i32.eqz
//	if
//	  i32.const Slice  global.set $fuel
//	  i32.const 0  call_indirect $void $tick
//	end
func tickCheck(fuel, voidType, table uint32) []byte {
	var b []byte
	b = append(append(b, 0x23), uleb(fuel)...)
	b = append(b, 0x41, 0x01, 0x6b)
	b = append(append(b, 0x24), uleb(fuel)...)
	b = append(append(b, 0x23), uleb(fuel)...)
	b = append(b, 0x45, 0x04, 0x40)
	b = append(append(b, 0x41), sleb(Slice)...)
	b = append(append(b, 0x24), uleb(fuel)...)
	b = append(b, 0x41, 0x00, 0x11)
	b = append(b, uleb(voidType)...)
	b = append(b, uleb(table)...)
	return append(b, 0x0b)
}

// growBody returns the body of the function that replaces memory.grow on
// memory mem, of type (i32) -> (i32):
//
//	local.get 0  memory.grow mem  local.tee 0
//	i32.const -1  i32.eq
//	if  i32.const 1  global.set $growFailed  end
//	local.get 0
func growBody(mem, growFailed uint32) []byte {
	b := []byte{0x00, 0x20, 0x00, 0x40} // no locals; local.get 0, memory.grow
	b = append(b, uleb(mem)...)
	b = append(b, 0x22, 0x00, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x41, 0x01, 0x24)
	b = append(b, uleb(growFailed)...)
	return append(b, 0x0b, 0x20, 0x00, 0x0b)
}

// memoryFlags returns the limits flags of each memory of a memory section.
func memoryFlags(data []byte) ([]byte, error) {
	r := reader{b: data}
	n := r.vec()
	var flags []byte
	for range n {
		flags = append(flags, r.limits())
		if r.err != nil {
			return nil, r.err
		}
	}
	return flags, r.err
}

// countFuncTypes returns the number of types in a type section, which must
// all be plain function types (no recursive groups or subtypes of the GC
// proposal, whose indices count differently).
func countFuncTypes(data []byte) (uint32, error) {
	r := reader{b: data}
	n := r.vec()
	for range n {
		if form := r.byte(); form != 0x60 && r.err == nil {
			return 0, fmt.Errorf("type form %#x", form)
		}
		for range 2 { // params, results
			for range r.vec() {
				r.valType()
			}
		}
		if r.err != nil {
			break
		}
	}
	return n, r.err
}

// capMemories sets the maximum of every memory of a memory section to at
// most max pages.
func capMemories(data []byte, max uint32) ([]byte, error) {
	r := reader{b: data}
	n := r.vec()
	out := uleb(n)
	for i := range n {
		flags := r.byte()
		if flags&^0x03 != 0 { // memory64, or a page size of the custom-page-sizes proposal
			return nil, fmt.Errorf("memory %d has limits flags %#x", i, flags)
		}
		min := r.u32()
		hi := max
		if flags&1 != 0 {
			hi = min32(r.u32(), max)
		}
		if r.err != nil {
			return nil, r.err
		}
		if min > max {
			return nil, fmt.Errorf("memory %d starts at %d pages, over the limit of %d", i, min, max)
		}
		out = append(out, flags|1)
		out = append(out, uleb(min)...)
		out = append(out, uleb(hi)...)
	}
	if r.more() {
		return nil, errors.New("trailing bytes in the memory section")
	}
	return out, nil
}

func min32(a, b uint32) uint32 {
	if a < b {
		return a
	}
	return b
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

// importCounts counts a module's imports by kind, and holds the limits
// flags of its imported memories.
type importCounts struct {
	funcs, tables, globals uint32
	memories               []byte
}

// countImports returns the number of imported functions, tables and
// globals, and the flags of the imported memories.
func countImports(data []byte) (c importCounts, err error) {
	r := reader{b: data}
	for range r.vec() {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // function
			r.u32()
			c.funcs++
		case 0x01: // table
			r.refType()
			r.limits()
			c.tables++
		case 0x02: // memory
			c.memories = append(c.memories, r.limits())
		case 0x03: // global
			r.valType()
			r.byte()
			c.globals++
		case 0x04: // tag
			r.byte()
			r.u32()
		default:
			return c, fmt.Errorf("import kind %#x", kind)
		}
		if r.err != nil {
			break
		}
	}
	return c, r.err
}

func exports(data []byte, want string) bool {
	r := reader{b: data}
	for range r.vec() {
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

// rewriteCode inserts check after every loop instruction of every body,
// and replaces every memory.grow on memory m by a call of function grow[m].
func rewriteCode(data, check []byte, grow []uint32) ([]byte, error) {
	r := reader{b: data}
	n := r.vec()
	out := uleb(n)
	for i := range n {
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			return nil, r.err
		}
		nb, err := rewriteBody(body, check, grow)
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

func rewriteBody(body, check []byte, grow []uint32) ([]byte, error) {
	r := reader{b: body}
	for range r.vec() { // local declarations
		r.u32()
		r.valType()
	}
	out := make([]byte, 0, len(body)+len(body)/8)
	start := 0
	for r.more() && r.err == nil {
		at := r.i
		op := r.byte()
		if op == 0x40 { // memory.grow: a call that records a failure
			mem := r.u32()
			if r.err != nil {
				break
			}
			if mem >= uint32(len(grow)) {
				return nil, fmt.Errorf("memory.grow of memory %d, which does not exist", mem)
			}
			out = append(out, body[start:at]...)
			out = append(append(out, 0x10), uleb(grow[mem])...)
			start = r.i
			continue
		}
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
		for range r.vec() {
			r.u32()
		}
		r.u32()
	case op == 0x10 || op == 0x12 || op == 0x14 || op == 0x15: // call, return_call, call_ref, return_call_ref
		r.u32()
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		for range r.vec() {
			r.valType()
		}
	case op == 0x1f: // try_table
		r.blockType()
		for range r.vec() {
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

// vec reads the length of a vector. Each item takes a byte at least, so a
// length over the bytes left is an error: a loop over the items would
// otherwise run on, reading nothing, billions of times.
func (r *reader) vec() uint32 {
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(r.b)-r.i) {
		r.fail(errors.New("vector longer than its bytes"))
		return 0
	}
	return n
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

// limits skips limits, returning their flags.
func (r *reader) limits() byte {
	flags := r.byte()
	r.uleb64()
	if flags&1 != 0 {
		r.uleb64()
	}
	return flags
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
