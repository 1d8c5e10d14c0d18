// Package guest is the Go SDK for writing sqlsync mutators: WebAssembly
// modules, built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, that hold
// an app's schema migrations and its named mutations.
//
// A mutator is a main package that registers its migrations and handlers
// from init, much as an HTTP server registers its routes:
//
//	func init() {
//		guest.Migrate(
//			`CREATE TABLE items(id TEXT PRIMARY KEY, title TEXT NOT NULL)`,
//		)
//		guest.HandleJSON("add", add)
//	}
//
//	func main() {} // a reactor: the host calls the exports, main never runs
//
//	type addArgs struct {
//		ID    string `json:"id"`
//		Title string `json:"title"`
//	}
//
//	func add(tx *guest.Tx, a addArgs) error {
//		_, err := tx.Exec(`INSERT INTO items(id, title) VALUES (?, ?)`, a.ID, a.Title)
//		return err
//	}
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o mutator.wasm ./path/to/mutator
//
// The host runs each call inside a transaction of its own: a handler that
// returns an error has every change it made rolled back, and the error's
// message reaches the client that sent the mutation. A handler must depend
// only on its args and the database: the clock and randomness are fixed
// inside the sandbox, and there is no file system or network.
//
// Registration works on every platform, so a mutator package compiles
// natively too (for vet and tests); only under wasip1 are the handlers
// reachable, through the exports of the ABI in package abi.
package guest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/shared/jsonargs"
)

// Handler handles one named mutation, given its raw args.
type Handler func(tx *Tx, args []byte) error

// ErrBadArgs marks an error as a problem with a mutation's args: wrap it
// (fmt.Errorf("%w: ...", guest.ErrBadArgs)) to report bad args from a
// [Handler]. [HandleJSON] wraps its decoding errors with it.
var ErrBadArgs = errors.New("bad args")

// ErrNoHost is returned by every statement when the package runs outside a
// sqlsync host: a mutator works only as a WebAssembly module (GOOS=wasip1).
var ErrNoHost = errors.New("guest: no sqlsync host: build the mutator with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared")

var (
	handlers   = map[string]Handler{}
	migrations []migration
)

type migration struct {
	sql string
	fn  func(tx *Tx) error
}

// Handle registers h for the mutation called name. It panics if name is
// empty or already registered.
func Handle(name string, h Handler) {
	if name == "" || h == nil {
		panic("guest: Handle needs a name and a handler")
	}
	if _, dup := handlers[name]; dup {
		panic("guest: mutation " + strconv.Quote(name) + " registered twice")
	}
	handlers[name] = h
}

// HandleJSON registers h for the mutation called name, decoding its args
// from JSON into an A first (package jsonargs). Args that do not decode
// reject the mutation as bad args.
func HandleJSON[A any](name string, h func(tx *Tx, args A) error) {
	Handle(name, func(tx *Tx, raw []byte) error {
		var a A
		if err := jsonargs.Decode(raw, &a); err != nil {
			return fmt.Errorf("%w: %w", ErrBadArgs, err)
		}
		return h(tx, a)
	})
}

// Migrate appends schema steps to the mutator's ordered migrations. Each
// step is SQL text, possibly several statements. The document records the
// number of steps applied in PRAGMA user_version, and a migration applies
// only the steps after it; steps must never be edited or reordered once
// released, only appended.
func Migrate(steps ...string) {
	for _, s := range steps {
		migrations = append(migrations, migration{sql: s})
	}
}

// MigrateFunc appends a schema step written in Go, for a step that needs
// more than fixed SQL (a data backfill, say).
func MigrateFunc(step func(tx *Tx) error) {
	migrations = append(migrations, migration{fn: step})
}

// mutate runs the named mutation: the body of the mutate export.
func mutate(name, args []byte) (status abi.Status, msg string) {
	h, ok := handlers[string(name)]
	if !ok {
		return abi.StatusUnknown, fmt.Sprintf("unknown mutation %q", name)
	}
	defer func() {
		if r := recover(); r != nil {
			status, msg = abi.StatusPanic, fmt.Sprintf("panic in mutation %q: %v", name, r)
		}
	}()
	tx := &Tx{}
	err := h(tx, args)
	tx.done = true
	switch {
	case err == nil:
		return abi.StatusOK, ""
	case errors.Is(err, ErrBadArgs):
		return abi.StatusBadArgs, message(err)
	}
	return abi.StatusError, message(err)
}

// migrate applies the migration steps the document lacks: the body of the
// migrate export. A document whose version is at or past the last step is
// left alone.
func migrate() (status abi.Status, msg string) {
	defer func() {
		if r := recover(); r != nil {
			status, msg = abi.StatusPanic, fmt.Sprintf("panic in migration: %v", r)
		}
	}()
	tx := &Tx{}
	defer func() { tx.done = true }()
	var v int64
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return abi.StatusError, "read schema version: " + message(err)
	}
	b := tx.Batch()
	var steps []int // steps[i] is the migration number of b's statement i
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		res, err := b.Run()
		if err != nil {
			return fmt.Errorf("migration %d: %w", steps[len(res)], err)
		}
		b, steps = tx.Batch(), steps[:0]
		return nil
	}
	for i := int(max(v, 0)); i < len(migrations); i++ {
		m := migrations[i]
		if m.fn != nil {
			if err := flush(); err != nil {
				return abi.StatusError, message(err)
			}
			if err := m.fn(tx); err != nil {
				return abi.StatusError, message(fmt.Errorf("migration %d: %w", i+1, err))
			}
		} else {
			b.Exec(m.sql)
			steps = append(steps, i+1)
		}
		b.Exec(`PRAGMA user_version = ` + strconv.Itoa(i+1))
		steps = append(steps, i+1)
	}
	if err := flush(); err != nil {
		return abi.StatusError, message(err)
	}
	return abi.StatusOK, ""
}

// message returns err's text as valid UTF-8, never empty.
func message(err error) string {
	s := err.Error()
	if s == "" {
		s = "error without a message"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
