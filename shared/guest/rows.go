package guest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/sqlsync-go/sqlsync/shared/abi"
)

// Rows is the result of a query, iterated like database/sql's:
//
//	rows, err := tx.Query(`SELECT id, title FROM items`)
//	if err != nil { return err }
//	for rows.Next() {
//		var id, title string
//		if err := rows.Scan(&id, &title); err != nil { return err }
//	}
type Rows struct {
	cols []string
	vals []abi.Value
	n    int
	row  int
}

// Columns returns the names of the result's columns.
func (r *Rows) Columns() []string { return r.cols }

// Next moves to the next row, reporting whether there is one.
func (r *Rows) Next() bool {
	if r.row+1 >= r.n {
		r.row = r.n
		return false
	}
	r.row++
	return true
}

// Err returns nil: the whole result arrived before Query returned, so
// iteration cannot fail. It is here for database/sql habits.
func (r *Rows) Err() error { return nil }

// Close ends the iteration early; it is optional.
func (r *Rows) Close() error {
	r.row = r.n
	return nil
}

// Scan copies the current row's columns into dest, which must hold one
// pointer per column: *any, *string, *[]byte, *int, *int32, *int64,
// *float64 or *bool. A NULL scans as the zero value (nil for *any and
// *[]byte); use *any to tell NULL apart.
func (r *Rows) Scan(dest ...any) error {
	if r.row < 0 || r.row >= r.n {
		return errors.New("guest: Scan called without a successful Next")
	}
	nc := len(r.cols)
	if len(dest) != nc {
		return fmt.Errorf("guest: Scan: %d destinations for %d columns", len(dest), nc)
	}
	for i, d := range dest {
		if err := assign(d, r.vals[r.row*nc+i]); err != nil {
			return fmt.Errorf("guest: Scan column %d (%s): %w", i, r.cols[i], err)
		}
	}
	return nil
}

// Row is the result of [Tx.QueryRow].
type Row struct {
	rows *Rows
	err  error
}

// Scan copies the first row's columns into dest as [Rows.Scan] does, or
// returns [ErrNoRows] if the query returned none, or the query's error.
func (r *Row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	if !r.rows.Next() {
		return ErrNoRows
	}
	return r.rows.Scan(dest...)
}

// Err returns the query's error, if any.
func (r *Row) Err() error { return r.err }

func assign(dest any, v abi.Value) error {
	switch d := dest.(type) {
	case *any:
		switch v.Type {
		case abi.TypeNull:
			*d = nil
		case abi.TypeInteger:
			*d = v.Int
		case abi.TypeReal:
			*d = v.Real
		case abi.TypeText:
			*d = string(v.Bytes)
		case abi.TypeBlob:
			*d = slices.Clone(v.Bytes)
		}
	case *string:
		*d = text(v)
	case *[]byte:
		switch v.Type {
		case abi.TypeNull:
			*d = nil
		case abi.TypeText, abi.TypeBlob:
			*d = slices.Clone(v.Bytes)
		default:
			*d = []byte(text(v))
		}
	case *int64:
		i, err := toInt(v, math.MinInt64, math.MaxInt64)
		*d = i
		return err
	case *int:
		i, err := toInt(v, math.MinInt, math.MaxInt)
		*d = int(i)
		return err
	case *int32:
		i, err := toInt(v, math.MinInt32, math.MaxInt32)
		*d = int32(i)
		return err
	case *float64:
		f, err := toFloat(v)
		*d = f
		return err
	case *bool:
		i, err := toInt(v, math.MinInt64, math.MaxInt64)
		*d = i != 0
		return err
	default:
		return fmt.Errorf("unsupported destination %T", dest)
	}
	return nil
}

func text(v abi.Value) string {
	switch v.Type {
	case abi.TypeInteger:
		return strconv.FormatInt(v.Int, 10)
	case abi.TypeReal:
		return strconv.FormatFloat(v.Real, 'g', -1, 64)
	case abi.TypeText, abi.TypeBlob:
		return string(v.Bytes)
	}
	return ""
}

func toInt(v abi.Value, lo, hi int64) (int64, error) {
	var i int64
	switch v.Type {
	case abi.TypeNull:
		return 0, nil
	case abi.TypeInteger:
		i = v.Int
	case abi.TypeReal:
		if v.Real != math.Trunc(v.Real) || v.Real < math.MinInt64 || v.Real >= math.MaxInt64 {
			return 0, fmt.Errorf("REAL %v is not an integer", v.Real)
		}
		i = int64(v.Real)
	case abi.TypeText:
		var err error
		if i, err = strconv.ParseInt(string(v.Bytes), 10, 64); err != nil {
			return 0, err
		}
	default:
		return 0, errors.New("cannot scan a BLOB into an integer")
	}
	if i < lo || i > hi {
		return 0, fmt.Errorf("%d out of range", i)
	}
	return i, nil
}

func toFloat(v abi.Value) (float64, error) {
	switch v.Type {
	case abi.TypeNull:
		return 0, nil
	case abi.TypeInteger:
		return float64(v.Int), nil
	case abi.TypeReal:
		return v.Real, nil
	case abi.TypeText:
		return strconv.ParseFloat(string(v.Bytes), 64)
	}
	return 0, errors.New("cannot scan a BLOB into a float")
}
