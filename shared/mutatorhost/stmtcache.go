package mutatorhost

import (
	"github.com/ncruces/go-sqlite3"

	"github.com/sqlsync-go/sqlsync/shared/stmtlru"
)

// Statement cache limits: how many statements an Exec keeps prepared on its
// connection, and the longest SQL text it keeps one for (a longer text is
// most likely built with its values inline, and would only crowd out the
// statements that repeat).
const (
	stmtCacheSize   = 64
	stmtCacheMaxSQL = 8 << 10
)

// stmtCache keeps the guest's statements prepared on one connection between
// requests and calls, keyed by SQL text, least recently used evicted first:
// parsing every statement of every call was a large part of a mutation's
// cost. Only a text holding exactly one statement is kept, and only one the
// guard lets through (checkNames and checkStatement read the text alone, so
// their verdict holds as long as the text is the same); a refused text is
// never prepared, so it is checked, and refused, at every use.
//
// A kept statement whose schema changed (a migration, DDL in a mutation, a
// rebase) is prepared again by SQLite itself when it next steps
// (sqlite3_prepare_v3 keeps the text), or fails there with the error
// preparing it would give; its columns are read only after that first step.
// Statements are reset and their bindings cleared after each use, so a kept
// one holds no lock and no value.
//
// A connection does not close while statements prepared on it are not
// finalized (SQLite returns BUSY): the connection's owner must have the
// cache dropped first (Exec.Forget, through the Slot's ForgetStatements).
type stmtCache struct {
	conn *sqlite3.Conn     // the statements' connection, nil when empty
	lru  *stmtlru.LRU[int] // each statement's BindCount, which the text decides
}

// get returns the statement kept for sql on conn, or nil.
func (c *stmtCache) get(conn *sqlite3.Conn, sql []byte) *stmtlru.Entry[int] {
	if c.conn != conn || c.lru == nil {
		return nil
	}
	return c.lru.GetBytes(sql)
}

// put keeps stmt, prepared on conn from the single-statement text sql, and
// finalizes the least recently used statements beyond the bound. The cache
// must hold no statement of another connection, nor one for sql.
func (c *stmtCache) put(conn *sqlite3.Conn, sql string, stmt *sqlite3.Stmt) {
	if c.lru == nil {
		c.lru = stmtlru.New[int](stmtCacheSize)
	}
	c.conn = conn
	c.lru.Put(sql, stmt, stmt.BindCount())
}

// drop finalizes sql's statement, if kept.
func (c *stmtCache) drop(sql []byte) error {
	if c.lru == nil {
		return nil
	}
	return c.lru.Drop(string(sql))
}

// clear finalizes every statement. Their connection must still be open,
// which it is: it cannot close while they are not finalized.
func (c *stmtCache) clear() error {
	c.conn = nil
	if c.lru == nil {
		return nil
	}
	return c.lru.Clear()
}

// len returns the number of statements kept.
func (c *stmtCache) len() int {
	if c.lru == nil {
		return 0
	}
	return c.lru.Len()
}
