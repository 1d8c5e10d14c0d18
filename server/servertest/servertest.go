// Package servertest holds what the tests and benchmarks of the coordinator
// and of its clients share, as net/http/httptest does for net/http: a
// coordinator served on 127.0.0.1, replicas opened for a test, a WebSocket
// dialer that shows a replica's frames (and a log of its Hellos and diffs),
// a raw connection that speaks the protocol by hand, the seed of a test's
// random choices, and waits bounded by Timeout.
//
// Only tests and benchmarks import it, never production code. It does not
// import package server, so that server's own (internal) tests can use it.
package servertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// Timeout bounds every wait of these helpers and of the tests that use them.
const Timeout = 30 * time.Second

// Logger discards logs unless SQLSYNC_TEST_LOG is set, in which case it
// writes them all to standard error.
func Logger() *slog.Logger {
	if os.Getenv("SQLSYNC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Seed returns the seed for a test's random choices, from
// SQLSYNC_TEST_SEED if set, and logs it if the test fails.
func Seed(tb testing.TB) uint64 {
	tb.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SQLSYNC_TEST_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			tb.Fatalf("SQLSYNC_TEST_SEED: %v", err)
		}
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("seed=%d (rerun with SQLSYNC_TEST_SEED=%d)", seed, seed)
		}
	})
	return seed
}

// OpenReplica opens a replica with opts, closed when the test ends. Unset
// backoffs become 10 ms and 200 ms, so that a test does not wait long for a
// reconnect, and an unset Logger becomes Logger(). The mutator is opts'
// own: nil opens the replica queue-only.
func OpenReplica(tb testing.TB, opts client.Options) *client.Doc {
	tb.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 10 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = Logger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	d, err := client.Open(ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// WaitSynced waits until d is synced, failing the test after Timeout.
func WaitSynced(tb testing.TB, d *client.Doc) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := d.WaitSynced(ctx); err != nil {
		tb.Fatal(err)
	}
}

// WaitState waits until d is in state, failing the test after within, and
// returns its status then.
func WaitState(tb testing.TB, d *client.Doc, state client.State, within time.Duration) client.Status {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		s := d.Status()
		if s.State == state {
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("replica not %s after %v: %+v", state, within, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitFor polls cond until it holds, failing the test after Timeout with
// what it waited for.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Mutate runs a todo mutation on d, failing the test if it is refused
// locally, and returns its seq.
func Mutate(tb testing.TB, d *client.Doc, name string, a testmutator.Args) uint64 {
	tb.Helper()
	seq, err := d.Mutate(context.Background(), name, a.Encode())
	if err != nil {
		tb.Fatalf("mutate %s %+v: %v", name, a, err)
	}
	return seq
}

// Query runs a query on d and formats its rows, as fmt.Sprint does.
func Query(tb testing.TB, d *client.Doc, sql string, args ...any) string {
	tb.Helper()
	rows, err := d.Query(context.Background(), sql, args...)
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return fmt.Sprint(rows.Values)
}

// CheckIntegrity fails the test unless d passes PRAGMA integrity_check.
func CheckIntegrity(tb testing.TB, d *client.Doc) {
	tb.Helper()
	if got, want := Query(tb, d, `PRAGMA integrity_check`), "[[ok]]"; got != want {
		tb.Fatalf("replica integrity_check: got %v, want %v", got, want)
	}
}
