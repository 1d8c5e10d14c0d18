package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

// testLogger discards logs unless SQLSYNC_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("SQLSYNC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testSeed returns the seed for a test's random choices, from
// SQLSYNC_TEST_SEED if set, and prints it if the test fails.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SQLSYNC_TEST_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SQLSYNC_TEST_SEED: %v", err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed=%d (rerun with SQLSYNC_TEST_SEED=%d)", seed, seed)
		}
	})
	return seed
}

// todoMutator gives every document the todo test mutator.
func todoMutator(string) engine.Mutator { return testmutator.Mutator{} }

// testServer is a coordinator listening on 127.0.0.1.
type testServer struct {
	*Server
	dir  string
	addr string // host:port
	url  string // the sync endpoint
}

// startServer starts a coordinator on a fresh data directory (unless
// cfg.DataDir is set) and stops it when the test ends.
func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	return startServerWith(t, cfg, nil)
}

// startServerWith is startServer with the listener wrapped by wrap, if set.
func startServerWith(t testing.TB, cfg Config, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	if cfg.Mutator == nil {
		cfg.Mutator = todoMutator
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	if wrap != nil {
		go hs.Serve(wrap(ln))
	} else {
		go hs.Serve(ln)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
		hs.Shutdown(ctx)
	})
	addr := ln.Addr().String()
	return &testServer{Server: s, dir: cfg.DataDir, addr: addr, url: "ws://" + addr + SyncPath}
}

// openDocs returns the number of open documents.
func (ts *testServer) openDocs() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.docs)
}

// coordinator runs f on the open (or reopened) coordinator of docID.
func (ts *testServer) coordinator(t *testing.T, docID string, f func(*engine.Coordinator)) {
	t.Helper()
	d, err := ts.acquire(context.Background(), docID)
	if err != nil {
		t.Fatalf("open document %s: %v", docID, err)
	}
	defer ts.release(d)
	f(d.coord)
}

// coordinatorBytes returns the coordinator's copy of docID and its LSN.
func (ts *testServer) coordinatorBytes(t *testing.T, docID string) ([]byte, uint64) {
	t.Helper()
	var b []byte
	var lsn uint64
	ts.coordinator(t, docID, func(c *engine.Coordinator) {
		var err error
		lsn = c.LSN()
		if b, err = c.Database().Bytes(); err != nil {
			t.Fatal(err)
		}
		rows, err := c.Query(`PRAGMA integrity_check`)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(rows.Values), "[[ok]]"; got != want {
			t.Fatalf("coordinator integrity_check: got %v, want %v", got, want)
		}
	})
	return b, lsn
}

// clientOptions tune openClient.
type clientOptions struct {
	stateDir string
	mutator  engine.Mutator
	dial     client.Dialer
	offline  bool
	// queueOnly opens the replica without a mutator (mutator is ignored).
	queueOnly bool
}

// openClient opens a replica of docID synced with ts, closed when the test ends.
func openClient(t *testing.T, ts *testServer, docID string, o clientOptions) *client.Doc {
	t.Helper()
	if o.mutator == nil {
		o.mutator = testmutator.Mutator{}
	}
	if o.queueOnly {
		o.mutator = nil
	}
	opts := client.Options{
		URL:        ts.url,
		DocID:      docID,
		Mutator:    o.mutator,
		StateDir:   o.stateDir,
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
		Logger:     testLogger(),
		Dial:       o.dial,
	}
	if o.offline {
		opts.URL = ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	d, err := client.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// waitSynced waits until d is synced, failing the test after testTimeout.
func waitSynced(t *testing.T, d *client.Doc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := d.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitConverged waits until every replica is synced at the coordinator's
// LSN, then checks that each is byte for byte the coordinator's copy and
// passes PRAGMA integrity_check.
func waitConverged(t *testing.T, ts *testServer, docID string, docs ...*client.Doc) []byte {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		_, lsn := ts.coordinatorBytes(t, docID)
		var lagging []string
		for i, d := range docs {
			if s := d.Status(); !s.Synced() || s.LSN != lsn {
				lagging = append(lagging, fmt.Sprintf("replica %d: %+v", i, s))
			}
		}
		if len(lagging) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no convergence at LSN %d after %v: %v", lsn, testTimeout, lagging)
		}
		time.Sleep(5 * time.Millisecond)
	}
	want, lsn := ts.coordinatorBytes(t, docID)
	for i, d := range docs {
		got, err := d.Engine().Database().Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if d.Engine().LSN() != lsn || !bytes.Equal(got, want) {
			t.Fatalf("replica %d at LSN %d (%d bytes) differs from the coordinator at LSN %d (%d bytes)",
				i, d.Engine().LSN(), len(got), lsn, len(want))
		}
		checkIntegrity(t, d)
	}
	return want
}

func checkIntegrity(t *testing.T, d *client.Doc) {
	t.Helper()
	rows, err := d.Query(context.Background(), `PRAGMA integrity_check`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(rows.Values), "[[ok]]"; got != want {
		t.Fatalf("replica integrity_check: got %v, want %v", got, want)
	}
}

// mutate runs a todo mutation on d, failing the test if it is refused locally.
func mutate(t *testing.T, d *client.Doc, name string, a testmutator.Args) uint64 {
	t.Helper()
	seq, err := d.Mutate(context.Background(), name, a.Encode())
	if err != nil {
		t.Fatalf("mutate %s %+v: %v", name, a, err)
	}
	return seq
}

// queryString runs a query on d and formats its rows.
func queryString(t *testing.T, d *client.Doc, sql string, args ...any) string {
	t.Helper()
	rows, err := d.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return fmt.Sprint(rows.Values)
}

// wireLog records what a replica sends and receives: its Hellos and, for
// every Diff frame, its range and page count.
type wireLog struct {
	mu     sync.Mutex
	hellos []protocol.Hello
	diffs  []diffFrame
}

type diffFrame struct {
	from, to  uint64
	pageCount uint32
	pages     []uint32
	more      bool
}

// dialer returns a Dialer over WebSocket that records into w.
func (w *wireLog) dialer() client.Dialer {
	return func(ctx context.Context, url string) (client.Transport, error) {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
		if err != nil {
			return nil, err
		}
		ws.SetReadLimit(64 << 20)
		return &loggedTransport{ws: ws, log: w, stop: context.AfterFunc(ctx, func() { ws.Close() })}, nil
	}
}

// diffsSince returns the Diff frames received from frame index since on,
// grouped into whole diffs (frames joined by More).
func (w *wireLog) diffsSince(since int) []diffFrame {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []diffFrame
	var cur *diffFrame
	for _, f := range w.diffs[min(since, len(w.diffs)):] {
		if cur == nil {
			cur = &diffFrame{from: f.from, to: f.to, pageCount: f.pageCount}
		}
		cur.pages = append(cur.pages, f.pages...)
		if !f.more {
			out = append(out, *cur)
			cur = nil
		}
	}
	return out
}

func (w *wireLog) frameCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.diffs)
}

func (w *wireLog) helloList() []protocol.Hello {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]protocol.Hello(nil), w.hellos...)
}

type loggedTransport struct {
	ws   *websocket.Conn
	log  *wireLog
	wmu  sync.Mutex
	stop func() bool
}

func (t *loggedTransport) Read(ctx context.Context) ([]byte, error) {
	_, b, err := t.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if f, err := protocol.Decode(b, protocol.Limits{MaxFrameBytes: 64 << 20}); err == nil && f.Diff != nil {
		df := diffFrame{from: f.Diff.From, to: f.Diff.To, pageCount: f.Diff.PageCount, more: f.Diff.More}
		for _, p := range f.Diff.Pages {
			df.pages = append(df.pages, p.No)
		}
		t.log.mu.Lock()
		t.log.diffs = append(t.log.diffs, df)
		t.log.mu.Unlock()
	}
	return b, nil
}

func (t *loggedTransport) Write(ctx context.Context, frame []byte) error {
	if f, err := protocol.Decode(frame, protocol.Limits{}); err == nil && f.Hello != nil {
		t.log.mu.Lock()
		t.log.hellos = append(t.log.hellos, *f.Hello)
		t.log.mu.Unlock()
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.ws.WriteMessage(websocket.BinaryMessage, frame)
}

func (t *loggedTransport) Close() error {
	t.stop()
	return t.ws.Close()
}

// rawConn is a bare WebSocket connection to the sync endpoint, for tests
// that send what a well-behaved client would not.
type rawConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialRaw(t *testing.T, ts *testServer) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, ts.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(64 << 20)
	t.Cleanup(func() { ws.Close() })
	return &rawConn{t: t, ws: ws}
}

func (c *rawConn) send(f protocol.Frame) {
	c.t.Helper()
	b, err := protocol.Encode(f)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendBytes(websocket.BinaryMessage, b)
}

func (c *rawConn) sendBytes(kind int, b []byte) {
	c.t.Helper()
	c.ws.SetWriteDeadline(time.Now().Add(testTimeout))
	if err := c.ws.WriteMessage(kind, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func hello(docID, clientID string) protocol.Frame {
	return protocol.Frame{Hello: &protocol.Hello{Version: protocol.Version, DocID: docID, ClientID: clientID}}
}

// errNoClose is returned by untilClose when the connection ends without a
// Close frame.
var errNoClose = errors.New("connection ended without a Close frame")

// untilClose reads frames until a Close frame, which it returns, and then
// checks that the WebSocket itself closes.
func (c *rawConn) untilClose() (*protocol.Close, []protocol.Frame, error) {
	c.ws.SetReadDeadline(time.Now().Add(testTimeout))
	var before []protocol.Frame
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return nil, before, fmt.Errorf("%w (after %d frames): %v", errNoClose, len(before), err)
		}
		f, err := protocol.Decode(b, protocol.Limits{MaxFrameBytes: 64 << 20})
		if err != nil {
			return nil, before, fmt.Errorf("bad frame from the server: %v", err)
		}
		if f.Close == nil {
			before = append(before, f)
			continue
		}
		// The WebSocket close follows.
		for {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if !errors.As(err, &ce) {
					return f.Close, before, fmt.Errorf("after the Close frame: %v, want a WebSocket close", err)
				}
				return f.Close, before, nil
			}
		}
	}
}

func pushFrame(seq uint64, name string, a testmutator.Args) protocol.Frame {
	return protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{{Seq: seq, Name: name, Args: a.Encode()}}}}
}
