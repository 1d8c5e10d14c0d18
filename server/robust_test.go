package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// robustLimits are small enough that a test can exceed them cheaply.
var robustLimits = protocol.Limits{MaxFrameBytes: 64 << 10}

// TestMalformedFrames sends what a broken or hostile client might while
// two well-behaved replicas write to the same document. Each bad connection
// gets a Close frame with the right code and a reason, then the WebSocket
// close; the others never notice, the document stays whole, and they
// converge.
func TestMalformedFrames(t *testing.T) {
	ts := startServer(t, Config{Limits: robustLimits})
	a := openClient(t, ts, "doc", clientOptions{})
	b := openClient(t, ts, "doc", clientOptions{})
	mutate(t, a, "bulk", testmutator.Args{Prefix: "seed-", N: 200})
	waitConverged(t, ts, "doc", a, b)

	// The replicas keep writing while the bad connections come and go.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			d := []*client.Doc{a, b}[i%2]
			if _, err := d.Mutate(context.Background(), "add", testmutator.Args{ID: fmt.Sprintf("w%d", i), Title: "during"}.Encode()); err != nil {
				writeErr = err
				return
			}
			time.Sleep(time.Millisecond)
		}
	})

	big := make([]byte, robustLimits.MaxFrameBytes+1)
	for _, tt := range []struct {
		name   string
		send   func(c *rawConn)
		code   string
		reason string // a substring of the reason
	}{
		{"random bytes", func(c *rawConn) {
			c.SendBytes(websocket.BinaryMessage, []byte{0xde, 0xad, 0xbe, 0xef, 0x00, 0x13, 0x37})
		}, protocol.CodeBadFrame, "decode frame"},
		{"empty frame", func(c *rawConn) {
			c.SendBytes(websocket.BinaryMessage, nil)
		}, protocol.CodeBadFrame, "empty"},
		{"hello then garbage", func(c *rawConn) {
			c.Send(hello("doc", "garbage"))
			c.SendBytes(websocket.BinaryMessage, []byte("\xa1\x02\xa1\x01\x81\xa3\x01\x00"))
		}, protocol.CodeBadFrame, "decode frame"},
		{"text frame", func(c *rawConn) {
			c.SendBytes(websocket.TextMessage, []byte(`{"hello":{}}`))
		}, protocol.CodeBadFrame, "binary"},
		{"text frame after hello", func(c *rawConn) {
			c.Send(hello("doc", "text"))
			c.SendBytes(websocket.TextMessage, []byte(`{"push":{}}`))
		}, protocol.CodeBadFrame, "binary"},
		{"oversized frame", func(c *rawConn) {
			c.SendBytes(websocket.BinaryMessage, big)
		}, protocol.CodeLimit, fmt.Sprint(robustLimits.MaxFrameBytes)},
		{"oversized frame after hello", func(c *rawConn) {
			c.Send(hello("doc", "oversized"))
			c.SendBytes(websocket.BinaryMessage, big)
		}, protocol.CodeLimit, fmt.Sprint(robustLimits.MaxFrameBytes)},
		{"push before hello", func(c *rawConn) {
			c.Send(pushFrame(1, "add", testmutator.Args{ID: "sneaky", Title: "sneaky"}))
		}, protocol.CodeBadRequest, "hello"},
		{"second hello", func(c *rawConn) {
			c.Send(hello("doc", "twice"))
			c.Send(hello("doc", "twice"))
		}, protocol.CodeBadRequest, "hello"},
		{"wrong version", func(c *rawConn) {
			c.Send(protocol.Frame{Hello: &protocol.Hello{Version: protocol.Version + 1, DocID: "doc", ClientID: "future"}})
		}, protocol.CodeVersion, "version"},
		{"path traversal", func(c *rawConn) {
			c.Send(hello("../x", "traveller"))
		}, protocol.CodeBadRequest, "document ID"},
		{"absolute path", func(c *rawConn) {
			c.Send(hello("/etc/passwd", "traveller"))
		}, protocol.CodeBadRequest, "document ID"},
		{"dot doc", func(c *rawConn) {
			c.Send(hello("..", "traveller"))
		}, protocol.CodeBadRequest, "document ID"},
		{"future LSN", func(c *rawConn) {
			c.Send(protocol.Frame{Hello: &protocol.Hello{Version: protocol.Version, DocID: "doc", ClientID: "ahead", LSN: 1 << 40}})
		}, protocol.CodeBadRequest, "LSN"},
		{"seq gap", func(c *rawConn) {
			c.Send(hello("doc", "gap"))
			c.Send(pushFrame(5, "add", testmutator.Args{ID: "gap", Title: "gap"}))
		}, protocol.CodeBadRequest, "seq"},
		{"server frame from client", func(c *rawConn) {
			c.Send(hello("doc", "welcomer"))
			c.Send(protocol.Frame{Welcome: &protocol.Welcome{Version: protocol.Version}})
		}, protocol.CodeBadRequest, "welcome"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			tt.send(c)
			c.ExpectClose(tt.code, tt.reason)
		})
	}
	stop()
	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	for _, d := range []*client.Doc{a, b} {
		if s := d.Status(); s.LastError != "" {
			t.Fatalf("a well-behaved replica lost its connection: %+v", s)
		}
	}
	waitConverged(t, ts, "doc", a, b)
	if got, want := queryString(t, a, `SELECT count(*) FROM items WHERE id IN ('sneaky', 'gap')`), "[[0]]"; got != want {
		t.Fatalf("mutations from refused connections: got %v, want %v", got, want)
	}
	if got, want := ts.openDocs(), 1; got != want {
		t.Fatalf("open documents: got %v, want %v", got, want)
	}
}

// TestHelloTimeout: a connection that never says hello is closed.
func TestHelloTimeout(t *testing.T) {
	ts := startServer(t, Config{HelloTimeout: 50 * time.Millisecond})
	c := dialRaw(t, ts)
	c.WS.SetReadDeadline(time.Now().Add(testTimeout))
	if _, _, err := c.WS.ReadMessage(); err == nil {
		t.Fatal("the server sent a frame to a silent connection")
	}
}

// FuzzServerFrames sends a fuzzed frame, after a hello or as the first
// frame, to a running server. The server must answer with frames that
// decode, end a bad connection with a Close frame of a known code and a
// reason, and stay healthy.
func FuzzServerFrames(f *testing.F) {
	for _, fr := range []protocol.Frame{
		hello("doc", "seed"),
		pushFrame(1, "add", testmutator.Args{ID: "fuzz", Title: "fuzz"}),
		pushFrame(1, "fail", testmutator.Args{Message: "no"}),
		{Welcome: &protocol.Welcome{Version: 1}},
		{Close: &protocol.Close{Code: "bye", Reason: "fuzz"}},
		{Diff: &protocol.Diff{From: 0, To: 1, PageCount: 1, Pages: []protocol.Page{{No: 1, Data: make([]byte, protocol.PageSize)}}}},
	} {
		b, err := protocol.Encode(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(true, b)
		f.Add(false, b)
	}
	f.Add(true, []byte{})
	f.Add(false, []byte("\xff\xff\xff"))

	ts := startServer(f, Config{Limits: robustLimits, HelloTimeout: time.Second})
	known := map[string]bool{
		protocol.CodeBadFrame: true, protocol.CodeBadRequest: true, protocol.CodeLimit: true,
		protocol.CodeVersion: true, protocol.CodeUnauthorized: true, protocol.CodeForbidden: true,
	}
	var n int
	f.Fuzz(func(t *testing.T, afterHello bool, data []byte) {
		n++
		c := dialRaw(t, ts)
		if afterHello {
			c.Send(hello("fuzz", fmt.Sprintf("fuzzer%d", n)))
		}
		c.SendBytes(websocket.BinaryMessage, data)
		// A frame the server takes (a valid push after hello) leaves the
		// connection open: stop reading after a while.
		readFrames(t, c, 200*time.Millisecond, func(fr protocol.Frame) {
			if fr.Close != nil && (!known[fr.Close.Code] || fr.Close.Reason == "") {
				t.Fatalf("close: code %q reason %q", fr.Close.Code, fr.Close.Reason)
			}
		})
		checkHealthy(t, ts)
	})
}
