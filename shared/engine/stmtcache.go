package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/shared/stmtlru"
)

// stmtCacheSize bounds the statements a replica keeps prepared: the live
// queries of an app's screen, and the engine's own reads.
const stmtCacheSize = 64

// stmtCache keeps the replica's read statements prepared, keyed by SQL text,
// so that re-running a live query after every change does not parse it
// again. A statement whose schema changed is prepared again by SQLite
// itself when it next steps (sqlite3_prepare_v3), and the authorizer sees
// that preparation as it saw the first. Statements are reset after each
// use, so a cached one holds no read transaction.
type stmtCache struct {
	conn *sqlite3.Conn
	lru  *stmtlru.LRU[map[string]bool] // what each statement reads, where the caller tracks it
}

// cachedStmt is one prepared statement and what the authorizer saw while
// SQLite prepared it: the tables it reads.
type cachedStmt = stmtlru.Entry[map[string]bool]

func newStmtCache(conn *sqlite3.Conn, size int) *stmtCache {
	return &stmtCache{conn: conn, lru: stmtlru.New[map[string]bool](size)}
}

// errManyStatements reports SQL text holding more than one statement where
// one is expected.
var errManyStatements = errors.New("more than one statement")

// get returns the prepared statement for sql, preparing it on a miss, when
// prepared reports true. prepared runs with what the authorizer gathered
// while preparing; if it fails the statement is not kept. SQL holding more
// than one statement is refused.
func (c *stmtCache) get(sql string, prepared func(*cachedStmt) error) (*cachedStmt, error) {
	if e := c.lru.Get(sql); e != nil {
		return e, nil
	}
	stmt, tail, err := c.conn.Prepare(sql)
	if err != nil {
		return nil, err
	}
	if stmt == nil {
		return nil, fmt.Errorf("no statement in %q", sql)
	}
	e := &cachedStmt{SQL: sql, Stmt: stmt}
	if err := prepared(e); err != nil {
		stmt.Close()
		return nil, err
	}
	if strings.Trim(tail, " \t\r\n;") != "" {
		stmt.Close()
		return nil, fmt.Errorf("%w in %q", errManyStatements, sql)
	}
	return c.lru.Put(sql, stmt, e.Val), nil
}

// run runs sql, one statement with no checks of its own (the engine's own
// reads and writes), through the cache.
func (c *stmtCache) run(sql string, args ...any) (Rows, error) {
	e, err := c.get(sql, func(*cachedStmt) error { return nil })
	if err != nil {
		return Rows{}, err
	}
	rows, err := sqlrows.Collect(e.Stmt, args...)
	if err != nil {
		c.drop(sql)
	}
	return rows, err
}

// drop forgets sql's statement, after an error that may come from it.
func (c *stmtCache) drop(sql string) { c.lru.Drop(sql) }

// close finalizes every statement: the connection cannot close before.
func (c *stmtCache) close() error { return c.lru.Clear() }
