// Package jetstoretest starts an embedded single-node NATS JetStream server
// for tests of the JetStream journal.
package jetstoretest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sqlsync-go/sqlsync/internal/natsembed"
)

// Start starts a JetStream node in this process (no listener, every ack
// fsynced, its store in a temporary directory) and returns a connection to
// it; both end with the test. (The caller makes the commit stream, with
// jetstore.EnsureStream: this package cannot import jetstore, whose own
// tests use it.)
func Start(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	nc, js, err := natsembed.Connect(start(tb, ""))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return js
}

// Listen starts a JetStream node in this process listening on a free port
// of 127.0.0.1, for other processes (a sqlsync serve), and returns its
// URL; it stops when the test ends.
func Listen(tb testing.TB) string {
	tb.Helper()
	return start(tb, "127.0.0.1:-1").ClientURL()
}

func start(tb testing.TB, listen string) *server.Server {
	tb.Helper()
	ns, err := natsembed.Start(natsembed.Options{Dir: tb.TempDir(), Listen: listen})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ns.Shutdown)
	return ns
}
