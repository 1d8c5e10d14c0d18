// Command versioned is a test mutator released in two versions, chosen at
// build time with -ldflags=-X=main.version=2: version 2 adds a migration
// and a mutation, changes one and drops another.
package main

import (
	"fmt"

	"github.com/sqlsync-go/sqlsync/shared/guest"
)

var version = "1"

func init() {
	// Each step records itself in steps, so a test can count its runs.
	guest.Migrate(`CREATE TABLE notes(id TEXT PRIMARY KEY NOT NULL, body TEXT NOT NULL);
		CREATE TABLE steps(n INTEGER NOT NULL);
		INSERT INTO steps VALUES (1)`)
	switch version {
	case "1":
		guest.HandleJSON("add", func(tx *guest.Tx, a note) error {
			_, err := tx.Exec(`INSERT INTO notes(id, body) VALUES (?, ?)`, a.ID, a.Body)
			return err
		})
		guest.HandleJSON("legacy", func(tx *guest.Tx, a note) error {
			_, err := tx.Exec(`UPDATE notes SET body = body || ' (legacy)' WHERE id = ?`, a.ID)
			return err
		})
	case "2":
		guest.Migrate(`ALTER TABLE notes ADD COLUMN tag TEXT NOT NULL DEFAULT '';
			INSERT INTO steps VALUES (2)`)
		guest.HandleJSON("add", func(tx *guest.Tx, a note) error {
			_, err := tx.Exec(`INSERT INTO notes(id, body, tag) VALUES (?, ?, ?)`, a.ID, a.Body, a.Tag)
			return err
		})
		guest.HandleJSON("tag", func(tx *guest.Tx, a note) error {
			res, err := tx.Exec(`UPDATE notes SET tag = ? WHERE id = ?`, a.Tag, a.ID)
			if err == nil && res.RowsAffected() == 0 {
				err = fmt.Errorf("no note %q", a.ID)
			}
			return err
		})
	default:
		panic("unknown version " + version)
	}
}

func main() {}

type note struct {
	ID   string `json:"id"`
	Body string `json:"body"`
	Tag  string `json:"tag"`
}
