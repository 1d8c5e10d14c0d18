// Package sqlrows runs SQL on a go-sqlite3 connection with Go values for
// arguments and collects whole results: the small helper the engine, the
// test mutator and the benchmarks share.
package sqlrows

import (
	"fmt"
	"strings"

	"github.com/ncruces/go-sqlite3"
)

// Rows is the whole result of a query: column names and typed values (nil,
// int64, float64, string or []byte).
type Rows struct {
	Columns []string
	Values  [][]any
}

// Query runs one statement with args and collects every row.
func Query(conn *sqlite3.Conn, sql string, args ...any) (Rows, error) {
	stmt, tail, err := conn.Prepare(sql)
	if err != nil {
		return Rows{}, err
	}
	defer stmt.Close()
	if strings.Trim(tail, " \t\r\n;") != "" {
		return Rows{}, fmt.Errorf("query: more than one statement in %q", sql)
	}
	return Collect(stmt, args...)
}

// Collect binds args to a prepared statement, runs it and collects every
// row, then resets it, so that a cached statement can run again.
func Collect(stmt *sqlite3.Stmt, args ...any) (rows Rows, err error) {
	defer func() {
		if rerr := stmt.Reset(); err == nil && rerr != nil {
			rows, err = Rows{}, rerr
		}
	}()
	if err := bind(stmt, args); err != nil {
		return Rows{}, err
	}
	for stmt.Step() {
		if rows.Columns == nil {
			// After the first step: a statement SQLite prepared again
			// for a schema change may have other columns.
			rows.Columns = columns(stmt)
		}
		row := make([]any, stmt.ColumnCount())
		for i := range row {
			switch stmt.ColumnType(i) {
			case sqlite3.INTEGER:
				row[i] = stmt.ColumnInt64(i)
			case sqlite3.FLOAT:
				row[i] = stmt.ColumnFloat(i)
			case sqlite3.TEXT:
				row[i] = stmt.ColumnText(i)
			case sqlite3.BLOB:
				row[i] = stmt.ColumnBlob(i, nil)
			}
		}
		rows.Values = append(rows.Values, row)
	}
	if err := stmt.Err(); err != nil {
		return Rows{}, err
	}
	if rows.Columns == nil {
		rows.Columns = columns(stmt)
	}
	return rows, nil
}

func columns(stmt *sqlite3.Stmt) []string {
	var out []string
	for i := range stmt.ColumnCount() {
		out = append(out, stmt.ColumnName(i))
	}
	return out
}

// Exec runs one statement with args.
func Exec(conn *sqlite3.Conn, sql string, args ...any) error {
	if len(args) == 0 {
		return conn.Exec(sql)
	}
	stmt, _, err := conn.Prepare(sql)
	if err != nil {
		return err
	}
	defer stmt.Close()
	if err := bind(stmt, args); err != nil {
		return err
	}
	return stmt.Exec()
}

func bind(stmt *sqlite3.Stmt, args []any) error {
	if got, want := len(args), stmt.BindCount(); got != want {
		return fmt.Errorf("statement takes %d args, got %d", want, got)
	}
	for i, a := range args {
		var err error
		switch v := a.(type) {
		case nil:
			err = stmt.BindNull(i + 1)
		case int:
			err = stmt.BindInt64(i+1, int64(v))
		case int64:
			err = stmt.BindInt64(i+1, v)
		case uint64:
			err = stmt.BindInt64(i+1, int64(v))
		case float64:
			err = stmt.BindFloat(i+1, v)
		case bool:
			err = stmt.BindBool(i+1, v)
		case string:
			err = stmt.BindText(i+1, v)
		case []byte:
			err = stmt.BindBlob(i+1, v)
		default:
			return fmt.Errorf("arg %d: unsupported type %T", i+1, a)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
