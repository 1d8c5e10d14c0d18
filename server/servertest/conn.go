package servertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// RawConn is a bare WebSocket connection to a sync endpoint, for tests that
// send what a well-behaved client would not. Its methods but UntilClose
// fail the test on an error, and every read and write is bounded by
// Timeout.
type RawConn struct {
	// WS is the connection itself, for what the methods do not cover.
	WS *websocket.Conn
	tb testing.TB
}

// DialRaw connects to the sync endpoint url, failing the test if it cannot;
// the connection is closed when the test ends.
func DialRaw(tb testing.TB, url string) *RawConn {
	tb.Helper()
	c, _, err := DialRawWith(tb, url, websocket.DefaultDialer, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// DialRawWith is DialRaw with dialer and header, returning the handshake's
// response when it fails.
func DialRawWith(tb testing.TB, url string, dialer *websocket.Dialer, header http.Header) (*RawConn, *http.Response, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	ws, resp, err := dialer.DialContext(ctx, url, header)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(64 << 20)
	tb.Cleanup(func() { ws.Close() })
	return &RawConn{WS: ws, tb: tb}, resp, nil
}

// Hello is the Hello frame of client clientID for docID.
func Hello(docID, clientID string) protocol.Frame {
	return protocol.Frame{Hello: &protocol.Hello{Version: protocol.Version, DocID: docID, ClientID: clientID}}
}

// Push is a Push frame of one todo mutation.
func Push(seq uint64, name string, a testmutator.Args) protocol.Frame {
	return protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{{Seq: seq, Name: name, Args: a.Encode()}}}}
}

// Send encodes f and sends it.
func (c *RawConn) Send(f protocol.Frame) {
	c.tb.Helper()
	b, err := protocol.Encode(f)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.SendBytes(websocket.BinaryMessage, b)
}

// SendBytes sends b as a WebSocket message of kind.
func (c *RawConn) SendBytes(kind int, b []byte) {
	c.tb.Helper()
	c.WS.SetWriteDeadline(time.Now().Add(Timeout))
	if err := c.WS.WriteMessage(kind, b); err != nil {
		c.tb.Fatalf("send: %v", err)
	}
}

// read reads the next frame; what says what the test waits for.
func (c *RawConn) read(what string) protocol.Frame {
	c.tb.Helper()
	c.WS.SetReadDeadline(time.Now().Add(Timeout))
	_, b, err := c.WS.ReadMessage()
	if err != nil {
		c.tb.Fatalf("%s: %v", what, err)
	}
	f, err := protocol.Decode(b, frameLimits)
	if err != nil {
		c.tb.Fatalf("%s: bad frame from the server: %v", what, err)
	}
	return f
}

// Next reads the next frame from the server.
func (c *RawConn) Next() protocol.Frame {
	c.tb.Helper()
	return c.read("read")
}

// ExpectWelcome reads the next frame and fails the test unless it is a
// Welcome.
func (c *RawConn) ExpectWelcome() protocol.Welcome {
	c.tb.Helper()
	f := c.read("want welcome")
	if f.Welcome == nil {
		if f.Close != nil {
			c.tb.Fatalf("want welcome, got close %s: %s", f.Close.Code, f.Close.Reason)
		}
		c.tb.Fatalf("want welcome, got %s", f.Kind())
	}
	return *f.Welcome
}

// ErrNoClose is returned by UntilClose when the connection ends without a
// Close frame.
var ErrNoClose = errors.New("connection ended without a Close frame")

// UntilClose reads frames until a Close frame, which it returns with the
// frames before it, and then checks that the WebSocket itself closes.
func (c *RawConn) UntilClose() (*protocol.Close, []protocol.Frame, error) {
	c.WS.SetReadDeadline(time.Now().Add(Timeout))
	var before []protocol.Frame
	for {
		_, b, err := c.WS.ReadMessage()
		if err != nil {
			return nil, before, fmt.Errorf("%w (after %d frames): %v", ErrNoClose, len(before), err)
		}
		f, err := protocol.Decode(b, frameLimits)
		if err != nil {
			return nil, before, fmt.Errorf("bad frame from the server: %v", err)
		}
		if f.Close == nil {
			before = append(before, f)
			continue
		}
		// The WebSocket close follows.
		for {
			if _, _, err := c.WS.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if !errors.As(err, &ce) {
					return f.Close, before, fmt.Errorf("after the Close frame: %v, want a WebSocket close", err)
				}
				return f.Close, before, nil
			}
		}
	}
}

// ExpectClose reads until the Close frame and checks its code and that its
// reason mentions reason; it returns the frames before it.
func (c *RawConn) ExpectClose(code, reason string) []protocol.Frame {
	c.tb.Helper()
	cl, before, err := c.UntilClose()
	if err != nil {
		c.tb.Fatal(err)
	}
	if cl.Code != code {
		c.tb.Fatalf("close code %q (%s), want %q", cl.Code, cl.Reason, code)
	}
	if !strings.Contains(cl.Reason, reason) {
		c.tb.Fatalf("close reason %q does not mention %q", cl.Reason, reason)
	}
	return before
}

// ExpectRefused is ExpectClose for a connection refused at its Hello:
// nothing of the document (no Welcome, no Diff) may come before the Close.
func (c *RawConn) ExpectRefused(code, reason string) {
	c.tb.Helper()
	for _, f := range c.ExpectClose(code, reason) {
		if f.Welcome != nil || f.Diff != nil {
			c.tb.Fatalf("a %s frame came before the %s refusal", f.Kind(), code)
		}
	}
}
