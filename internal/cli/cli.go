// Package cli implements the sqlsync command: the coordinator (serve) and
// client subcommands for people and scripts.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"

	"github.com/sqlsync-go/sqlsync/server"
)

// Exit codes.
const (
	ExitOK       = 0 // success
	ExitError    = 1 // the command failed (network, storage, SQL)
	ExitUsage    = 2 // bad flags or arguments
	ExitRejected = 3 // the coordinator or the mutator rejected the mutation
	// ExitQueued: mutate --state could not reach the coordinator, so it ran
	// the mutation locally, with the document's mutator kept in the state
	// directory, and queued it there; a later command that reaches the
	// coordinator pushes it.
	ExitQueued = 4
)

const usage = `usage: sqlsync <command> [flags] [args]

commands:
  serve    run the coordinator
  mutate   run a mutation on a document:  sqlsync mutate --url URL --doc ID NAME ARGS_JSON
  query    query a document, JSON rows:   sqlsync query --url URL --doc ID SQL [PARAMS_JSON]
  dump     print a document as SQL text:  sqlsync dump --url URL --doc ID [--raw]
  inspect  look into the coordinator:     sqlsync inspect --url URL [--token ADMIN_TOKEN] [--doc ID [SQL]]
  token    mint a development token:      sqlsync token --jwt-secret S --doc ID[,PREFIX*] [--role read|write|admin]

Run 'sqlsync <command> -h' for a command's flags.

exit codes:
  0  success
  1  the command failed (network, storage, SQL)
  2  bad flags or arguments
  3  the coordinator or the mutator rejected the mutation
  4  mutate --state DIR: the coordinator could not be reached; the mutation
     ran locally and is queued in DIR, and a later command that reaches the
     coordinator pushes it (this needs an earlier command with --state DIR
     to have reached it, so that DIR keeps the document's mutator)

Client commands keep compiled mutators in DIR with --state DIR, else in the
user's cache directory (sqlsync/ under $XDG_CACHE_HOME or ~/.cache on Linux).
`

// Run runs the command line args and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "mutate":
		err = mutate(ctx, args[1:], stdout, stderr)
	case "query":
		err = query(ctx, args[1:], stdout, stderr)
	case "dump":
		err = dump(ctx, args[1:], stdout, stderr)
	case "inspect":
		err = inspect(ctx, args[1:], stdout, stderr)
	case "token":
		err = token(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "sqlsync: unknown command %q\n%s", args[0], usage)
		return ExitUsage
	}
	return exitCode(err, stderr)
}

// usageError is a mistake in how the command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// rejectedError is a mutation the mutator or coordinator refused.
type rejectedError struct{ err error }

func (e rejectedError) Error() string { return e.err.Error() }
func (e rejectedError) Unwrap() error { return e.err }

// queuedError is a mutation run and queued locally while the coordinator
// could not be reached (ExitQueued).
type queuedError struct {
	seq     uint64
	pending int
	state   string
	err     error // why the coordinator could not be reached
}

func (e queuedError) Error() string {
	return fmt.Sprintf("coordinator unreachable (%v): mutation %d ran locally and is queued in %s (%d pending); a later command that reaches the coordinator pushes it", e.err, e.seq, e.state, e.pending)
}

func (e queuedError) Unwrap() error { return e.err }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "sqlsync: %v\n", err)
	var u usageError
	var r rejectedError
	var q queuedError
	switch {
	case errors.As(err, &u):
		return ExitUsage
	case errors.As(err, &r):
		return ExitRejected
	case errors.As(err, &q):
		return ExitQueued
	}
	return ExitError
}

// syncURL turns a coordinator address (http://host:port, ws://host:port,
// or a full sync URL) into the WebSocket sync endpoint.
func syncURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", usagef("bad --url %q: want http://host:port or ws://host:port", raw)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", usagef("bad --url %q: scheme must be http, https, ws or wss", raw)
	}
	if strings.TrimSuffix(u.Path, "/") == "" {
		u.Path = server.SyncPath
	}
	return u.String(), nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("bad --log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
