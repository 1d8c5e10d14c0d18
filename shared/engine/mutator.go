package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/ncruces/go-sqlite3"
)

// Mutator is an app's write logic: the same code runs on every client and on
// the coordinator. The engine calls it inside a transaction and savepoint of
// its own; a mutator must not begin, commit or roll back transactions.
//
// Everything a mutation's effect depends on must come from its args and the
// database: a mutator must not read the clock, randomness or the network.
type Mutator interface {
	// Migrate brings the document's schema up to date. When the schema is
	// already current it must change nothing.
	Migrate(ctx context.Context, conn *sqlite3.Conn) error
	// Mutate applies the named mutation. An error rejects the mutation and
	// the engine rolls back whatever it changed.
	Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error
}

// StatementCache is implemented by a Mutator that can keep the statements
// it prepares on a connection from one call to the next, so that it does
// not parse the same SQL at every mutation (the WebAssembly hosts of
// package mutatorhost do, and the test mutator). It keeps none until
// CacheStatements names the connection; the engine does so only for a
// connection it will let go of through ForgetStatements, which finalizes
// them, before closing it: a connection cannot close while statements
// prepared on it are not finalized (SQLite returns BUSY).
//
// The coordinator opts its writer in. A client opts in only a mutator that
// is also a WatchedStatementCache: its authorizer learns which tables a
// mutation writes while the mutation's statements are prepared, and a kept
// statement is not prepared again (unless its schema changed).
type StatementCache interface {
	// CacheStatements lets the mutator keep statements prepared on conn.
	CacheStatements(conn *sqlite3.Conn)
	// ForgetStatements finalizes the statements kept on conn, and keeps
	// none on it from now on.
	ForgetStatements(conn *sqlite3.Conn) error
}

// WatchedStatementCache is a StatementCache that tells a watcher of each
// statement it runs on the connection, before preparing it (kept false) or
// running it from its cache (kept true), on the goroutine of the call. A
// replica opts such a mutator in: it credits a kept statement with the
// tables its authorizer saw written when the statement was prepared (the
// WebAssembly hosts of package mutatorhost are such mutators).
type WatchedStatementCache interface {
	StatementCache
	CacheStatementsWatched(conn *sqlite3.Conn, watch func(sql []byte, kept bool))
}

// Mutation is one named write by one client.
type Mutation struct {
	ClientID string
	Seq      uint64
	Name     string
	Args     []byte
	// Refused, if set, makes the coordinator reject the mutation with this
	// reason without running it (for example, a read-only client's write).
	Refused string
}

// ID names the mutation for logs: client/seq.
func (m Mutation) ID() string { return fmt.Sprintf("%s/%d", m.ClientID, m.Seq) }

// ErrDiffGap reports a diff that does not start at the replica's LSN.
var ErrDiffGap = errors.New("sqlsync: diff does not start at the replica's LSN")

// ErrRejected wraps the reason a mutation was rejected by the mutator.
var ErrRejected = errors.New("mutation rejected")

// RejectedError is a mutation the mutator refused, with its message.
type RejectedError struct {
	Seq     uint64
	Name    string
	Message string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("mutation %d (%s) rejected: %s", e.Seq, e.Name, e.Message)
}

// Unwrap makes errors.Is(err, ErrRejected) hold.
func (e *RejectedError) Unwrap() error { return ErrRejected }
