// Package stmtlru keeps prepared statements of one SQLite connection,
// keyed by SQL text, least recently used finalized first: the one cache
// the engine (a replica's queries, the engine's own statements) and the
// mutator hosts (the guest's statements) keep their statements in.
//
// What a statement may be kept for, and what else is remembered with it,
// is the caller's: each entry carries a value of type T. Statements whose
// schema changed are prepared again by SQLite itself when they next step
// (sqlite3_prepare_v3 keeps the text). A connection does not close while
// statements prepared on it are not finalized (SQLite returns BUSY): its
// owner calls Clear first.
package stmtlru

import (
	"container/list"
	"errors"

	"github.com/ncruces/go-sqlite3"
)

// Entry is one kept statement and what its owner keeps with it.
type Entry[T any] struct {
	SQL  string
	Stmt *sqlite3.Stmt
	Val  T
}

// LRU keeps at most Max statements. The zero value is not usable: use New.
// It is not safe for concurrent use.
type LRU[T any] struct {
	max   int
	byKey map[string]*list.Element
	lru   list.List // of *Entry[T], most recently used first
}

// New returns an empty cache of at most max statements.
func New[T any](max int) *LRU[T] {
	return &LRU[T]{max: max, byKey: map[string]*list.Element{}}
}

// Get returns the entry kept for sql, or nil, and marks it used.
func (c *LRU[T]) Get(sql string) *Entry[T] {
	return c.use(c.byKey[sql])
}

// GetBytes is Get for SQL text held as bytes, without copying it.
func (c *LRU[T]) GetBytes(sql []byte) *Entry[T] {
	return c.use(c.byKey[string(sql)])
}

func (c *LRU[T]) use(el *list.Element) *Entry[T] {
	if el == nil {
		return nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*Entry[T])
}

// Put keeps stmt, prepared from sql, with val, and finalizes the least
// recently used statements beyond the bound. The cache must not hold sql.
func (c *LRU[T]) Put(sql string, stmt *sqlite3.Stmt, val T) *Entry[T] {
	e := &Entry[T]{SQL: sql, Stmt: stmt, Val: val}
	c.byKey[sql] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		c.remove(c.lru.Back())
	}
	return e
}

// Drop finalizes sql's statement, if kept.
func (c *LRU[T]) Drop(sql string) error {
	if el, ok := c.byKey[sql]; ok {
		return c.remove(el)
	}
	return nil
}

// Clear finalizes every statement.
func (c *LRU[T]) Clear() error {
	var errs []error
	for el := c.lru.Front(); el != nil; el = c.lru.Front() {
		errs = append(errs, c.remove(el))
	}
	return errors.Join(errs...)
}

// Keys lists the texts kept, most recently used first.
func (c *LRU[T]) Keys() []string {
	var out []string
	for el := c.lru.Front(); el != nil; el = el.Next() {
		out = append(out, el.Value.(*Entry[T]).SQL)
	}
	return out
}

// Len returns the number of statements kept.
func (c *LRU[T]) Len() int { return c.lru.Len() }

func (c *LRU[T]) remove(el *list.Element) error {
	e := c.lru.Remove(el).(*Entry[T])
	delete(c.byKey, e.SQL)
	return e.Stmt.Close()
}
