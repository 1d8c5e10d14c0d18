// Package testmutator is a todo-list mutator written in Go against the
// engine's Mutator interface: the reference for tests, simulations and the
// CLI until a document's own WebAssembly mutator is configured.
//
// Mutations take JSON args:
//
//	add     {"id", "title", "position"?}  insert an item (rejected if the id exists);
//	                                      without a position it goes last
//	rename  {"id", "title"}   retitle an item; renaming a deleted item restores it
//	toggle  {"id"}            flip done
//	delete  {"id"}            mark deleted
//	move    {"id", "position"} set an item's position (items sort by position, then id)
//	purge   {}                remove deleted items for good
//	retitle {"title"}         set the list's own title
//	bulk    {"prefix", "n"}   add n items at once
//	fail    {"message"}       always rejected with message
package testmutator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/jsonargs"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/shared/stmtlru"
)

// Migrations are the schema steps, in order; PRAGMA user_version counts the
// steps applied.
var Migrations = []string{
	`CREATE TABLE items(
		id TEXT PRIMARY KEY NOT NULL,
		title TEXT NOT NULL,
		done INTEGER NOT NULL DEFAULT 0,
		deleted INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX items_by_title ON items(title)`,
	`ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE items ADD COLUMN position REAL NOT NULL DEFAULT 0`,
	`CREATE TABLE list(id INTEGER PRIMARY KEY CHECK (id = 1), title TEXT NOT NULL)`,
	// Adding at the end reads max(position): the index keeps that O(log n).
	`CREATE INDEX items_by_position ON items(position)`,
}

// Mutator is the todo mutator. On a connection the engine opts in
// (engine.StatementCache: the coordinator's writer), it keeps its
// statements prepared, as the WebAssembly hosts keep a guest's.
type Mutator struct{}

var (
	_ engine.Mutator        = Mutator{}
	_ engine.StatementCache = Mutator{}
)

// Migrate applies the migrations the document lacks.
func (Mutator) Migrate(ctx context.Context, conn *sqlite3.Conn) error {
	rows, err := sqlrows.Query(conn, `PRAGMA user_version`)
	if err != nil {
		return err
	}
	for v := rows.Values[0][0].(int64); v < int64(len(Migrations)); v++ {
		if err := conn.Exec(Migrations[v]); err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if err := conn.Exec(`PRAGMA user_version = ` + strconv.FormatInt(v+1, 10)); err != nil {
			return err
		}
	}
	return nil
}

// Args are the fields every mutation draws from.
type Args struct {
	ID       string   `json:"id,omitempty"`
	Title    string   `json:"title,omitempty"`
	Position *float64 `json:"position,omitempty"`
	Prefix   string   `json:"prefix,omitempty"`
	N        int      `json:"n,omitempty"`
	Message  string   `json:"message,omitempty"`
}

// Encode returns a's JSON.
func (a Args) Encode() []byte {
	b, _ := json.Marshal(a)
	return b
}

// ErrNoItem reports a mutation on an item that does not exist.
var ErrNoItem = errors.New("no such item")

// Mutate applies one mutation.
func (Mutator) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, raw []byte) error {
	var a Args
	if err := jsonargs.Decode(raw, &a); err != nil {
		return fmt.Errorf("bad args: %w", err)
	}
	need := func(changed error) error {
		if changed != nil {
			return changed
		}
		if conn.Changes() == 0 {
			return fmt.Errorf("%w: %q", ErrNoItem, a.ID)
		}
		return nil
	}
	switch name {
	case "add":
		if a.Position != nil {
			return exec(conn, `INSERT INTO items(id, title, position) VALUES (?, ?, ?)`, a.ID, a.Title, *a.Position)
		}
		return exec(conn, `INSERT INTO items(id, title, position)
			VALUES (?, ?, (SELECT coalesce(max(position), 0) + 1 FROM items))`, a.ID, a.Title)
	case "move":
		if a.Position == nil {
			return errors.New("move: no position")
		}
		return need(exec(conn, `UPDATE items SET position = ? WHERE id = ?`, *a.Position, a.ID))
	case "retitle":
		return exec(conn, `INSERT INTO list(id, title) VALUES (1, ?)
			ON CONFLICT(id) DO UPDATE SET title = excluded.title`, a.Title)
	case "rename":
		return need(exec(conn, `UPDATE items SET title = ?, deleted = 0 WHERE id = ?`, a.Title, a.ID))
	case "toggle":
		return need(exec(conn, `UPDATE items SET done = 1 - done WHERE id = ? AND NOT deleted`, a.ID))
	case "delete":
		return need(exec(conn, `UPDATE items SET deleted = 1 WHERE id = ?`, a.ID))
	case "purge":
		return exec(conn, `DELETE FROM items WHERE deleted`)
	case "bulk":
		if a.N < 0 || a.N > 10000 {
			return fmt.Errorf("bulk: n %d outside 0..10000", a.N)
		}
		for i := range a.N {
			id := a.Prefix + strconv.Itoa(i)
			if err := exec(conn, `INSERT INTO items(id, title) VALUES (?, ?)`, id, "bulk "+id); err != nil {
				return err
			}
		}
		return nil
	case "fail":
		return errors.New(a.Message)
	}
	return fmt.Errorf("unknown mutation %q", name)
}

// kept holds, per connection opted in, the statements Mutate prepared on
// it, by SQL text: the mutator's own texts, a fixed few. A connection is
// used by one goroutine at a time (its engine's); the map is shared by
// every Mutator, which has no state of its own.
var kept sync.Map // *sqlite3.Conn → *stmtlru.LRU[struct{}]

// keptMax bounds the statements kept per connection: more than the
// mutator's texts.
const keptMax = 16

// CacheStatements lets the mutator keep its statements prepared on conn
// (engine.StatementCache), until ForgetStatements.
func (Mutator) CacheStatements(conn *sqlite3.Conn) {
	kept.LoadOrStore(conn, stmtlru.New[struct{}](keptMax))
}

// ForgetStatements finalizes the statements kept on conn and keeps none
// on it from now on (engine.StatementCache): before conn closes.
func (Mutator) ForgetStatements(conn *sqlite3.Conn) error {
	v, ok := kept.LoadAndDelete(conn)
	if !ok {
		return nil
	}
	if err := v.(*stmtlru.LRU[struct{}]).Clear(); err != nil {
		return fmt.Errorf("testmutator: finalize kept statements: %w", err)
	}
	return nil
}

// exec runs sql, one statement of the mutator's own, with args: as
// sqlrows.Exec does, through a statement kept prepared if conn is opted
// in. A statement whose schema changed is prepared again by SQLite as it
// steps.
func exec(conn *sqlite3.Conn, sql string, args ...any) error {
	v, ok := kept.Load(conn)
	if !ok {
		return sqlrows.Exec(conn, sql, args...)
	}
	stmts := v.(*stmtlru.LRU[struct{}])
	e := stmts.Get(sql)
	if e == nil {
		stmt, _, err := conn.Prepare(sql)
		if err != nil {
			return err
		}
		e = stmts.Put(sql, stmt, struct{}{})
	}
	_, err := sqlrows.Collect(e.Stmt, args...)
	if cerr := e.Stmt.ClearBindings(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}
