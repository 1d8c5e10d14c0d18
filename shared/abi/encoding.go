package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The encoding is little-endian throughout:
//
//	request   = count:u32 statement{count}
//	statement = flags:u8 sql:bytes nparams:u32 value{nparams}
//	response  = count:u32 result{count}
//	result    = code:i32 (code = 0: ok, else: error)
//	ok        = changes:i64 last_insert_rowid:i64 ncols:u32 name:bytes{ncols} nrows:u32 value{nrows*ncols}
//	error     = message:bytes
//	value     = type:u8 (NULL: nothing | INTEGER: i64 | REAL: f64 | TEXT, BLOB: bytes)
//	bytes     = len:u32 byte{len}
//
// A response holds one result per statement run; the host stops at the
// first statement that fails, so only the last result can be an error.

// Errors of the decoders.
var (
	ErrTruncated = errors.New("abi: truncated input")
	ErrTrailing  = errors.New("abi: trailing bytes")
	ErrBadType   = errors.New("abi: unknown value type")
)

// AppendU8 appends v.
func AppendU8(b []byte, v uint8) []byte { return append(b, v) }

// AppendU32 appends v, little-endian.
func AppendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// AppendI32 appends v, little-endian.
func AppendI32(b []byte, v int32) []byte { return AppendU32(b, uint32(v)) }

// AppendI64 appends v, little-endian.
func AppendI64(b []byte, v int64) []byte { return binary.LittleEndian.AppendUint64(b, uint64(v)) }

// AppendF64 appends v's IEEE 754 bits, little-endian.
func AppendF64(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// AppendBytes appends p with its u32 length.
func AppendBytes(b, p []byte) []byte { return append(AppendU32(b, uint32(len(p))), p...) }

// AppendString appends s with its u32 length.
func AppendString(b []byte, s string) []byte { return append(AppendU32(b, uint32(len(s))), s...) }

// PutU32 overwrites the u32 at b[off:], to patch a count written earlier.
func PutU32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

// PutI64 overwrites the i64 at b[off:], to patch a value written earlier.
func PutI64(b []byte, off int, v int64) { binary.LittleEndian.PutUint64(b[off:], uint64(v)) }

// AppendNull appends a NULL value.
func AppendNull(b []byte) []byte { return append(b, byte(TypeNull)) }

// AppendInt appends an INTEGER value.
func AppendInt(b []byte, v int64) []byte { return AppendI64(append(b, byte(TypeInteger)), v) }

// AppendReal appends a REAL value.
func AppendReal(b []byte, v float64) []byte { return AppendF64(append(b, byte(TypeReal)), v) }

// AppendText appends a TEXT value.
func AppendText(b []byte, s string) []byte { return AppendString(append(b, byte(TypeText)), s) }

// AppendRawText appends a TEXT value held in bytes.
func AppendRawText(b []byte, p []byte) []byte { return AppendBytes(append(b, byte(TypeText)), p) }

// AppendBlob appends a BLOB value.
func AppendBlob(b []byte, p []byte) []byte { return AppendBytes(append(b, byte(TypeBlob)), p) }

// AppendValue appends v.
func AppendValue(b []byte, v Value) []byte {
	switch v.Type {
	case TypeInteger:
		return AppendInt(b, v.Int)
	case TypeReal:
		return AppendReal(b, v.Real)
	case TypeText:
		return AppendRawText(b, v.Bytes)
	case TypeBlob:
		return AppendBlob(b, v.Bytes)
	}
	return AppendNull(b)
}

// Reader decodes the primitives of the encoding from a buffer. After the
// first error every read returns a zero value and Err reports the error.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Err returns the first error met.
func (r *Reader) Err() error { return r.err }

// Remaining returns the number of bytes not yet read.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = ErrTruncated
		return nil
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p
}

// U8 reads a u8.
func (r *Reader) U8() uint8 {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

// U32 reads a u32.
func (r *Reader) U32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

// I32 reads an i32.
func (r *Reader) I32() int32 { return int32(r.U32()) }

// I64 reads an i64.
func (r *Reader) I64() int64 {
	if p := r.take(8); p != nil {
		return int64(binary.LittleEndian.Uint64(p))
	}
	return 0
}

// F64 reads an f64.
func (r *Reader) F64() float64 {
	if p := r.take(8); p != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(p))
	}
	return 0
}

// Bytes reads length-prefixed bytes; the result aliases the buffer.
func (r *Reader) Bytes() []byte {
	n := r.U32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(r.Remaining()) {
		r.err = ErrTruncated
		return nil
	}
	return r.take(int(n))
}

// Value reads a value; TEXT and BLOB contents alias the buffer.
func (r *Reader) Value() Value {
	t := Type(r.U8())
	if r.err != nil {
		return Value{}
	}
	switch t {
	case TypeNull:
		return Value{}
	case TypeInteger:
		return Value{Type: t, Int: r.I64()}
	case TypeReal:
		return Value{Type: t, Real: r.F64()}
	case TypeText, TypeBlob:
		return Value{Type: t, Bytes: r.Bytes()}
	}
	r.err = fmt.Errorf("%w %d", ErrBadType, t)
	return Value{}
}

// count reads a u32 count of items each at least min bytes long, refusing
// counts the remaining input cannot hold (so a bad count cannot make a
// decoder allocate much).
func (r *Reader) count(min int) int {
	n := r.U32()
	if r.err != nil {
		return 0
	}
	if uint64(n)*uint64(min) > uint64(r.Remaining()) {
		r.err = ErrTruncated
		return 0
	}
	return int(n)
}

// Statement is one statement of a request.
type Statement struct {
	Flags  uint8
	SQL    []byte
	Params []Value
}

// AppendRequest appends the encoding of a request holding stmts.
func AppendRequest(b []byte, stmts []Statement) []byte {
	b = AppendU32(b, uint32(len(stmts)))
	for _, s := range stmts {
		b = AppendU8(b, s.Flags)
		b = AppendBytes(b, s.SQL)
		b = AppendU32(b, uint32(len(s.Params)))
		for _, v := range s.Params {
			b = AppendValue(b, v)
		}
	}
	return b
}

// DecodeRequest decodes a request, reusing dst and its statements' Params.
// SQL texts and values alias b.
func DecodeRequest(b []byte, dst []Statement) ([]Statement, error) {
	r := NewReader(b)
	n := r.count(9)
	dst = dst[:0]
	for i := 0; i < n && r.err == nil; i++ {
		var s Statement
		if i < cap(dst) {
			s.Params = dst[:cap(dst)][i].Params[:0]
		}
		s.Flags = r.U8()
		s.SQL = r.Bytes()
		np := r.count(1)
		for j := 0; j < np && r.err == nil; j++ {
			s.Params = append(s.Params, r.Value())
		}
		dst = append(dst, s)
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode request: %w", r.err)
	}
	if r.Remaining() != 0 {
		return nil, fmt.Errorf("decode request: %w", ErrTrailing)
	}
	return dst, nil
}

// Result is the outcome of one statement of a request.
type Result struct {
	Code            int32 // 0: ok; else an SQLite (extended) result code
	Message         string
	Changes         int64 // rows inserted, updated or deleted
	LastInsertRowID int64
	Columns         []string
	Rows            int
	Values          []Value // Rows × len(Columns) values, row by row
}

// AppendResult appends the encoding of one result.
func AppendResult(b []byte, res Result) []byte {
	b = AppendI32(b, res.Code)
	if res.Code != 0 {
		return AppendString(b, res.Message)
	}
	b = AppendI64(b, res.Changes)
	b = AppendI64(b, res.LastInsertRowID)
	b = AppendU32(b, uint32(len(res.Columns)))
	for _, c := range res.Columns {
		b = AppendString(b, c)
	}
	b = AppendU32(b, uint32(res.Rows))
	for _, v := range res.Values {
		b = AppendValue(b, v)
	}
	return b
}

// AppendResponse appends the encoding of a response holding results.
func AppendResponse(b []byte, results []Result) []byte {
	b = AppendU32(b, uint32(len(results)))
	for _, res := range results {
		b = AppendResult(b, res)
	}
	return b
}

// DecodeResponse decodes a response. Values alias b; column names and
// messages are copied.
func DecodeResponse(b []byte) ([]Result, error) {
	r := NewReader(b)
	n := r.count(4)
	var out []Result
	for i := 0; i < n && r.err == nil; i++ {
		var res Result
		res.Code = r.I32()
		if res.Code != 0 {
			res.Message = string(r.Bytes())
			out = append(out, res)
			continue
		}
		res.Changes = r.I64()
		res.LastInsertRowID = r.I64()
		nc := r.count(4)
		for j := 0; j < nc && r.err == nil; j++ {
			res.Columns = append(res.Columns, string(r.Bytes()))
		}
		rows := r.U32()
		if r.err == nil && nc > 0 && uint64(rows)*uint64(nc) > uint64(r.Remaining()) {
			r.err = ErrTruncated
		}
		if r.err == nil && nc == 0 && rows != 0 {
			r.err = fmt.Errorf("%d rows without columns", rows)
		}
		res.Rows = int(rows)
		if nv := res.Rows * nc; nv > 0 && r.err == nil {
			res.Values = make([]Value, 0, nv)
			for j := 0; j < nv && r.err == nil; j++ {
				res.Values = append(res.Values, r.Value())
			}
		}
		out = append(out, res)
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode response: %w", r.err)
	}
	if r.Remaining() != 0 {
		return nil, fmt.Errorf("decode response: %w", ErrTrailing)
	}
	return out, nil
}
