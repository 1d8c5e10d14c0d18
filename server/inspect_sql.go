package server

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// The inspector's SQL console: one read-only statement against a
// document's current state, on a connection of its own opened read-only
// (vfs.Database.OpenReadOnly), behind an authorizer that allows reading
// only, and bounded in time, rows, bytes and memory.

// Bounds of the SQL console.
const (
	// consoleTimeout bounds one query. While it reads, the document's
	// commits wait (as for any reader), so it is short.
	consoleTimeout = time.Second
	// consoleMaxRows is the most rows an answer holds; a request may ask
	// for fewer.
	consoleMaxRows = 1000
	// consoleMaxBytes bounds the values of an answer (text and blob
	// lengths, 8 bytes per number).
	consoleMaxBytes = 1 << 20
	// consoleMaxValue bounds one text or blob value; longer ones are cut.
	consoleMaxValue = 64 << 10
	// consoleHeapBytes bounds SQLite's memory for one query.
	consoleHeapBytes = 64 << 20
	// consoleConcurrency is the most console queries running at once on
	// the coordinator.
	consoleConcurrency = 2
)

// consoleError is a query the console refuses or that fails, with its
// code in the API's answer: "sql_error", "read_only", "timeout",
// "too_much_memory" or "bad_request".
type consoleError struct {
	code string
	msg  string
}

func (e *consoleError) Error() string { return e.msg }

// InspectQueryRequest is the body of POST /v1/inspect/docs/{doc}/query.
type InspectQueryRequest struct {
	SQL string `json:"sql"`
	// MaxRows, if set, asks for fewer rows than consoleMaxRows.
	MaxRows int `json:"max_rows,omitempty"`
}

// InspectQueryResult is a console query's answer. Values are JSON: null,
// numbers (integers beyond ±2^53 as strings, so that JavaScript keeps
// their digits; NaN and infinities as strings), strings, and blobs as
// {"blob_hex": "…", "bytes": n}.
type InspectQueryResult struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
	// Truncated says the statement had more rows than the answer holds:
	// TruncatedBy is "rows" (the row limit) or "bytes" (the size limit).
	Truncated   bool   `json:"truncated"`
	TruncatedBy string `json:"truncated_by,omitempty"`
	// ClippedValues counts values cut to consoleMaxValue bytes.
	ClippedValues int `json:"clipped_values,omitempty"`
	// LSN is the document's LSN when the query began.
	LSN       uint64  `json:"lsn"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

func (s *Server) inspectQuery(w http.ResponseWriter, r *http.Request, claims *Claims) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		inspectError(w, http.StatusUnsupportedMediaType, "bad_request", "the query must be sent as JSON (Content-Type: application/json): {\"sql\": \"SELECT …\"}")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInspectBody))
	if err != nil {
		inspectError(w, http.StatusRequestEntityTooLarge, "bad_request", fmt.Sprintf("the request is larger than %d bytes", maxInspectBody))
		return
	}
	var req InspectQueryRequest
	if err := json.Unmarshal(body, &req); err != nil {
		inspectError(w, http.StatusBadRequest, "bad_request", "the request is not JSON of the form {\"sql\": \"SELECT …\"}: "+err.Error())
		return
	}
	d, release := s.openDocFor(w, r, claims)
	if d == nil {
		return
	}
	defer release()
	select {
	case s.inspect.console <- struct{}{}:
		defer func() { <-s.inspect.console }()
	default:
		inspectError(w, http.StatusServiceUnavailable, "busy", fmt.Sprintf("busy: %d console queries are running; retry in a moment", consoleConcurrency))
		return
	}
	maxRows := consoleMaxRows
	if req.MaxRows > 0 && req.MaxRows < maxRows {
		maxRows = req.MaxRows
	}
	ctx, cancel := context.WithTimeout(r.Context(), consoleTimeout)
	defer cancel()
	res, err := runConsole(ctx, d.coord.Database(), req.SQL, maxRows)
	var ce *consoleError
	switch {
	case errors.As(err, &ce):
		inspectError(w, http.StatusBadRequest, ce.code, ce.msg)
		return
	case err != nil:
		d.log.Error("inspector console", "err", err)
		inspectError(w, http.StatusInternalServerError, "internal", "the query could not run: "+err.Error())
		return
	}
	d.log.Debug("inspector console query", "sql", clip(req.SQL, 200), "rows", len(res.Rows), "truncated", res.Truncated)
	writeInspectJSON(w, res)
}

// runConsole runs one read-only statement on a new read-only connection
// to db, within ctx, returning at most maxRows rows. A statement refused or
// failed is a *consoleError; other errors are the coordinator's.
func runConsole(ctx context.Context, db *vfs.Database, sql string, maxRows int) (res InspectQueryResult, err error) {
	if strings.TrimSpace(sql) == "" {
		return res, &consoleError{"bad_request", "no SQL: give one SELECT statement"}
	}
	start := time.Now()
	res.LSN = db.Store().LSN()
	conn, err := db.OpenReadOnly()
	if err != nil {
		return res, fmt.Errorf("console: %w", err)
	}
	defer conn.Close()
	// The driver panics when SQLite runs out of memory.
	defer func() {
		if p := recover(); p != nil {
			res, err = InspectQueryResult{}, &consoleError{"too_much_memory", fmt.Sprintf("the query needs more than %d MiB of memory: narrow it", consoleHeapBytes>>20)}
		}
	}()
	conn.HardHeapLimit(consoleHeapBytes)
	var refused []string
	err = conn.SetAuthorizer(func(action sqlite3.AuthorizerActionCode, name3, name4, _, _ string) sqlite3.AuthorizerReturnCode {
		if consoleAllows(action, name3, name4) {
			return sqlite3.AUTH_OK
		}
		refused = append(refused, describeAction(action, name3, name4))
		return sqlite3.AUTH_DENY
	})
	if err != nil {
		return res, fmt.Errorf("console: set authorizer: %w", err)
	}
	conn.SetInterrupt(ctx)
	readOnly := func() error {
		return &consoleError{"read_only", fmt.Sprintf("read-only: the console runs only SELECT statements and read-only PRAGMAs; this statement would %s", strings.Join(refused, ", "))}
	}
	stmt, tail, err := conn.Prepare(sql)
	if err != nil {
		if len(refused) > 0 {
			return res, readOnly()
		}
		return res, &consoleError{"sql_error", "bad SQL: " + sqliteMessage(err)}
	}
	if stmt == nil {
		return res, &consoleError{"bad_request", "no SQL statement, only comments: give one SELECT statement"}
	}
	defer stmt.Close()
	if more, err := hasStatement(conn, tail); more || err != nil {
		return res, &consoleError{"bad_request", "one statement at a time: the console runs a single statement, and this SQL holds more after the first"}
	}
	if !stmt.ReadOnly() {
		if len(refused) == 0 {
			refused = []string{"write to the database"}
		}
		return res, readOnly()
	}
	size := 0
	for stmt.Step() {
		if res.Columns == nil {
			res.Columns = stmtColumns(stmt)
		}
		if len(res.Rows) == maxRows {
			res.Truncated, res.TruncatedBy = true, "rows"
			break
		}
		row := make([]any, stmt.ColumnCount())
		rowSize := 0
		for i := range row {
			var n int
			var clipped bool
			row[i], n, clipped = consoleValue(stmt, i)
			rowSize += n
			if clipped {
				res.ClippedValues++
			}
		}
		if size+rowSize > consoleMaxBytes {
			res.Truncated, res.TruncatedBy = true, "bytes"
			break
		}
		size += rowSize
		res.Rows = append(res.Rows, row)
	}
	if err := stmt.Err(); err != nil {
		switch {
		case ctx.Err() != nil || errors.Is(err, sqlite3.INTERRUPT):
			return InspectQueryResult{}, &consoleError{"timeout", fmt.Sprintf("the query ran longer than %v and was interrupted: narrow it (WHERE, LIMIT)", consoleTimeout)}
		case errors.Is(err, sqlite3.NOMEM):
			return InspectQueryResult{}, &consoleError{"too_much_memory", fmt.Sprintf("the query needs more than %d MiB of memory: narrow it", consoleHeapBytes>>20)}
		case len(refused) > 0:
			return InspectQueryResult{}, readOnly()
		}
		return InspectQueryResult{}, &consoleError{"sql_error", "the query failed: " + sqliteMessage(err)}
	}
	if res.Columns == nil {
		res.Columns = stmtColumns(stmt)
	}
	if res.Rows == nil {
		res.Rows = [][]any{}
	}
	res.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// consoleAllows is the console's authorizer: reading tables, selecting,
// calling functions, recursive CTEs, and the pragmas that only read. Every
// write, transaction, ATTACH (which could reach files on the
// coordinator's disk) and VACUUM INTO is refused, whatever the connection
// being read-only would also refuse.
func consoleAllows(action sqlite3.AuthorizerActionCode, name3, name4 string) bool {
	switch action {
	case sqlite3.AUTH_SELECT, sqlite3.AUTH_READ, sqlite3.AUTH_FUNCTION, sqlite3.AUTH_RECURSIVE:
		return true
	case sqlite3.AUTH_PRAGMA:
		return consolePragmas[strings.ToLower(name3)] || (name4 == "" && consoleBarePragmas[strings.ToLower(name3)])
	}
	return false
}

// consolePragmas are the pragmas that take an argument and only read.
var consolePragmas = map[string]bool{
	"foreign_key_check": true, "foreign_key_list": true, "index_info": true, "index_list": true,
	"index_xinfo": true, "integrity_check": true, "quick_check": true, "table_info": true,
	"table_list": true, "table_xinfo": true,
}

// consoleBarePragmas are the pragmas that only read when given no value.
var consoleBarePragmas = map[string]bool{
	"application_id": true, "collation_list": true, "compile_options": true, "data_version": true,
	"database_list": true, "encoding": true, "foreign_keys": true, "freelist_count": true,
	"function_list": true, "module_list": true, "page_count": true, "page_size": true,
	"pragma_list": true, "schema_version": true, "user_version": true,
}

// describeAction says what a refused authorizer action would do.
func describeAction(action sqlite3.AuthorizerActionCode, name3, name4 string) string {
	switch strings.ToLower(name3) {
	case "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema":
		if action == sqlite3.AUTH_INSERT || action == sqlite3.AUTH_UPDATE || action == sqlite3.AUTH_DELETE {
			return "change the schema"
		}
	}
	switch action {
	case sqlite3.AUTH_INSERT:
		return "insert into " + name3
	case sqlite3.AUTH_UPDATE:
		return "update " + name3
	case sqlite3.AUTH_DELETE:
		return "delete from " + name3
	case sqlite3.AUTH_PRAGMA:
		if name4 != "" {
			return "set or run PRAGMA " + name3 + "(" + name4 + ")"
		}
		return "run PRAGMA " + name3
	case sqlite3.AUTH_TRANSACTION, sqlite3.AUTH_SAVEPOINT:
		return "begin or end a transaction"
	case sqlite3.AUTH_ATTACH, sqlite3.AUTH_DETACH:
		return "attach or detach a database"
	case sqlite3.AUTH_CREATE_INDEX, sqlite3.AUTH_CREATE_TABLE, sqlite3.AUTH_CREATE_TRIGGER, sqlite3.AUTH_CREATE_VIEW,
		sqlite3.AUTH_CREATE_TEMP_INDEX, sqlite3.AUTH_CREATE_TEMP_TABLE, sqlite3.AUTH_CREATE_TEMP_TRIGGER,
		sqlite3.AUTH_CREATE_TEMP_VIEW, sqlite3.AUTH_CREATE_VTABLE:
		return "create " + name3
	case sqlite3.AUTH_DROP_INDEX, sqlite3.AUTH_DROP_TABLE, sqlite3.AUTH_DROP_TRIGGER, sqlite3.AUTH_DROP_VIEW,
		sqlite3.AUTH_DROP_TEMP_INDEX, sqlite3.AUTH_DROP_TEMP_TABLE, sqlite3.AUTH_DROP_TEMP_TRIGGER,
		sqlite3.AUTH_DROP_TEMP_VIEW, sqlite3.AUTH_DROP_VTABLE:
		return "drop " + name3
	case sqlite3.AUTH_ALTER_TABLE:
		return "alter " + name4
	}
	return fmt.Sprintf("do what the console does not allow (authorizer action %d)", action)
}

// hasStatement reports whether tail, what follows the first statement,
// holds another (rather than only spaces, semicolons and comments).
func hasStatement(conn *sqlite3.Conn, tail string) (bool, error) {
	if strings.Trim(tail, " \t\r\n;") == "" {
		return false, nil
	}
	stmt, _, err := conn.Prepare(tail)
	if stmt != nil {
		stmt.Close()
		return true, nil
	}
	return false, err
}

// sqliteMessage is err's text without the driver's "sqlite3: " prefix.
func sqliteMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "sqlite3: ")
}

func stmtColumns(stmt *sqlite3.Stmt) []string {
	out := make([]string, stmt.ColumnCount())
	for i := range out {
		out[i] = stmt.ColumnName(i)
	}
	return out
}

// maxSafeInteger is the largest integer a JavaScript number holds exactly.
const maxSafeInteger = 1<<53 - 1

// consoleValue returns column i of the current row as a JSON value, the
// bytes it counts for, and whether it was clipped to consoleMaxValue.
func consoleValue(stmt *sqlite3.Stmt, i int) (any, int, bool) {
	switch stmt.ColumnType(i) {
	case sqlite3.INTEGER:
		v := stmt.ColumnInt64(i)
		if v > maxSafeInteger || v < -maxSafeInteger {
			return strconv.FormatInt(v, 10), 8, false
		}
		return v, 8, false
	case sqlite3.FLOAT:
		v := stmt.ColumnFloat(i)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'g', -1, 64), 8, false
		}
		return v, 8, false
	case sqlite3.TEXT:
		b := stmt.ColumnRawText(i)
		n, clipped := len(b), len(b) > consoleMaxValue
		if clipped {
			cut := consoleMaxValue
			for cut > 0 && !utf8.RuneStart(b[cut]) {
				cut--
			}
			return string(b[:cut]) + "…", cut, true
		}
		return string(b), n, false
	case sqlite3.BLOB:
		b := stmt.ColumnRawBlob(i)
		n, clipped := len(b), len(b) > consoleMaxValue/2
		if clipped {
			b = b[:consoleMaxValue/2]
		}
		return map[string]any{"blob_hex": hex.EncodeToString(b), "bytes": n}, 2 * len(b), clipped
	}
	return nil, 0, false
}
