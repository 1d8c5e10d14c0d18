package wasmhost

import (
	"context"
	"errors"
	"fmt"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// callState is what the host imports need during one mutator call: the
// engine's connection and reusable buffers. It travels in the call's
// context, so the host functions (defined once per runtime) find it.
type callState struct {
	conn      *sqlite3.Conn
	maxResult int
	stmts     []abi.Statement
	out       []byte // the response being built; reused across calls
	pending   []byte // a response too big for the guest's buffer, kept for sqlsync.result
}

type callKey struct{}

func callFrom(ctx context.Context, fn string) *callState {
	c, _ := ctx.Value(callKey{}).(*callState)
	if c == nil || c.conn == nil {
		// A panic in a host function traps the guest; wazero returns it
		// from the guest's call as an error.
		panic(fmt.Errorf("sqlsync.%s called outside a mutation or migration", fn))
	}
	return c
}

// instantiateHostModule defines the sqlsync imports in rt.
func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	i32 := api.ValueTypeI32
	_, err := rt.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostRun), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("req_ptr", "req_len", "out_ptr", "out_cap").
		Export(abi.ImportRun).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostResult), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("out_ptr", "out_cap").
		Export(abi.ImportResult).
		Instantiate(ctx)
	return err
}

// hostRun is sqlsync.run(req_ptr, req_len, out_ptr, out_cap) -> len.
func hostRun(ctx context.Context, mod api.Module, stack []uint64) {
	c := callFrom(ctx, abi.ImportRun)
	reqPtr, reqLen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	outPtr, outCap := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	mem := mod.Memory()
	req, ok := mem.Read(reqPtr, reqLen)
	if !ok {
		panic(fmt.Errorf("sqlsync.run: request at %d+%d lies outside memory", reqPtr, reqLen))
	}
	resp := c.run(req)
	n := uint32(len(resp))
	c.pending = nil
	if n <= outCap {
		if !mem.Write(outPtr, resp) {
			panic(fmt.Errorf("sqlsync.run: output buffer at %d+%d lies outside memory", outPtr, n))
		}
	} else {
		c.pending = resp
	}
	stack[0] = api.EncodeU32(n)
}

// hostResult is sqlsync.result(out_ptr, out_cap) -> len.
func hostResult(ctx context.Context, mod api.Module, stack []uint64) {
	c := callFrom(ctx, abi.ImportResult)
	outPtr, outCap := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	n := uint32(len(c.pending))
	if c.pending != nil && n <= outCap {
		if !mod.Memory().Write(outPtr, c.pending) {
			panic(fmt.Errorf("sqlsync.result: output buffer at %d+%d lies outside memory", outPtr, n))
		}
		c.pending = nil
	}
	stack[0] = api.EncodeU32(n)
}

// run executes an encoded request and returns the encoded response. A
// malformed request is the guest's bug: it panics, which traps the guest.
func (c *callState) run(req []byte) []byte {
	stmts, err := abi.DecodeRequest(req, c.stmts)
	if err != nil {
		panic(fmt.Errorf("sqlsync.run: %w", err))
	}
	c.stmts = stmts
	out := abi.AppendU32(c.out[:0], 0)
	n := 0
	for _, s := range stmts {
		start := len(out)
		out, err = c.statement(out, s)
		n++
		if err != nil {
			out = appendError(out[:start], err)
			break
		}
	}
	abi.PutU32(out, 0, uint32(n))
	c.out = out
	return out
}

// hostError is an error of the host's own, with the SQLite code it maps to.
type hostError struct {
	code int32
	msg  string
}

func (e *hostError) Error() string { return e.msg }

func appendError(out []byte, err error) []byte {
	return abi.AppendResult(out, abi.Result{Code: errorCode(err), Message: err.Error()})
}

// errorCode maps err to an SQLite extended result code.
func errorCode(err error) int32 {
	var (
		he *hostError
		rf *refusal
		se *sqlite3.Error
		xc sqlite3.ExtendedErrorCode
		ec sqlite3.ErrorCode
	)
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.As(err, &rf):
		return abi.CodeAuth
	case errors.As(err, &se):
		return int32(se.ExtendedCode())
	case errors.As(err, &xc):
		return int32(xc)
	case errors.As(err, &ec):
		return int32(ec)
	}
	return abi.CodeError
}

// statement runs one statement of a request, appending its result to out.
// On error out may hold a partial result: the caller truncates it.
func (c *callState) statement(out []byte, s abi.Statement) ([]byte, error) {
	sql := string(s.SQL)
	if err := checkNames(sql); err != nil {
		return out, err
	}
	rows := s.Flags&abi.FlagRows != 0
	single := rows || len(s.Params) > 0
	// Result header; changes, rowid and the row count are patched in.
	start := len(out)
	out = abi.AppendI32(out, 0)
	out = abi.AppendI64(out, 0)
	out = abi.AppendI64(out, 0)
	var changes int64
	wroteColumns := false
	for {
		if err := checkStatement(sql); err != nil {
			return out, err
		}
		stmt, tail, err := c.conn.Prepare(sql)
		if err != nil {
			return out, err
		}
		if stmt == nil {
			break // only comments and whitespace were left
		}
		if single && !blank(tail) {
			stmt.Close()
			return out, &hostError{abi.CodeError, "sqlsync: a statement with parameters or rows must be alone in its SQL text"}
		}
		before := c.conn.TotalChanges()
		out, err = c.step(out, stmt, s, rows)
		stmt.Close()
		if err != nil {
			return out, err
		}
		if c.conn.TotalChanges() != before {
			changes += c.conn.Changes()
		}
		wroteColumns = wroteColumns || rows
		sql = tail
		if sql == "" {
			break
		}
	}
	if !wroteColumns {
		out = abi.AppendU32(out, 0) // no columns
		out = abi.AppendU32(out, 0) // no rows
	}
	abi.PutI64(out, start+4, changes)
	abi.PutI64(out, start+12, c.conn.LastInsertRowID())
	return out, nil
}

// step binds s's parameters to stmt and runs it, appending its columns and
// rows when rows is set.
func (c *callState) step(out []byte, stmt *sqlite3.Stmt, s abi.Statement, rows bool) ([]byte, error) {
	if got, want := len(s.Params), stmt.BindCount(); got != want {
		return out, &hostError{abi.CodeRange, fmt.Sprintf("sqlsync: statement takes %d parameters, got %d", want, got)}
	}
	for i, v := range s.Params {
		var err error
		switch v.Type {
		case abi.TypeNull:
			err = stmt.BindNull(i + 1)
		case abi.TypeInteger:
			err = stmt.BindInt64(i+1, v.Int)
		case abi.TypeReal:
			err = stmt.BindFloat(i+1, v.Real)
		case abi.TypeText:
			err = stmt.BindText(i+1, string(v.Bytes))
		case abi.TypeBlob:
			err = stmt.BindBlob(i+1, v.Bytes)
		}
		if err != nil {
			return out, fmt.Errorf("bind parameter %d: %w", i+1, err)
		}
	}
	if !rows {
		return out, stmt.Exec()
	}
	ncol := stmt.ColumnCount()
	out = abi.AppendU32(out, uint32(ncol))
	for i := range ncol {
		out = abi.AppendString(out, stmt.ColumnName(i))
	}
	countAt := len(out)
	out = abi.AppendU32(out, 0)
	n := 0
	for stmt.Step() {
		for i := range ncol {
			switch stmt.ColumnType(i) {
			case sqlite3.INTEGER:
				out = abi.AppendInt(out, stmt.ColumnInt64(i))
			case sqlite3.FLOAT:
				out = abi.AppendReal(out, stmt.ColumnFloat(i))
			case sqlite3.TEXT:
				out = abi.AppendRawText(out, stmt.ColumnRawText(i))
			case sqlite3.BLOB:
				out = abi.AppendBlob(out, stmt.ColumnRawBlob(i))
			default:
				out = abi.AppendNull(out)
			}
		}
		n++
		if len(out) > c.maxResult {
			return out, &hostError{abi.CodeTooBig, fmt.Sprintf("sqlsync: query result exceeds the limit of %d bytes", c.maxResult)}
		}
	}
	if err := stmt.Err(); err != nil {
		return out, err
	}
	abi.PutU32(out, countAt, uint32(n))
	return out, nil
}
