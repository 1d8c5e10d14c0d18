//go:build js

// Command plainsqlite is the second baseline of the demo benchmark
// (demo-todo/test/bench.mjs): the SQLite build sqlsync runs (ncruces
// go-sqlite3) on the storage code it runs on (package vfs over a
// filestore on vfs/opfs), in a Web Worker, with no sync. Set against
// sqlsync's doc.mutate, it shows what the sync engine adds on top of the
// same SQLite and the same OPFS code.
//
// The database is served in vfs.CoordinatorMode: every commit is one
// append to the filestore's log and one flush of its access handle before
// it returns, as on a coordinator. (ClientMode would keep commits in
// memory, in the local layer over the snapshot, and not be durable.)
//
// Built with GOOS=js GOARCH=wasm and started by
// demo-todo/test/baseline/plain-worker.js, it opens the database, then calls
// globalThis.__plainReady(error, api, rows) with api:
//
//	api.insert(title)   -> Promise<ms>     one row, in its own transaction
//	api.insertRows(n)   -> Promise<[ms]>   n such rows, one after another
//
// where ms is each insert's time in Go (time.Now, performance.now in the
// browser), from before its BEGIN to after its COMMIT. Bench-only code: no
// package of sqlsync depends on it.
package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/ncruces/go-sqlite3"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/filestore"
	"github.com/sqlsync-go/sqlsync/vfs/jsinterop"
	"github.com/sqlsync-go/sqlsync/vfs/opfs"
)

func main() {
	ready := js.Global().Get("__plainReady")
	p, rows, err := open(context.Background())
	if err != nil {
		ready.Invoke(err.Error(), js.Null(), 0)
		select {}
	}
	api := js.Global().Get("Object").New()
	api.Set("insert", js.FuncOf(func(_ js.Value, args []js.Value) any {
		title := ""
		if len(args) > 0 && args[0].Type() == js.TypeString {
			title = args[0].String()
		}
		return jsinterop.Promise(func() (any, error) { return p.insert(title) })
	}))
	api.Set("insertRows", js.FuncOf(func(_ js.Value, args []js.Value) any {
		n := 0
		if len(args) > 0 && args[0].Type() == js.TypeNumber {
			n = args[0].Int()
		}
		return jsinterop.Promise(func() (any, error) {
			times := make([]any, 0, n)
			for i := range n {
				ms, err := p.insert(fmt.Sprintf("row %d", i))
				if err != nil {
					return nil, err
				}
				times = append(times, ms)
			}
			return times, nil
		})
	}))
	ready.Invoke(js.Null(), api, rows)
	select {}
}

// plain is one connection to the database and its prepared insert.
type plain struct {
	mu   sync.Mutex // one statement at a time on conn
	conn *sqlite3.Conn
	stmt *sqlite3.Stmt
}

// open opens the database in OPFS directory plainsqlite, creates its table
// if missing and returns it with the table's row count.
func open(ctx context.Context) (*plain, int64, error) {
	fsys, err := opfs.New(ctx, "plainsqlite", opfs.Options{})
	if err != nil {
		return nil, 0, fmt.Errorf("open storage: %w", err)
	}
	if err := hackpadfs.MkdirAll(fsys, "db", 0o755); err != nil {
		return nil, 0, fmt.Errorf("open storage: %w", err)
	}
	store, err := filestore.Open(fsys, "db")
	if err != nil {
		return nil, 0, fmt.Errorf("open store: %w", err)
	}
	conn, err := vfs.NewDatabase(store, vfs.CoordinatorMode).Open()
	if err != nil {
		return nil, 0, err
	}
	// The same table as the sqlite-wasm baseline (worker.mjs).
	if err := conn.Exec(`CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, title TEXT NOT NULL)`); err != nil {
		return nil, 0, fmt.Errorf("create table: %w", err)
	}
	count, _, err := conn.Prepare(`SELECT count(*) FROM items`)
	if err != nil {
		return nil, 0, fmt.Errorf("count rows: %w", err)
	}
	defer count.Close()
	if !count.Step() {
		if err := count.Err(); err != nil {
			return nil, 0, fmt.Errorf("count rows: %w", err)
		}
		return nil, 0, errors.New("count rows: no row")
	}
	rows := count.ColumnInt64(0)
	stmt, _, err := conn.Prepare(`INSERT INTO items(title) VALUES (?)`)
	if err != nil {
		return nil, 0, fmt.Errorf("prepare insert: %w", err)
	}
	return &plain{conn: conn, stmt: stmt}, rows, nil
}

// insert inserts one row in its own transaction, durable on return, and
// returns the time it took in milliseconds.
func (p *plain) insert(title string) (float64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t0 := time.Now()
	if err := p.conn.Exec(`BEGIN IMMEDIATE`); err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	if err := p.stmt.BindText(1, title); err != nil {
		p.conn.Exec(`ROLLBACK`)
		return 0, fmt.Errorf("insert: %w", err)
	}
	if err := p.stmt.Exec(); err != nil {
		p.conn.Exec(`ROLLBACK`)
		return 0, fmt.Errorf("insert: %w", err)
	}
	if err := p.conn.Exec(`COMMIT`); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return float64(time.Since(t0).Microseconds()) / 1000, nil
}
