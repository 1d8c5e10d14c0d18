package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/shared/protocol"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// testTimeout bounds every wait in these tests, testLogger gives them a
// logger (SQLSYNC_TEST_LOG) and testSeed the seed of their random choices
// (SQLSYNC_TEST_SEED).
const testTimeout = servertest.Timeout

var testLogger, testSeed = servertest.Logger, servertest.Seed

// The servertest helpers these tests call everywhere, by short names.
var (
	waitSynced  = servertest.WaitSynced
	waitFor     = servertest.WaitFor
	mutate      = servertest.Mutate
	queryString = servertest.Query
)

// rawConn is a bare WebSocket connection to the sync endpoint.
type rawConn = servertest.RawConn

// dialRaw connects a rawConn to ts, closed when the test ends.
func dialRaw(t *testing.T, ts *testServer) *rawConn { return servertest.DialRaw(t, ts.url) }

// readFrames hands each frame the server sends c to each, until a Close
// frame or quiet for d; it fails t if the WebSocket closes without a Close
// frame or a frame does not decode.
func readFrames(t *testing.T, c *rawConn, d time.Duration, each func(protocol.Frame)) {
	t.Helper()
	c.WS.SetReadDeadline(time.Now().Add(d))
	for {
		_, b, err := c.WS.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				t.Fatalf("WebSocket closed (%v) without a Close frame", ce)
			}
			return // the deadline: the server sent nothing more
		}
		fr, err := protocol.Decode(b, protocol.Limits{MaxFrameBytes: 64 << 20})
		if err != nil {
			t.Fatalf("the server sent a bad frame: %v", err)
		}
		each(fr)
		if fr.Close != nil {
			return
		}
	}
}

// checkHealthy fails t unless ts answers its health check with "ok".
func checkHealthy(t *testing.T, ts *testServer) {
	t.Helper()
	resp, err := http.Get("http://" + ts.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"ok"`)) {
		t.Fatalf("healthz: %s %s", resp.Status, body)
	}
}

// hello and pushFrame make the frames raw connections send most.
var hello, pushFrame = servertest.Hello, servertest.Push

// wireLog records a replica's Hellos and Diff frames.
type wireLog = servertest.WireLog

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
	return startServerOn(t, cfg, servertest.Listen(t))
}

// startServerWith is startServer with the listener wrapped by wrap.
func startServerWith(t testing.TB, cfg Config, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	return startServerOn(t, cfg, wrap(servertest.Listen(t)))
}

// startServerOn is startServer on ln, from servertest.Listen: for a
// coordinator whose Config needs its address.
func startServerOn(t testing.TB, cfg Config, ln net.Listener) *testServer {
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
	hs := servertest.Start(t, s, ln)
	return &testServer{Server: s, dir: cfg.DataDir, addr: hs.Addr, url: hs.URL(SyncPath)}
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
	token    string
	hash     string // the mutator module's, in client.Options.MutatorHash
	offline  bool
	// queueOnly opens the replica without a mutator (mutator is ignored).
	queueOnly bool
	// others are more coordinators (client.Options.URLs).
	others []*testServer
	// presence asks for presence (client.Options.Presence).
	presence bool
	// lazy opens the replica lazily with this cache (client.Options.Lazy
	// and CacheBytes); 0 opens it whole.
	lazyCache int64
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
	opts := client.Options{URL: ts.url, DocID: docID, Mutator: o.mutator, MutatorHash: o.hash,
		StateDir: o.stateDir, Token: o.token, Dial: o.dial, Presence: o.presence,
		Lazy: o.lazyCache > 0, CacheBytes: o.lazyCache}
	for _, other := range o.others {
		opts.URLs = append(opts.URLs, other.url)
	}
	if o.offline {
		opts.URL, opts.URLs = "", nil
	}
	return servertest.OpenReplica(t, opts)
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
		servertest.CheckIntegrity(t, d)
	}
	return want
}
