package engine

import (
	"container/list"
	"errors"
	"fmt"
	"strings"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
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
	conn  *sqlite3.Conn
	max   int
	byKey map[string]*list.Element
	lru   list.List // of *cachedStmt, most recently used first
}

// cachedStmt is one prepared statement and what the authorizer saw while
// SQLite prepared it: the tables it reads.
type cachedStmt struct {
	sql    string
	stmt   *sqlite3.Stmt
	tables map[string]bool
}

func newStmtCache(conn *sqlite3.Conn, size int) *stmtCache {
	return &stmtCache{conn: conn, max: size, byKey: map[string]*list.Element{}}
}

// errManyStatements reports SQL text holding more than one statement where
// one is expected.
var errManyStatements = errors.New("more than one statement")

// get returns the prepared statement for sql, preparing it on a miss, when
// prepared reports true. prepared runs with what the authorizer gathered
// while preparing; if it fails the statement is not kept. SQL holding more
// than one statement is refused.
func (c *stmtCache) get(sql string, prepared func(*cachedStmt) error) (*cachedStmt, error) {
	if el, ok := c.byKey[sql]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*cachedStmt), nil
	}
	stmt, tail, err := c.conn.Prepare(sql)
	if err != nil {
		return nil, err
	}
	if stmt == nil {
		return nil, fmt.Errorf("no statement in %q", sql)
	}
	e := &cachedStmt{sql: sql, stmt: stmt}
	if err := prepared(e); err != nil {
		stmt.Close()
		return nil, err
	}
	if strings.Trim(tail, " \t\r\n;") != "" {
		stmt.Close()
		return nil, fmt.Errorf("%w in %q", errManyStatements, sql)
	}
	c.byKey[sql] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		c.remove(c.lru.Back())
	}
	return e, nil
}

// run runs sql, one statement with no checks of its own (the engine's own
// reads and writes), through the cache.
func (c *stmtCache) run(sql string, args ...any) (Rows, error) {
	e, err := c.get(sql, func(*cachedStmt) error { return nil })
	if err != nil {
		return Rows{}, err
	}
	rows, err := sqlrows.Collect(e.stmt, args...)
	if err != nil {
		c.drop(sql)
	}
	return rows, err
}

// drop forgets sql's statement, after an error that may come from it.
func (c *stmtCache) drop(sql string) {
	if el, ok := c.byKey[sql]; ok {
		c.remove(el)
	}
}

func (c *stmtCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*cachedStmt)
	delete(c.byKey, e.sql)
	e.stmt.Close()
}

// close finalizes every statement: the connection cannot close before.
func (c *stmtCache) close() error {
	var errs []error
	for el := c.lru.Front(); el != nil; el = c.lru.Front() {
		e := c.lru.Remove(el).(*cachedStmt)
		errs = append(errs, e.stmt.Close())
	}
	clear(c.byKey)
	return errors.Join(errs...)
}
