package mutatorhost

import (
	"errors"
	"fmt"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/shared/stmtlru"
)

// Exec runs a guest's SQL requests on the engine's connection during one
// call into the guest: it implements the two host imports of the ABI,
// sqlsync.run ([Exec.Run]) and sqlsync.result ([Exec.Result]), apart from
// reading and writing guest memory, which is the engine's business. An Exec
// is reused from call to call (it keeps its buffers); it is not safe for
// concurrent use.
//
// On the connection named by Keep, an Exec keeps the statements it prepares
// from one call to the next (see stmtCache), until Forget or Close
// finalizes them; a call on another connection first finalizes those kept
// on the previous one. An Exec keeps nothing by default.
type Exec struct {
	conn      *sqlite3.Conn
	maxResult int
	stmts     []abi.Statement
	out       []byte // the response being built; reused across calls
	pending   []byte // a response too big for the guest's buffer, kept for Result

	keep  *sqlite3.Conn // the connection statements may be kept on, or nil
	cache stmtCache     // the statements kept, all on one connection
	// watch, if set, hears of each statement run on keep, before it is
	// prepared (kept false) or run from the cache (kept true).
	watch func(sql []byte, kept bool)
}

// Begin starts a call: requests run on conn, and a response may take up to
// maxResult bytes. Statements kept on another connection are finalized
// first: a call on another connection means the Exec has moved on, and its
// statements must not pin the old connection open. (That connection is
// still open: it could not have closed while they were not finalized.)
// If that fails the call has not begun.
func (e *Exec) Begin(conn *sqlite3.Conn, maxResult int) error {
	if err := e.clearUnlessOn(conn); err != nil {
		return fmt.Errorf("finalize the statements kept on the previous connection: %w", err)
	}
	e.conn, e.maxResult, e.pending = conn, maxResult, nil
	return nil
}

// Keep lets the Exec keep the statements it prepares on conn from one call
// to the next; nil keeps none. The caller promises that Forget(conn), or
// Close, runs before conn closes: until its statements are finalized a
// connection cannot close. Statements kept on another connection are
// finalized, which must not run while that connection is in use elsewhere.
func (e *Exec) Keep(conn *sqlite3.Conn) error {
	e.keep = conn
	if err := e.clearUnlessOn(conn); err != nil {
		return fmt.Errorf("finalize kept statements: %w", err)
	}
	return nil
}

// clearUnlessOn finalizes the statements kept, unless they are on conn.
func (e *Exec) clearUnlessOn(conn *sqlite3.Conn) error {
	if e.cache.conn == nil || e.cache.conn == conn {
		return nil
	}
	return e.cache.clear()
}

// Forget finalizes the statements kept on conn, and keeps none on it from
// now on: to run before conn closes. It must not run during a call.
func (e *Exec) Forget(conn *sqlite3.Conn) error {
	if e.keep == conn {
		e.keep = nil
	}
	if e.cache.conn == conn && conn != nil {
		if err := e.cache.clear(); err != nil {
			return fmt.Errorf("finalize kept statements: %w", err)
		}
	}
	return nil
}

// Close finalizes every statement kept, and keeps none from now on. It
// must not run during a call.
func (e *Exec) Close() error {
	e.keep = nil
	if err := e.cache.clear(); err != nil {
		return fmt.Errorf("finalize kept statements: %w", err)
	}
	return nil
}

// Kept returns how many statements the Exec keeps prepared.
func (e *Exec) Kept() int { return e.cache.len() }

// End ends the call: requests fail until the next Begin.
func (e *Exec) End() {
	e.conn, e.pending = nil, nil
	if cap(e.out) > 1<<20 {
		e.out = nil // do not pin a large result's buffer
	}
}

// Active reports whether a call is under way.
func (e *Exec) Active() bool { return e.conn != nil }

// Run is sqlsync.run: it runs the encoded request req and returns the
// length n of the encoded response. If n <= outCap, out is the response,
// to be written at the guest's out_ptr; otherwise out is nil and the
// response is kept for Result. An error (a request outside a call, or a
// malformed one) is the guest's bug: the host traps the guest with it.
// out is valid until the next call of Run.
func (e *Exec) Run(req []byte, outCap uint32) (out []byte, n uint32, err error) {
	if e.conn == nil {
		return nil, 0, fmt.Errorf("sqlsync.%s called outside a mutation or migration", abi.ImportRun)
	}
	e.pending = nil
	resp, err := e.run(req)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlsync.%s: %w", abi.ImportRun, err)
	}
	n = uint32(len(resp))
	if n > outCap {
		e.pending = resp
		return nil, n, nil
	}
	return resp, n, nil
}

// Result is sqlsync.result: it returns the length n of the kept response
// (0 if none is kept) and, if n <= outCap, the response itself, to be
// written at the guest's out_ptr; then the response is forgotten. The
// host calls Forget if it cannot write it.
func (e *Exec) Result(outCap uint32) (out []byte, n uint32, err error) {
	if e.conn == nil {
		return nil, 0, fmt.Errorf("sqlsync.%s called outside a mutation or migration", abi.ImportResult)
	}
	n = uint32(len(e.pending))
	if e.pending != nil && n <= outCap {
		out, e.pending = e.pending, nil
	}
	return out, n, nil
}

// run executes an encoded request and returns the encoded response.
func (e *Exec) run(req []byte) ([]byte, error) {
	stmts, err := abi.DecodeRequest(req, e.stmts)
	if err != nil {
		return nil, err
	}
	e.stmts = stmts
	out := abi.AppendU32(e.out[:0], 0)
	n := 0
	for _, s := range stmts {
		start := len(out)
		out, err = e.statement(out, s)
		n++
		if err != nil {
			out = appendError(out[:start], err)
			break
		}
	}
	abi.PutU32(out, 0, uint32(n))
	e.out = out
	return out, nil
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
//
// A text kept prepared (see stmtCache) runs without being checked or
// parsed again: it passed the guard, which reads the text alone, and it
// holds one statement, so the rules on parameters and rows alone in their
// text hold too. With the wrong number of parameters it is dropped and
// goes the long way, so that the error is the one it has always been.
func (e *Exec) statement(out []byte, s abi.Statement) ([]byte, error) {
	rows := s.Flags&abi.FlagRows != 0
	kept := e.cache.get(e.conn, s.SQL)
	if kept != nil && kept.Val != len(s.Params) {
		if err := e.cache.drop(s.SQL); err != nil {
			return out, fmt.Errorf("finalize a kept statement: %w", err)
		}
		kept = nil
	}
	if e.watch != nil && e.keep == e.conn {
		e.watch(s.SQL, kept != nil)
	}
	var sql string
	if kept == nil {
		sql = string(s.SQL)
		if err := checkNames(sql); err != nil {
			return out, err
		}
	}
	// Result header; changes, rowid and the row count are patched in.
	start := len(out)
	out = abi.AppendI32(out, 0)
	out = abi.AppendI64(out, 0)
	out = abi.AppendI64(out, 0)
	var changes int64
	wroteColumns := false
	if kept != nil {
		before := e.conn.TotalChanges()
		var err error
		if out, err = e.runKept(out, kept, s, rows); err != nil {
			return out, err
		}
		if e.conn.TotalChanges() != before {
			changes += e.conn.Changes()
		}
		wroteColumns = rows
	}
	single := rows || len(s.Params) > 0
	for first := true; kept == nil; first = false {
		if err := checkStatement(sql); err != nil {
			return out, err
		}
		stmt, tail, err := e.conn.Prepare(sql)
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
		// The first statement of a text that holds no other is kept.
		keep := first && e.keep == e.conn && len(sql) <= stmtCacheMaxSQL && blank(tail)
		before := e.conn.TotalChanges()
		out, err = e.runNew(out, stmt, sql, keep, s, rows)
		if err != nil {
			return out, err
		}
		if e.conn.TotalChanges() != before {
			changes += e.conn.Changes()
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
	abi.PutI64(out, start+12, e.conn.LastInsertRowID())
	return out, nil
}

// runNew runs stmt, just prepared from the start of sql, then keeps it for
// sql if keep is set, or finalizes it: finalizes it in any case if the run
// panics (the driver panics when SQLite runs out of memory), so that no
// statement is left to keep the connection from closing.
func (e *Exec) runNew(out []byte, stmt *sqlite3.Stmt, sql string, keep bool, s abi.Statement, rows bool) (_ []byte, err error) {
	done := false
	defer func() {
		if !done || !keep {
			stmt.Close()
			return
		}
		stmt.Reset() // the run's error, if any, is err already
		stmt.ClearBindings()
		e.cache.put(e.conn, sql, stmt)
	}()
	out, err = e.step(out, stmt, stmt.BindCount(), s, rows)
	done = true
	return out, err
}

// runKept runs a kept statement, then resets it and clears its bindings,
// or drops it if the run panics.
func (e *Exec) runKept(out []byte, kept *stmtlru.Entry[int], s abi.Statement, rows bool) (_ []byte, err error) {
	done := false
	defer func() {
		if !done {
			e.cache.drop(s.SQL) // the panic is the news, not this
			return
		}
		kept.Stmt.Reset() // the run's error, if any, is err already
		kept.Stmt.ClearBindings()
	}()
	// As preparing the text again would.
	if e.conn.GetInterrupt().Err() != nil {
		done = true
		return out, sqlite3.INTERRUPT
	}
	out, err = e.step(out, kept.Stmt, kept.Val, s, rows)
	done = true
	return out, err
}

// step binds s's parameters to stmt, which takes nparams, and runs it,
// appending its columns and rows when rows is set. The columns are read
// after the first step: a kept statement whose schema changed is prepared
// again as it steps, and may have other columns than before.
func (e *Exec) step(out []byte, stmt *sqlite3.Stmt, nparams int, s abi.Statement, rows bool) ([]byte, error) {
	if got, want := len(s.Params), nparams; got != want {
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
	more := stmt.Step()
	ncol := stmt.ColumnCount()
	out = abi.AppendU32(out, uint32(ncol))
	for i := range ncol {
		out = abi.AppendString(out, stmt.ColumnName(i))
	}
	countAt := len(out)
	out = abi.AppendU32(out, 0)
	n := 0
	for ; more; more = stmt.Step() {
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
		if len(out) > e.maxResult {
			return out, &hostError{abi.CodeTooBig, fmt.Sprintf("sqlsync: query result exceeds the limit of %d bytes", e.maxResult)}
		}
	}
	if err := stmt.Err(); err != nil {
		return out, err
	}
	abi.PutU32(out, countAt, uint32(n))
	return out, nil
}
