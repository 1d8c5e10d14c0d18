package testmutator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
)

// SQL is a generic test mutator that runs the SQL it is given, as an app's
// mutator might with any statement: for tests of failures the todo contract
// cannot reach (deferred constraints, schema of the test's choosing). It
// has no schema of its own. Never serve it: whoever may write could run
// any SQL in the document.
//
// Mutations take JSON args:
//
//	exec  {"sql", "args"?}   run one or more statements (args bind the last)
//	fail  {"message"}        always rejected with message
type SQL struct{}

var _ engine.Mutator = SQL{}

// SQLArgs are the args of SQL's mutations.
type SQLArgs struct {
	SQL     string `json:"sql,omitempty"`
	Args    []any  `json:"args,omitempty"`
	Message string `json:"message,omitempty"`
}

// Encode returns a's JSON.
func (a SQLArgs) Encode() []byte {
	b, _ := json.Marshal(a)
	return b
}

// Migrate changes nothing.
func (SQL) Migrate(context.Context, *sqlite3.Conn) error { return nil }

// Mutate runs one mutation.
func (SQL) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, raw []byte) error {
	var a SQLArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("bad args: %w", err)
	}
	switch name {
	case "exec":
		if len(a.Args) == 0 {
			return conn.Exec(a.SQL)
		}
		for i, v := range a.Args {
			if f, ok := v.(float64); ok && f == float64(int64(f)) {
				a.Args[i] = int64(f)
			}
		}
		return sqlrows.Exec(conn, a.SQL, a.Args...)
	case "fail":
		return errors.New(a.Message)
	}
	return fmt.Errorf("unknown mutation %q", name)
}
