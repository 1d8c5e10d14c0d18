package guest

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/sqlsync-go/sqlsync/shared/abi"
)

// Tx is the document as one mutation or migration sees it: every statement
// runs inside the host's transaction for the call. A Tx is valid only until
// its handler returns. Transaction control (BEGIN, COMMIT, SAVEPOINT, …),
// ATTACH and most PRAGMAs are refused by the host: the engine owns the
// transaction.
type Tx struct {
	done bool
}

// ErrTxDone reports the use of a Tx after its handler returned.
var ErrTxDone = errors.New("guest: Tx used after its handler returned")

// ErrNoRows is returned by [Row.Scan] when the query returned no row.
var ErrNoRows = errors.New("guest: no rows in result set")

// Error is an error the host reported for a statement: SQLite's, or the
// host's own refusal of a statement a mutator may not run.
type Error struct {
	Code    int // SQLite extended result code; Code&0xff is the primary code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Result reports what an Exec did.
type Result struct {
	changes, lastID int64
}

// RowsAffected returns the number of rows the statement inserted, updated
// or deleted (for SQL text of several statements, their sum).
func (r Result) RowsAffected() int64 { return r.changes }

// LastInsertId returns the rowid of the connection's most recent insert.
func (r Result) LastInsertId() int64 { return r.lastID }

// reqBuf is reused by every single-statement call; the guest runs one call
// at a time.
var reqBuf []byte

// Exec runs SQL with args bound to its parameters and returns what it
// changed. Without args the text may hold several statements. Args may be
// nil, integers, floats, bools, strings, []byte, or pointers to those (a nil
// pointer is NULL).
func (tx *Tx) Exec(sql string, args ...any) (Result, error) {
	res, err := tx.runOne(0, sql, args)
	if err != nil {
		return Result{}, err
	}
	return Result{changes: res.Changes, lastID: res.LastInsertRowID}, nil
}

// Query runs one statement with args and returns all its rows, which
// arrive in one piece: there is nothing to stream and Rows need not be
// closed, though closing is harmless.
func (tx *Tx) Query(sql string, args ...any) (*Rows, error) {
	res, err := tx.runOne(abi.FlagRows, sql, args)
	if err != nil {
		return nil, err
	}
	return &Rows{cols: res.Columns, vals: res.Values, n: res.Rows, row: -1}, nil
}

// QueryRow runs one statement with args for its first row. Errors are
// deferred to [Row.Scan].
func (tx *Tx) QueryRow(sql string, args ...any) *Row {
	rows, err := tx.Query(sql, args...)
	return &Row{rows: rows, err: err}
}

func (tx *Tx) runOne(flags uint8, sql string, args []any) (abi.Result, error) {
	if tx.done {
		return abi.Result{}, ErrTxDone
	}
	req, err := appendStatement(abi.AppendU32(reqBuf[:0], 1), flags, sql, args)
	reqBuf = req
	if err != nil {
		return abi.Result{}, err
	}
	results, err := call(req, flags&abi.FlagRows != 0)
	if err != nil {
		return abi.Result{}, err
	}
	if len(results) != 1 {
		return abi.Result{}, fmt.Errorf("guest: host answered %d results for 1 statement", len(results))
	}
	if r := results[0]; r.Code != 0 {
		return abi.Result{}, &Error{Code: int(r.Code), Message: r.Message}
	}
	return results[0], nil
}

// call sends an encoded request to the host and decodes its response. With
// keep, the response is copied first so its values outlive the next call.
func call(req []byte, keep bool) ([]abi.Result, error) {
	resp, err := roundTrip(req)
	if err != nil {
		return nil, err
	}
	if keep {
		resp = slices.Clone(resp)
	}
	results, err := abi.DecodeResponse(resp)
	if err != nil {
		return nil, fmt.Errorf("guest: %w", err)
	}
	return results, nil
}

// Batch collects statements to run in one crossing to the host, the
// cheapest way to run many: in a browser each crossing costs tens of
// microseconds.
type Batch struct {
	tx  *Tx
	req []byte
	n   int
	err error
}

// Batch returns an empty batch of statements.
func (tx *Tx) Batch() *Batch {
	return &Batch{tx: tx, req: abi.AppendU32(nil, 0)}
}

// Exec adds a statement with args to the batch. An args error is kept
// and returned by Run.
func (b *Batch) Exec(sql string, args ...any) {
	if b.err != nil {
		return
	}
	req, err := appendStatement(b.req, 0, sql, args)
	if err != nil {
		b.err = fmt.Errorf("batch statement %d: %w", b.n+1, err)
		return
	}
	b.req = req
	b.n++
}

// Len returns the number of statements in the batch.
func (b *Batch) Len() int { return b.n }

// Run runs the batch's statements in order, stopping at the first that
// fails. It returns the results of the statements that ran without error
// and, if one failed, its error: len(results) is then its index.
func (b *Batch) Run() ([]Result, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.tx.done {
		return nil, ErrTxDone
	}
	if b.n == 0 {
		return nil, nil
	}
	abi.PutU32(b.req, 0, uint32(b.n))
	results, err := call(b.req, false)
	if err != nil {
		return nil, err
	}
	if len(results) == 0 || len(results) > b.n {
		return nil, fmt.Errorf("guest: host answered %d results for %d statements", len(results), b.n)
	}
	out := make([]Result, 0, len(results))
	for _, r := range results {
		if r.Code != 0 {
			return out, &Error{Code: int(r.Code), Message: r.Message}
		}
		out = append(out, Result{changes: r.Changes, lastID: r.LastInsertRowID})
	}
	if len(out) != b.n {
		return out, fmt.Errorf("guest: host ran %d of %d statements without an error", len(out), b.n)
	}
	return out, nil
}

func appendStatement(b []byte, flags uint8, sql string, args []any) ([]byte, error) {
	b = abi.AppendU8(b, flags)
	b = abi.AppendString(b, sql)
	b = abi.AppendU32(b, uint32(len(args)))
	for i, a := range args {
		var err error
		if b, err = appendArg(b, a); err != nil {
			return b, fmt.Errorf("guest: arg %d: %w", i+1, err)
		}
	}
	return b, nil
}

func appendArg(b []byte, a any) ([]byte, error) {
	switch v := a.(type) {
	case nil:
		return abi.AppendNull(b), nil
	case int:
		return abi.AppendInt(b, int64(v)), nil
	case int8:
		return abi.AppendInt(b, int64(v)), nil
	case int16:
		return abi.AppendInt(b, int64(v)), nil
	case int32:
		return abi.AppendInt(b, int64(v)), nil
	case int64:
		return abi.AppendInt(b, v), nil
	case uint8:
		return abi.AppendInt(b, int64(v)), nil
	case uint16:
		return abi.AppendInt(b, int64(v)), nil
	case uint32:
		return abi.AppendInt(b, int64(v)), nil
	case uint:
		return appendUint(b, uint64(v))
	case uint64:
		return appendUint(b, v)
	case float32:
		return abi.AppendReal(b, float64(v)), nil
	case float64:
		return abi.AppendReal(b, v), nil
	case bool:
		if v {
			return abi.AppendInt(b, 1), nil
		}
		return abi.AppendInt(b, 0), nil
	case string:
		return abi.AppendText(b, v), nil
	case []byte:
		if v == nil {
			return abi.AppendNull(b), nil
		}
		return abi.AppendBlob(b, v), nil
	case *string:
		return appendPtr(b, v)
	case *int:
		return appendPtr(b, v)
	case *int64:
		return appendPtr(b, v)
	case *float64:
		return appendPtr(b, v)
	case *bool:
		return appendPtr(b, v)
	}
	return b, fmt.Errorf("unsupported type %T", a)
}

func appendUint(b []byte, v uint64) ([]byte, error) {
	if v > math.MaxInt64 {
		return b, fmt.Errorf("%d overflows int64", v)
	}
	return abi.AppendInt(b, int64(v)), nil
}

func appendPtr[T any](b []byte, p *T) ([]byte, error) {
	if p == nil {
		return abi.AppendNull(b), nil
	}
	return appendArg(b, *p)
}
