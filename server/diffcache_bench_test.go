//go:build linux || darwin

package server

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// BenchmarkDiffFanOut times one commit (a one-row todo insert) and its
// diff reaching every connection of the document: a writer and readers
// connected with permessage-deflate, as replicas are. Besides ns/op it
// reports the process's CPU time per commit (cpu-ns/op, user and system,
// from getrusage), which other processes on the machine disturb far less
// than the wall clock.
func BenchmarkDiffFanOut(b *testing.B) {
	for _, readers := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("readers=%d", readers), func(b *testing.B) { benchFanOut(b, readers) })
	}
}

func benchFanOut(b *testing.B, readers int) {
	ts := startServer(b, Config{RatePerConn: 1e9, RateBurst: 1 << 30})
	dialer := &websocket.Dialer{EnableCompression: true, ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
	dial := func(clientID string) (*rawConn, uint64) {
		c, _, err := servertest.DialRawWith(b, ts.url, dialer, nil)
		if err != nil {
			b.Fatal(err)
		}
		c.Send(hello("doc", clientID))
		return c, c.ExpectWelcome().LSN
	}
	// until reads c's frames until a diff brings it to lsn.
	until := func(c *rawConn, lsn uint64) error {
		for {
			c.WS.SetReadDeadline(time.Now().Add(testTimeout))
			_, msg, err := c.WS.ReadMessage()
			if err != nil {
				return err
			}
			f, err := protocol.Decode(msg, protocol.Limits{MaxFrameBytes: 64 << 20})
			if err != nil {
				return err
			}
			if f.Diff != nil && !f.Diff.More && f.Diff.To >= lsn {
				return nil
			}
		}
	}
	w, lsn := dial("writer")
	// A document of some size first: 2000 items.
	w.Send(servertest.Push(1, "bulk", testmutator.Args{Prefix: "seed-", N: 2000}))
	lsn++
	if err := until(w, lsn); err != nil {
		b.Fatal(err)
	}
	seq := uint64(1)
	title := strings.Repeat("call the plumber about the kitchen sink ", 3)
	push := func() {
		seq++
		w.Send(servertest.Push(seq, "add", testmutator.Args{ID: fmt.Sprintf("item-%07d", seq), Title: title}))
	}
	conns := []*rawConn{w}
	for i := range readers {
		c, _ := dial(fmt.Sprintf("reader-%d", i))
		conns = append(conns, c)
	}
	// Every connection's reader runs on its own goroutine, as the
	// replicas would.
	reqs := make([]chan uint64, len(conns))
	acks := make(chan error, len(conns))
	for i, c := range conns {
		reqs[i] = make(chan uint64)
		go func() {
			for lsn := range reqs[i] {
				acks <- until(c, lsn)
			}
		}()
	}
	defer func() {
		for _, r := range reqs {
			close(r)
		}
	}()
	round := func() {
		push()
		lsn++ // one push, one commit
		for _, r := range reqs {
			r <- lsn
		}
		for range conns {
			if err := <-acks; err != nil {
				b.Fatal(err)
			}
		}
	}
	for range 20 { // warm up
		round()
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		round()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCatchUpOne times one connection at LSN 0 receiving the whole
// of a document of 30,000 text rows of about 200 bytes: a diff no other
// connection shares. It reports the process's CPU time per catch-up too.
func BenchmarkCatchUpOne(b *testing.B) {
	ts := startServer(b, Config{Mutator: func(string) engine.Mutator { return testmutator.SQL{} }})
	dialer := &websocket.Dialer{EnableCompression: true, ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
	w, _, err := servertest.DialRawWith(b, ts.url, dialer, nil)
	if err != nil {
		b.Fatal(err)
	}
	w.Send(hello("doc", "writer"))
	lsn := w.ExpectWelcome().LSN
	sql := `CREATE TABLE t(x TEXT);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
		INSERT INTO t SELECT printf('%d buy milk %d call the plumber about the kitchen sink %d book flights to Lisbon renew passport before June %d water plants send invoice for March %d fix bike brakes return library books %d pick up kids at five %d', i, i*7, i*13, i*31, i*101, i*977, i*4099) FROM n`
	w.Send(protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{{Seq: 1, Name: "exec", Args: testmutator.SQLArgs{SQL: sql}.Encode()}}}})
	lsn++
	// read reads c's frames until a diff brings it to lsn or past it.
	read := func(c *rawConn) (uint64, error) {
		for {
			c.WS.SetReadDeadline(time.Now().Add(testTimeout))
			_, msg, err := c.WS.ReadMessage()
			if err != nil {
				return 0, err
			}
			f, err := protocol.Decode(msg, protocol.Limits{MaxFrameBytes: 64 << 20})
			if err != nil {
				return 0, err
			}
			if f.Diff != nil && !f.Diff.More && f.Diff.To >= lsn {
				return f.Diff.To, nil
			}
		}
	}
	if got, err := read(w); err != nil || got != lsn {
		b.Fatalf("writer at %d (%v), want %d", got, err, lsn)
	}
	catchUp := func(i int) {
		c, _, err := servertest.DialRawWith(b, ts.url, dialer, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.WS.Close()
		c.Send(hello("doc", fmt.Sprintf("reader-%d", i)))
		c.ExpectWelcome()
		if got, err := read(c); err != nil || got != lsn {
			b.Fatalf("reader at %d (%v), want %d", got, err, lsn)
		}
	}
	catchUp(-1)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		// Another diff each time: a commit between catch-ups.
		b.StopTimer()
		w.Send(protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{{Seq: uint64(i + 2), Name: "exec", Args: testmutator.SQLArgs{SQL: `INSERT INTO t VALUES ('x')`}.Encode()}}}})
		lsn++
		if got, err := read(w); err != nil || got != lsn {
			b.Fatalf("writer at %d (%v), want %d", got, err, lsn)
		}
		b.StartTimer()
		catchUp(i)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
