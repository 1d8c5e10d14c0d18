// Command mutator is the todo app's mutator: a WebAssembly module (a WASI
// reactor) holding the app's schema and its mutations. It implements the
// same contract as package shared/testmutator, so the two are
// interchangeable. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o todo.wasm ./demo-todo/mutator
//
// Mutations take JSON args:
//
//	add     {"id", "title", "position"?}  insert an item (rejected if the id exists);
//	                                      without a position it goes last
//	rename  {"id", "title"}    retitle an item; renaming a deleted item restores it
//	toggle  {"id"}             flip done
//	delete  {"id"}             mark deleted
//	move    {"id", "position"} set an item's position (items sort by position, then id)
//	purge   {}                 remove deleted items for good
//	retitle {"title"}          set the list's own title
//	bulk    {"prefix", "n"}    add n items at once
//	fail    {"message"}        always rejected with message
package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/sqlsync-go/sqlsync/shared/guest"
)

func init() {
	// Released steps are never edited, only appended to.
	guest.Migrate(
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
		`CREATE INDEX items_by_position ON items(position)`,
	)

	guest.HandleJSON("add", add)
	guest.HandleJSON("rename", rename)
	guest.HandleJSON("toggle", toggle)
	guest.HandleJSON("delete", remove)
	guest.HandleJSON("move", move)
	guest.HandleJSON("purge", purge)
	guest.HandleJSON("retitle", retitle)
	guest.HandleJSON("bulk", bulk)
	guest.HandleJSON("fail", fail)
}

// main never runs: the module is a reactor whose exports the host calls.
func main() {}

// args are the fields the mutations draw from.
type args struct {
	ID       string   `json:"id,omitempty"`
	Title    string   `json:"title,omitempty"`
	Position *float64 `json:"position,omitempty"`
	Prefix   string   `json:"prefix,omitempty"`
	N        int      `json:"n,omitempty"`
	Message  string   `json:"message,omitempty"`
}

var errNoItem = errors.New("no such item")

// changedItem turns an update that matched no row into an error.
func changedItem(a args, res guest.Result, err error) error {
	if err != nil {
		return err
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", errNoItem, a.ID)
	}
	return nil
}

func add(tx *guest.Tx, a args) error {
	if a.Position != nil {
		_, err := tx.Exec(`INSERT INTO items(id, title, position) VALUES (?, ?, ?)`, a.ID, a.Title, *a.Position)
		return err
	}
	_, err := tx.Exec(`INSERT INTO items(id, title, position)
		VALUES (?, ?, (SELECT coalesce(max(position), 0) + 1 FROM items))`, a.ID, a.Title)
	return err
}

func rename(tx *guest.Tx, a args) error {
	res, err := tx.Exec(`UPDATE items SET title = ?, deleted = 0 WHERE id = ?`, a.Title, a.ID)
	return changedItem(a, res, err)
}

func toggle(tx *guest.Tx, a args) error {
	res, err := tx.Exec(`UPDATE items SET done = 1 - done WHERE id = ? AND NOT deleted`, a.ID)
	return changedItem(a, res, err)
}

func remove(tx *guest.Tx, a args) error {
	res, err := tx.Exec(`UPDATE items SET deleted = 1 WHERE id = ?`, a.ID)
	return changedItem(a, res, err)
}

func move(tx *guest.Tx, a args) error {
	if a.Position == nil {
		return errors.New("move: no position")
	}
	res, err := tx.Exec(`UPDATE items SET position = ? WHERE id = ?`, *a.Position, a.ID)
	return changedItem(a, res, err)
}

func retitle(tx *guest.Tx, a args) error {
	_, err := tx.Exec(`INSERT INTO list(id, title) VALUES (1, ?)
		ON CONFLICT(id) DO UPDATE SET title = excluded.title`, a.Title)
	return err
}

func purge(tx *guest.Tx, _ args) error {
	_, err := tx.Exec(`DELETE FROM items WHERE deleted`)
	return err
}

func bulk(tx *guest.Tx, a args) error {
	if a.N < 0 || a.N > 10000 {
		return fmt.Errorf("bulk: n %d outside 0..10000", a.N)
	}
	b := tx.Batch()
	for i := range a.N {
		id := a.Prefix + strconv.Itoa(i)
		b.Exec(`INSERT INTO items(id, title) VALUES (?, ?)`, id, "bulk "+id)
	}
	_, err := b.Run()
	return err
}

func fail(_ *guest.Tx, a args) error {
	return errors.New(a.Message)
}
