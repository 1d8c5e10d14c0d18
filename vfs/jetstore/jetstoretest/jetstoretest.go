// Package jetstoretest starts an embedded single-node NATS JetStream server
// for tests of the JetStream journal.
package jetstoretest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Start starts a JetStream node in this process (no listener, every ack
// fsynced, its store in a temporary directory) and returns a connection to
// it; both end with the test. (The caller makes the commit stream, with
// jetstore.EnsureStream: this package cannot import jetstore, whose own
// tests use it.)
func Start(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	ns := start(tb, &server.Options{DontListen: true})
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// Listen starts a JetStream node in this process listening on a free port
// of 127.0.0.1, for other processes (a sqlsync serve), and returns its
// URL; it stops when the test ends.
func Listen(tb testing.TB) string {
	tb.Helper()
	return start(tb, &server.Options{Host: "127.0.0.1", Port: -1}).ClientURL()
}

func start(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	opts.JetStream, opts.StoreDir, opts.SyncAlways = true, tb.TempDir(), true
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats-server did not start")
	}
	tb.Cleanup(ns.Shutdown)
	return ns
}
