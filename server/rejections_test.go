package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// gateMutator is the todo mutator whose "fail" waits, once it has said it
// entered, until release is closed.
type gateMutator struct {
	testmutator.Mutator
	entered chan struct{}
	release chan struct{}
}

func (m gateMutator) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if name == "fail" {
		m.entered <- struct{}{}
		<-m.release
	}
	return m.Mutator.Mutate(ctx, conn, name, args)
}

func rej(seq uint64) protocol.Rejected {
	return protocol.Rejected{Seq: seq, Message: fmt.Sprint("no ", seq)}
}

func seqs(rs []protocol.Rejected) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}

// TestRejectionsKept: the kept rejections of a client are those recorded
// after the LSN it asks from, per document and client, and bounded per
// client and in all.
func TestRejectionsKept(t *testing.T) {
	var k rejections
	k.add("d", "a", 10, rej(1))
	k.add("d", "a", 12, rej(2))
	k.add("d", "b", 12, rej(7))
	k.add("e", "a", 3, rej(9))
	if got := seqs(k.since("d", "a", 0)); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("since 0: %v, want [1 2]", got)
	}
	if got := seqs(k.since("d", "a", 11)); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("since 11: %v, want [2]", got)
	}
	// A replica at 11 received seq 1 before the diff that took it there:
	// it is forgotten.
	if got := seqs(k.since("d", "a", 0)); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("since 0 after since 11: %v, want [2]", got)
	}
	if got := seqs(k.since("d", "a", 12)); got != nil {
		t.Fatalf("since 12: %v, want none", got)
	}
	if got := seqs(k.since("d", "b", 0)); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("client b: %v, want [7]", got)
	}
	if got := seqs(k.since("e", "a", 0)); !slices.Equal(got, []uint64{9}) {
		t.Fatalf("document e: %v, want [9]", got)
	}

	// Per client: the newest maxKeptPerClient.
	for i := range uint64(maxKeptPerClient + 10) {
		k.add("p", "c", 100+i, rej(i+1))
	}
	if got := seqs(k.since("p", "c", 0)); len(got) != maxKeptPerClient || got[0] != 11 {
		t.Fatalf("per client: %d kept from seq %v, want %d from 11", len(got), got[:1], maxKeptPerClient)
	}

	// In all: the newest maxKeptRejections, the oldest dropped first.
	var g rejections
	for i := range maxKeptRejections + 100 {
		g.add("g", fmt.Sprint("c", i), 1, rej(uint64(i)))
	}
	if g.count != maxKeptRejections || len(g.byKey) != maxKeptRejections {
		t.Fatalf("kept %d for %d clients, want %d", g.count, len(g.byKey), maxKeptRejections)
	}
	if g.since("g", "c99", 0) != nil || g.since("g", "c100", 0) == nil {
		t.Fatalf("the oldest were not the ones dropped")
	}
	if len(g.order) > 2*maxKeptRejections {
		t.Fatalf("order holds %d keys for %d kept", len(g.order), g.count)
	}
}

// goneBeforeRejection connects to document "doc" of ts as client "gone",
// pushes seq 1, "fail", which gate holds, and closes the connection before
// the coordinator rejects it; it returns once the rejection is made, with
// the connection's Welcome.
func goneBeforeRejection(t *testing.T, ts *testServer, gate gateMutator) protocol.Welcome {
	t.Helper()
	raw := dialRaw(t, ts)
	raw.Send(hello("doc", "gone"))
	w := raw.ExpectWelcome()
	raw.Send(pushFrame(1, "fail", testmutator.Args{Message: "not today"}))
	<-gate.entered
	raw.WS.Close() // gone before the Rejected frame
	waitFor(t, "the connection to end", func() bool { return ts.connCount() == 0 })
	close(gate.release)
	waitFor(t, "the rejection", func() bool { return lastSeq(t, ts, "doc", "gone") == 1 })
	return w
}

// TestRejectionKeptForReconnect: a client whose connection is gone before
// its mutation is rejected is told when it joins again from an LSN before
// the rejection; another connection of the same client that is joined
// when a rejection happens is told at once.
func TestRejectionKeptForReconnect(t *testing.T) {
	gate := gateMutator{entered: make(chan struct{}, 10), release: make(chan struct{})}
	ts := startServer(t, Config{Mutator: func(string) engine.Mutator { return gate }})
	w := goneBeforeRejection(t, ts, gate)

	d, err := ts.acquire(context.Background(), "doc")
	if err != nil {
		t.Fatal(err)
	}
	defer ts.release(d)
	newConn := func() *conn {
		return &conn{s: ts.Server, clientID: "gone", log: testLogger(), wakeCh: make(chan struct{}, 1), done: make(chan struct{})}
	}
	queued := func(c *conn) []protocol.Rejected {
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.Clone(c.rejected)
	}
	back := newConn()
	if full := d.join(back, w.LSN, 10); full {
		t.Fatal("join: full")
	}
	defer func() { d.mu.Lock(); delete(d.conns, back); d.mu.Unlock() }()
	if got := queued(back); len(got) != 1 || got[0].Seq != 1 || !strings.Contains(got[0].Message, "not today") {
		t.Fatalf("queued on the rejoining connection: %+v, want seq 1 with the mutator's message", got)
	}

	// Live: a rejection reaches every connection of its client, not only
	// the one that pushed.
	other := dialRaw(t, ts)
	other.Send(hello("doc", "gone"))
	other.ExpectWelcome()
	other.Send(pushFrame(2, "fail", testmutator.Args{Message: "nor tomorrow"}))
	waitFor(t, "the second rejection", func() bool { return lastSeq(t, ts, "doc", "gone") == 2 })
	if got := seqs(queued(back)); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("queued on the joined connection: %v, want [1 2]", got)
	}

	// A connection from an LSN after the rejections is told nothing; the
	// limit on connections holds.
	late := newConn()
	if full := d.join(late, ts.lsn(t, "doc"), 10); full {
		t.Fatal("join: full")
	}
	defer func() { d.mu.Lock(); delete(d.conns, late); d.mu.Unlock() }()
	if got := queued(late); len(got) != 0 {
		t.Fatalf("queued for a replica past the rejections: %+v", got)
	}
	if full := d.join(newConn(), 0, 1); !full {
		t.Fatal("join over maxConns: not full")
	}
}

// expectRejectedThenDiff reads frames until a Diff and checks that the
// frames before it are exactly one Rejected: seq, with msg in its message.
func expectRejectedThenDiff(t *testing.T, c *rawConn, seq uint64, msg string) {
	t.Helper()
	var before []protocol.Frame
	for {
		f := c.Next()
		if f.Diff != nil {
			break
		}
		before = append(before, f)
	}
	if len(before) != 1 || before[0].Rejected == nil {
		var kinds []string
		for _, f := range before {
			kinds = append(kinds, f.Kind())
		}
		t.Fatalf("before the first diff: %v, want one rejected", kinds)
	}
	if r := before[0].Rejected; r.Seq != seq || !strings.Contains(r.Message, msg) {
		t.Fatalf("rejected %+v, want seq %d with %q", *r, seq, msg)
	}
}

func lastSeq(t *testing.T, ts *testServer, doc, id string) uint64 {
	t.Helper()
	var last uint64
	ts.coordinator(t, doc, func(c *engine.Coordinator) {
		var err error
		if last, err = c.LastSeq(id); err != nil {
			t.Fatal(err)
		}
	})
	return last
}

// TestRejectionAcrossReconnect, end to end on the wire: the connection of
// a client is gone before its mutation is rejected; when it connects again
// from the snapshot it had, to the same coordinator, to the next one on
// the data directory, or to another node of a cluster that took the
// document over (the rejection is durable beside the document: in its
// directory, or in JetStream), the Rejected frame (seq and the mutator's
// message) comes before any diff, the diff that shows the mutation done.
func TestRejectionAcrossReconnect(t *testing.T) {
	for _, then := range []string{"reconnect", "restart", "failover"} {
		t.Run(then, func(t *testing.T) {
			gate := gateMutator{entered: make(chan struct{}, 10), release: make(chan struct{})}
			dir := t.TempDir()
			mut := func(string) engine.Mutator { return gate }
			var ts, other *testServer
			if then == "failover" {
				nodes := clusterNodes(t, 2, time.Second, mut)
				ts, other = nodes[0], nodes[1]
			} else {
				ts = startServer(t, Config{DataDir: dir, Mutator: mut})
			}
			w := goneBeforeRejection(t, ts, gate)
			switch then {
			case "restart":
				if err := ts.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				ts = startServer(t, Config{DataDir: dir})
			case "failover":
				if err := ts.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				ts = other
			}

			back := dialRaw(t, ts)
			h := hello("doc", "gone")
			h.Hello.LSN = w.LSN
			back.Send(h)
			back.ExpectWelcome()
			expectRejectedThenDiff(t, back, 1, "not today")

			// A connection from a snapshot past the rejection is not told again.
			past := dialRaw(t, ts)
			h = hello("doc", "gone")
			h.Hello.LSN = ts.lsn(t, "doc")
			past.Send(h)
			past.ExpectWelcome()
			past.Send(pushFrame(2, "add", testmutator.Args{ID: "x", Title: "after"}))
			if f := past.Next(); f.Diff == nil {
				t.Fatalf("after the welcome: %s, want the diff of seq 2", f.Kind())
			}
		})
	}
}

// TestRejectionBeforeDiffWhileCommitting: a connection of the client that
// joins after the commit that rejected its mutation, but before the
// document's writer has queued the rejection, still gets the Rejected
// frame before the diff that spans that commit: its diff waits.
func TestRejectionBeforeDiffWhileCommitting(t *testing.T) {
	committed, resume := make(chan struct{}, 10), make(chan struct{})
	var armed atomic.Bool
	ts := startServer(t, Config{Mutator: func(string) engine.Mutator { return testmutator.Mutator{} }})
	ts.Server.afterCommit = func() {
		if armed.Load() {
			committed <- struct{}{}
			<-resume
		}
	}
	first := dialRaw(t, ts)
	first.Send(hello("doc", "c"))
	w := first.ExpectWelcome()
	if f := first.Next(); f.Diff == nil { // the document as it opened
		t.Fatalf("after the welcome: %s, want a diff", f.Kind())
	}
	armed.Store(true)
	first.Send(pushFrame(1, "fail", testmutator.Args{Message: "no way"}))
	<-committed // the rejection is committed, not yet queued
	armed.Store(false)

	second := dialRaw(t, ts)
	h := hello("doc", "c")
	h.Hello.LSN = w.LSN
	second.Send(h)
	second.ExpectWelcome()
	// Time for the new connection's writer to send a diff, were it not
	// waiting for the rejection.
	time.Sleep(100 * time.Millisecond)
	close(resume)
	expectRejectedThenDiff(t, second, 1, "no way")
	expectRejectedThenDiff(t, first, 1, "no way")
}

// rejectOnServer is the todo mutator, except that an "add" titled
// "reject-me" fails, once it has said it entered and been released: on
// the coordinator only, since the replica runs the plain todo mutator.
type rejectOnServer struct {
	testmutator.Mutator
	entered chan struct{}
	release chan struct{}
}

func (m rejectOnServer) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	var a testmutator.Args
	if name == "add" && json.Unmarshal(args, &a) == nil && a.Title == "reject-me" {
		m.entered <- struct{}{}
		<-m.release
		return errors.New("not on the server")
	}
	return m.Mutator.Mutate(ctx, conn, name, args)
}

// TestClientRejectionAcrossReconnect: a replica whose connection drops
// after it pushed a mutation and before the coordinator rejected it
// reports the rejection, with the mutation's seq, name and the mutator's
// message, once it reconnects; the name, which only its pending log
// knows, proves the Rejected frame came before the diff that ends the
// mutation's pending life.
func TestClientRejectionAcrossReconnect(t *testing.T) {
	gate := rejectOnServer{entered: make(chan struct{}, 10), release: make(chan struct{})}
	ts := startServer(t, Config{Mutator: func(string) engine.Mutator { return gate }})
	var (
		down atomic.Bool
		mu   sync.Mutex
		cur  client.Transport
	)
	d := openClient(t, ts, "doc", clientOptions{dial: func(ctx context.Context, url string) (client.Transport, error) {
		if down.Load() {
			return nil, errors.New("the network is down (test)")
		}
		tr, err := servertest.Dialer{}.Dial(ctx, url)
		mu.Lock()
		cur = tr
		mu.Unlock()
		return tr, err
	}})
	waitSynced(t, d)
	rejected := make(chan *engine.RejectedError, 10)
	d.Watch(func(e client.Event) {
		if e.Rejected != nil {
			rejected <- e.Rejected
		}
	})
	seq, err := d.Mutate(context.Background(), "add", testmutator.Args{ID: "r", Title: "reject-me"})
	if err != nil {
		t.Fatal(err)
	}
	<-gate.entered
	down.Store(true)
	mu.Lock()
	cur.Close()
	mu.Unlock()
	waitFor(t, "the connection to end", func() bool { return ts.connCount() == 0 })
	close(gate.release)
	waitFor(t, "the rejection", func() bool { return lastSeq(t, ts, "doc", d.ClientID()) == seq })
	select {
	case r := <-rejected:
		t.Fatalf("rejection reported while offline: %v", r)
	default:
	}

	down.Store(false)
	select {
	case r := <-rejected:
		if r.Seq != seq || r.Name != "add" || r.Message != "not on the server" {
			t.Fatalf("rejected %+v, want seq %d, add, the mutator's message", *r, seq)
		}
	case <-time.After(testTimeout):
		t.Fatal("no rejection after reconnecting")
	}
	waitSynced(t, d)
	if n := d.Status().Pending; n != 0 {
		t.Fatalf("%d pending", n)
	}
}
