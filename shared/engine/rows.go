package engine

import "github.com/sqlsync-go/sqlsync/shared/sqlrows"

// Rows is the whole result of a query: column names and typed values (nil,
// int64, float64, string or []byte).
type Rows = sqlrows.Rows
