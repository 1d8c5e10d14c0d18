package server

// Access control and abuse resistance (docs/security.md): each hostile or
// broken client is refused with the right Close code and a clear reason,
// while honest replicas write to the same document alongside and converge
// untouched.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// ---- tokens -----------------------------------------------------------

// hmacConfig returns cfg with a verifier for testSecret.
func hmacConfig(t testing.TB, cfg Config) Config {
	t.Helper()
	v, err := NewHMACVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Verifier = v
	return cfg
}

// mintT mints an HMAC token with testSecret.
func mintT(t testing.TB, docs []string, role Role, ttl time.Duration) string {
	t.Helper()
	tok, err := Mint(testSecret, docs, role, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signT signs claims granting docs with method and key.
func signT(t testing.TB, method jwt.SigningMethod, key any, docs []string, role Role, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(method, Claims{Docs: docs, Role: role, RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publicKeyPEM returns pub as a PKIX PEM block and its DER bytes.
func publicKeyPEM(t testing.TB, pub crypto.PublicKey) (pemBytes, der []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), der
}

// ---- replicas and raw connections --------------------------------------

// openTokenClient is openClient with an access token.
func openTokenClient(t *testing.T, ts *testServer, docID, token string, dial client.Dialer) *client.Doc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	d, err := client.Open(ctx, client.Options{
		URL: ts.url, DocID: docID, Token: token, Mutator: testmutator.Mutator{},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: testLogger(), Dial: dial,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// waitStopped waits until the coordinator has refused d for good and
// returns its last error.
func waitStopped(t *testing.T, d *client.Doc, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := d.Status()
		if s.State == client.Stopped {
			return s.LastError
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not stopped after %v: %+v", within, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func helloTok(docID, clientID, token string) protocol.Frame {
	f := hello(docID, clientID)
	f.Hello.Token = token
	return f
}

// dialRawWith dials the sync endpoint with dialer and header, returning the
// handshake's response when it fails.
func dialRawWith(t *testing.T, ts *testServer, dialer *websocket.Dialer, header http.Header) (*rawConn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, resp, err := dialer.DialContext(ctx, ts.url, header)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(64 << 20)
	t.Cleanup(func() { ws.Close() })
	return &rawConn{t: t, ws: ws}, resp, nil
}

// expectWelcome reads the next frame and fails the test unless it is a
// Welcome.
func (c *rawConn) expectWelcome() protocol.Welcome {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(testTimeout))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("want welcome: %v", err)
	}
	f, err := protocol.Decode(b, protocol.Limits{MaxFrameBytes: 64 << 20})
	if err != nil {
		c.t.Fatalf("want welcome: %v", err)
	}
	if f.Welcome == nil {
		if f.Close != nil {
			c.t.Fatalf("want welcome, got close %s: %s", f.Close.Code, f.Close.Reason)
		}
		c.t.Fatalf("want welcome, got %s", f.Kind())
	}
	return *f.Welcome
}

// expectClose reads until the Close frame and checks its code and that its
// reason mentions reason; it returns the frames before it.
func (c *rawConn) expectClose(code, reason string) []protocol.Frame {
	c.t.Helper()
	cl, before, err := c.untilClose()
	if err != nil {
		c.t.Fatal(err)
	}
	if cl.Code != code {
		c.t.Fatalf("close code %q (%s), want %q", cl.Code, cl.Reason, code)
	}
	if !strings.Contains(cl.Reason, reason) {
		c.t.Fatalf("close reason %q does not mention %q", cl.Reason, reason)
	}
	return before
}

// expectRefused is expectClose for a connection refused at its Hello:
// nothing of the document (no Welcome, no Diff) may come before the Close.
func (c *rawConn) expectRefused(code, reason string) {
	c.t.Helper()
	for _, f := range c.expectClose(code, reason) {
		if f.Welcome != nil || f.Diff != nil {
			c.t.Fatalf("a %s frame came before the %s refusal", f.Kind(), code)
		}
	}
}

// connCount returns the number of connections the server holds.
func (ts *testServer) connCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.conns)
}

// health returns what /healthz says.
func (ts *testServer) health(t *testing.T) (docs, conns int) {
	t.Helper()
	resp, err := http.Get("http://" + ts.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct{ Documents, Connections int }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h.Documents, h.Connections
}

// lsn returns the coordinator's LSN of docID.
func (ts *testServer) lsn(t *testing.T, docID string) uint64 {
	t.Helper()
	var lsn uint64
	ts.coordinator(t, docID, func(c *engine.Coordinator) { lsn = c.LSN() })
	return lsn
}

// diffBytesSent returns the bytes of diff frames the server has encoded.
func (ts *testServer) diffBytesSent(t *testing.T) uint64 {
	t.Helper()
	mfs, err := ts.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "sqlsync_diff_frame_bytes_total" {
			return uint64(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	t.Fatal("no sqlsync_diff_frame_bytes_total metric")
	return 0
}

// docDirs lists the documents in the server's data directory.
func (ts *testServer) docDirs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(ts.dir, "docs"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// startServerWith is startServer with the listener wrapped by wrap.
func startServerWith(t *testing.T, cfg Config, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
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
	go hs.Serve(wrap(ln))
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

// sndbufListener gives every accepted connection a small kernel send
// buffer, so a client that does not read blocks the server's writes after
// a few tens of kilobytes rather than megabytes.
type sndbufListener struct {
	net.Listener
	size int
}

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// ---- honest replicas ---------------------------------------------------

// honest is a group of well-behaved replicas writing to one document while
// a test attacks it, and the check that their work converged untouched.
type honest struct {
	t      *testing.T
	ts     *testServer
	docID  string
	docs   []*client.Doc
	big    int // > 0: rename a fixed set of items with titles this long, not growing the document
	pace   time.Duration
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	want      map[string]string // item ID -> the title last written
	writes    int
	err       error
	latencies []time.Duration
	probed    []time.Time // when each probe reached the second replica
	rejected  atomic.Int64
	probes    atomic.Int64

	// paused holds the writers; writing is held by the writer around each
	// write, so that pausing can wait for the write under way.
	paused  atomic.Bool
	writing sync.Mutex
}

const (
	honestItems     = 8  // items the big writers rename
	minHonestWrites = 20 // writes finish waits for
	// maxHonestPending bounds each honest replica's unacknowledged writes.
	maxHonestPending = 4
)

// startHonest opens n replicas of docID with token, waits until they are
// synced, and starts writing to them in turn every pace.
func startHonest(t *testing.T, ts *testServer, docID, token string, n int, pace time.Duration, big int) *honest {
	t.Helper()
	h := &honest{t: t, ts: ts, docID: docID, pace: pace, big: big, want: map[string]string{}}
	for range n {
		d := openTokenClient(t, ts, docID, token, nil)
		d.Watch(func(e client.Event) {
			if e.Rejected != nil {
				h.rejected.Add(1)
				t.Logf("honest replica's mutation rejected: %v", e.Rejected)
			}
		})
		h.docs = append(h.docs, d)
	}
	for _, d := range h.docs {
		waitSynced(t, d)
	}
	if big > 0 {
		for k := range honestItems {
			h.write(h.docs[k%n], "add", fmt.Sprintf("honest-%d", k), h.title(k))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	t.Cleanup(h.stop) // before the replicas close
	h.wg.Go(func() {
		for i := honestItems; ctx.Err() == nil; i++ {
			d := h.docs[i%n]
			// Closed loop: a replica writes only while the coordinator
			// keeps up with it, so on a slow machine (or under -race) the
			// writers do not pile up pending mutations of their own.
			for (d.Status().Pending >= maxHonestPending || h.paused.Load()) && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			h.writing.Lock()
			if h.paused.Load() {
				h.writing.Unlock()
				continue
			}
			if big > 0 {
				// Item k is always written by the same replica, so its
				// final title is the last one written.
				k := i % honestItems
				h.write(d, "rename", fmt.Sprintf("honest-%d", k), h.title(i))
			} else {
				h.write(d, "add", fmt.Sprintf("honest-%d", i), h.title(i))
			}
			h.writing.Unlock()
			select {
			case <-time.After(pace):
			case <-ctx.Done():
			}
		}
	})
	return h
}

func (h *honest) title(i int) string {
	if h.big > 0 {
		return fmt.Sprintf("%d:", i) + strings.Repeat("x", h.big)
	}
	return fmt.Sprintf("honest %d", i)
}

func (h *honest) write(d *client.Doc, name, id, title string) {
	_, err := d.Mutate(context.Background(), name, testmutator.Args{ID: id, Title: title}.Encode())
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil && h.err == nil {
		h.err = fmt.Errorf("%s %s: %w", name, id, err)
	}
	h.want[id] = title
	h.writes++
}

// probe adds an item on the first replica and returns how long the second
// took to see it: the propagation delay other clients get.
func (h *honest) probe(id string) time.Duration {
	h.t.Helper()
	start := time.Now()
	h.write(h.docs[0], "add", id, "probe")
	deadline := start.Add(testTimeout)
	for {
		rows, err := h.docs[1].Query(context.Background(), `SELECT count(*) FROM items WHERE id = ?`, id)
		if err != nil {
			h.t.Fatal(err)
		}
		if fmt.Sprint(rows.Values) == "[[1]]" && h.docs[1].Status().Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("probe %s did not reach the second replica in %v", id, testTimeout)
		}
		time.Sleep(500 * time.Microsecond)
	}
	d := time.Since(start)
	h.mu.Lock()
	h.latencies = append(h.latencies, d)
	h.probed = append(h.probed, start.Add(d))
	h.mu.Unlock()
	return d
}

// probedBetween returns how many probes reached the second replica in
// [from, to).
func (h *honest) probedBetween(from, to time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, at := range h.probed {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// quiescentHeap pauses the writers, waits until every honest replica has
// all its writes applied and holds the coordinator's newest commit, and
// returns the live heap then: with nothing in flight to the honest
// replicas, their diffs do not blur the measurement. The writers resume.
func (h *honest) quiescentHeap() uint64 {
	h.t.Helper()
	h.paused.Store(true)
	defer h.paused.Store(false)
	h.writing.Lock() // the write under way, if any, has returned
	h.writing.Unlock()
	waitFor(h.t, "the honest replicas to sync", func() bool {
		lsn := h.ts.lsn(h.t, h.docID)
		for _, d := range h.docs {
			if s := d.Status(); s.Pending != 0 || s.LSN != lsn {
				return false
			}
		}
		return true
	})
	return heapInUse()
}

// probeFor probes every interval until the context ends.
func (h *honest) probeFor(ctx context.Context, interval time.Duration) {
	h.probeAtLeast(ctx, interval, 0)
}

// probeAtLeast probes every interval until the context ends and at least
// n probes were made.
func (h *honest) probeAtLeast(ctx context.Context, interval time.Duration, n int) {
	for i := 0; ctx.Err() == nil || i < n; i++ {
		h.probe(fmt.Sprintf("probe-%d", h.probes.Add(1)))
		select {
		case <-time.After(interval):
		case <-ctx.Done():
		}
	}
}

// latency returns the median and the largest probe delay.
func (h *honest) latency() (median, largest time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := slices.Clone(h.latencies)
	if len(l) == 0 {
		return 0, 0
	}
	slices.Sort(l)
	return l[len(l)/2], l[len(l)-1]
}

// stop stops the writers.
func (h *honest) stop() {
	h.cancel()
	h.wg.Wait()
}

// finish stops the writers and checks that they were never refused or
// disconnected, that they and others converge with the coordinator byte for
// byte, and that every item holds what they last wrote.
func (h *honest) finish(others ...*client.Doc) {
	t := h.t
	t.Helper()
	// Let the writers make some progress whatever the test did meanwhile.
	waitFor(t, "the honest writers", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.writes >= honestItems+minHonestWrites
	})
	h.stop()
	h.mu.Lock()
	err, writes := h.err, h.writes
	want := maps.Clone(h.want)
	h.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if n := h.rejected.Load(); n != 0 {
		t.Fatalf("%d honest mutations were rejected", n)
	}
	for i, d := range h.docs {
		if s := d.Status(); s.LastError != "" {
			t.Fatalf("honest replica %d lost its connection: %+v", i, s)
		}
	}
	waitConverged(t, h.ts, h.docID, append(slices.Clone(h.docs), others...)...)
	rows, qerr := h.docs[0].Query(context.Background(), `SELECT id, title FROM items WHERE id LIKE 'honest-%' OR id LIKE 'probe-%'`)
	if qerr != nil {
		t.Fatal(qerr)
	}
	got := map[string]string{}
	for _, r := range rows.Values {
		got[r[0].(string)] = r[1].(string)
	}
	if len(got) != len(want) {
		t.Fatalf("the document holds %d honest items, want %d", len(got), len(want))
	}
	for id, title := range want {
		if got[id] != title {
			t.Fatalf("honest item %s: title %.20q, want %.20q", id, got[id], title)
		}
	}
	t.Logf("honest writers: %d writes by %d replicas converged", writes, len(h.docs))
}

// ---- tokens ------------------------------------------------------------

// TestTokenRefusals: a client with no token, a bad or expired one, or one
// that does not grant the document is refused with unauthorized or
// forbidden before anything of the document is sent, and a bad token does
// not even open the document; prefix and exact grants are honoured.
func TestTokenRefusals(t *testing.T) {
	ts := startServer(t, hmacConfig(t, Config{}))
	h := startHonest(t, ts, "list-1", mintT(t, []string{"list-1"}, RoleWrite, time.Hour), 2, 2*time.Millisecond, 0)

	valid := mintT(t, []string{"*"}, RoleWrite, time.Hour)
	parts := strings.Split(valid, ".")
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{Docs: []string{"*"}, Role: RoleWrite,
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Docs: []string{"*"}, Role: RoleWrite}).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	// The claims of a token for "other", signed for "list-2" only.
	tampered := func() string {
		narrow := strings.Split(mintT(t, []string{"list-2"}, RoleWrite, time.Hour), ".")
		return narrow[0] + "." + parts[1] + "." + narrow[2]
	}()
	otherSecret, _ := Mint([]byte("another secret that is long enough!!"), []string{"*"}, RoleWrite, time.Hour)

	for _, tt := range []struct {
		name, doc, token string
		code, reason     string
	}{
		// An open document: nothing of it may leak.
		{"no token, open document", "list-1", "", protocol.CodeUnauthorized, "no token"},
		{"no token", "secret-1", "", protocol.CodeUnauthorized, "no token"},
		{"wrong signature", "secret-2", otherSecret, protocol.CodeUnauthorized, "signature is invalid"},
		{"wrong signature, open document", "list-1", otherSecret, protocol.CodeUnauthorized, "signature is invalid"},
		{"tampered claims", "secret-3", tampered, protocol.CodeUnauthorized, "signature is invalid"},
		{"expired", "secret-4", mintT(t, []string{"*"}, RoleWrite, -time.Hour), protocol.CodeUnauthorized, "token expired"},
		{"expired, open document", "list-1", mintT(t, []string{"list-1"}, RoleWrite, -time.Hour), protocol.CodeUnauthorized, "token expired"},
		// Just expired: within the parser's clock-skew leeway, but
		// expired all the same.
		{"expired two seconds ago", "list-1", mintT(t, []string{"list-1"}, RoleWrite, -2*time.Second), protocol.CodeUnauthorized, "token expired"},
		{"malformed", "secret-5", "not a token", protocol.CodeUnauthorized, "malformed"},
		{"three dots", "secret-6", "a.b.c", protocol.CodeUnauthorized, "invalid token"},
		{"truncated", "secret-7", valid[:len(valid)-6], protocol.CodeUnauthorized, "invalid token"},
		{"alg none", "secret-8", noneTok, protocol.CodeUnauthorized, "invalid token"},
		{"no expiry", "secret-9", noExp, protocol.CodeUnauthorized, "exp"},
		{"bad role", "secret-10", mintT(t, []string{"*"}, "admin", time.Hour), protocol.CodeUnauthorized, "role"},
		{"wrong document", "list-1", mintT(t, []string{"list-2"}, RoleWrite, time.Hour), protocol.CodeForbidden, `"list-1"`},
		{"wrong document, closed", "secret-11", mintT(t, []string{"list-2"}, RoleRead, time.Hour), protocol.CodeForbidden, "does not grant"},
		{"exact grant is not a prefix", "list-10", mintT(t, []string{"list-1"}, RoleWrite, time.Hour), protocol.CodeForbidden, "does not grant"},
		{"grants are case-sensitive", "list-1", mintT(t, []string{"LIST-1"}, RoleWrite, time.Hour), protocol.CodeForbidden, "does not grant"},
		{"outside the prefix", "team-420", mintT(t, []string{"team-42-*"}, RoleWrite, time.Hour), protocol.CodeForbidden, "does not grant"},
		{"shorter than the prefix", "team-4", mintT(t, []string{"team-42-*"}, RoleWrite, time.Hour), protocol.CodeForbidden, "does not grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			c.send(helloTok(tt.doc, "intruder", tt.token))
			c.expectRefused(tt.code, tt.reason)
		})
	}

	// Grants that do match.
	for _, tt := range []struct{ name, doc, token string }{
		{"prefix grant", "team-42-a", mintT(t, []string{"list-9", "team-42-*"}, RoleRead, time.Hour)},
		{"grant all", "team-42-a", mintT(t, []string{"*"}, RoleWrite, time.Hour)},
		{"exact grant among others", "list-1", mintT(t, []string{"list-2", "list-1"}, RoleRead, time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			c.send(helloTok(tt.doc, "granted", tt.token))
			c.expectWelcome()
		})
	}

	// A replica refused for good stops instead of retrying.
	for _, tt := range []struct{ name, token, want string }{
		{"no token", "", "unauthorized: no token"},
		{"forbidden", mintT(t, []string{"list-2"}, RoleWrite, time.Hour), "forbidden: token does not grant"},
	} {
		t.Run("replica "+tt.name, func(t *testing.T) {
			d := openTokenClient(t, ts, "list-1", tt.token, nil)
			mutate(t, d, "add", testmutator.Args{ID: "intruder", Title: "intruder"})
			if got := waitStopped(t, d, testTimeout); !strings.Contains(got, tt.want) {
				t.Fatalf("stopped with %q, want %q", got, tt.want)
			}
			if d.Engine().LSN() != 0 {
				t.Fatalf("a refused replica got the document: LSN %d", d.Engine().LSN())
			}
		})
	}

	h.finish()
	if got := queryString(t, h.docs[0], `SELECT count(*) FROM items WHERE id = 'intruder'`); got != "[[0]]" {
		t.Fatalf("intruder's item reached the document: %v", got)
	}
	// Only the documents someone was granted were opened or created.
	want := []string{"list-1", "team-42-a"}
	if got := ts.docDirs(t); !slices.Equal(got, want) {
		t.Fatalf("data directory holds %v, want %v", got, want)
	}
	if docs, _ := ts.health(t); docs != len(want) {
		t.Fatalf("healthz: %d documents open, want %d", docs, len(want))
	}
}

// TestReadOnlyClient: a read-only replica gets every diff, each mutation it
// sends is rejected with "read-only" and rolled back locally, and it keeps
// syncing afterwards.
func TestReadOnlyClient(t *testing.T) {
	ts := startServer(t, hmacConfig(t, Config{}))
	h := startHonest(t, ts, "doc", mintT(t, []string{"doc"}, RoleWrite, time.Hour), 2, 2*time.Millisecond, 0)
	ro := openTokenClient(t, ts, "doc", mintT(t, []string{"doc"}, RoleRead, time.Hour), nil)
	var mu sync.Mutex
	var rejections []string
	ro.Watch(func(e client.Event) {
		if e.Rejected != nil {
			mu.Lock()
			rejections = append(rejections, e.Rejected.Message)
			mu.Unlock()
		}
	})
	waitSynced(t, ro)

	const n = 20
	for i := range n {
		id := fmt.Sprintf("ro-%d", i)
		mutate(t, ro, "add", testmutator.Args{ID: id, Title: "read-only write"})
		if i == 0 {
			// Locally the mutation applies at once, as any optimistic one.
			if got := queryString(t, ro, `SELECT count(*) FROM items WHERE id = 'ro-0'`); got != "[[1]]" {
				t.Fatalf("local mutation not visible: %v", got)
			}
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "the read-only replica's rejections", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(rejections) == n
	})
	mu.Lock()
	for _, m := range rejections {
		if !strings.Contains(m, "read-only") {
			t.Fatalf("rejection %q does not say read-only", m)
		}
	}
	mu.Unlock()
	// It keeps syncing: the others' writes go on reaching it.
	waitSynced(t, ro)
	h.probe("probe-after-ro")
	h.finish(ro)
	for _, d := range []*client.Doc{ro, h.docs[0]} {
		if got := queryString(t, d, `SELECT count(*) FROM items WHERE id LIKE 'ro-%'`); got != "[[0]]" {
			t.Fatalf("read-only writes in a replica: %v", got)
		}
	}
	if s := ro.Status(); s.LastError != "" || s.Pending != 0 {
		t.Fatalf("read-only replica: %+v", s)
	}
}

// TestTokenExpiresMidSession: a session whose token expires is ended with
// "unauthorized: token expired"; the replica stops, the others go on.
func TestTokenExpiresMidSession(t *testing.T) {
	ts := startServer(t, hmacConfig(t, Config{}))
	h := startHonest(t, ts, "doc", mintT(t, []string{"doc"}, RoleWrite, time.Hour), 2, 2*time.Millisecond, 0)

	short := mintT(t, []string{"doc"}, RoleWrite, 2*time.Second)
	claims, err := ts.cfg.Verifier.Verify(short, "doc")
	if err != nil {
		t.Fatal(err)
	}
	exp := claims.ExpiresAt.Time
	d := openTokenClient(t, ts, "doc", short, nil)
	raw := dialRaw(t, ts)
	raw.send(helloTok("doc", "raw-short", short))
	raw.expectWelcome()
	waitSynced(t, d)
	mutate(t, d, "add", testmutator.Args{ID: "before-expiry", Title: "ok"})
	waitSynced(t, d)

	// The raw connection sees diffs, then the Close.
	cl, _, err := raw.untilClose()
	if err != nil {
		t.Fatal(err)
	}
	if cl.Code != protocol.CodeUnauthorized || cl.Reason != "token expired" {
		t.Fatalf("close %s: %s, want unauthorized: token expired", cl.Code, cl.Reason)
	}
	if late := time.Since(exp); late < -50*time.Millisecond || late > 3*time.Second {
		t.Fatalf("session ended %v after the token's expiry", late)
	}
	if got := waitStopped(t, d, 5*time.Second); !strings.Contains(got, "unauthorized: token expired") {
		t.Fatalf("replica stopped with %q", got)
	}
	// What it wrote while the token was good stays; what it writes after
	// waits locally.
	mutate(t, d, "add", testmutator.Args{ID: "after-expiry", Title: "pending"})
	h.finish()
	if got := queryString(t, h.docs[0], `SELECT id FROM items WHERE id IN ('before-expiry', 'after-expiry')`); got != "[[before-expiry]]" {
		t.Fatalf("items of the expired replica: %v", got)
	}
}

// TestPublicKeyTokens: Ed25519 and ECDSA tokens are accepted; an HMAC token
// signed with the public key's bytes, a token from another key and an
// unsigned one are refused.
func TestPublicKeyTokens(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	_, edOther, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecOther, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, kt := range []struct {
		name        string
		pub         crypto.PublicKey
		method      jwt.SigningMethod
		priv, other any
		foreign     func() string // a token of the other key type
	}{
		{"Ed25519", edPub, jwt.SigningMethodEdDSA, edPriv, edOther,
			func() string { return signT(t, jwt.SigningMethodES256, ecPriv, []string{"*"}, RoleWrite, time.Hour) }},
		{"ECDSA", &ecPriv.PublicKey, jwt.SigningMethodES256, ecPriv, ecOther,
			func() string { return signT(t, jwt.SigningMethodEdDSA, edPriv, []string{"*"}, RoleWrite, time.Hour) }},
	} {
		t.Run(kt.name, func(t *testing.T) {
			pemBytes, der := publicKeyPEM(t, kt.pub)
			v, err := NewPublicKeyVerifier(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			ts := startServer(t, Config{Verifier: v})
			h := startHonest(t, ts, "doc", signT(t, kt.method, kt.priv, []string{"doc"}, RoleWrite, time.Hour), 2, 2*time.Millisecond, 0)

			c := dialRaw(t, ts)
			c.send(helloTok("doc", "signed", signT(t, kt.method, kt.priv, []string{"d*"}, RoleRead, time.Hour)))
			c.expectWelcome()
			for _, bad := range []struct{ name, token string }{
				{"HS256 with the public key PEM", signT(t, jwt.SigningMethodHS256, pemBytes, []string{"*"}, RoleWrite, time.Hour)},
				{"HS256 with the public key DER", signT(t, jwt.SigningMethodHS256, der, []string{"*"}, RoleWrite, time.Hour)},
				{"HS256 with the HMAC secret", mintT(t, []string{"*"}, RoleWrite, time.Hour)},
				{"another key", signT(t, kt.method, kt.other, []string{"*"}, RoleWrite, time.Hour)},
				{"another key type", kt.foreign()},
				{"expired", signT(t, kt.method, kt.priv, []string{"*"}, RoleWrite, -time.Minute)},
			} {
				t.Run(bad.name, func(t *testing.T) {
					c := dialRaw(t, ts)
					c.send(helloTok("doc", "forger", bad.token))
					c.expectRefused(protocol.CodeUnauthorized, "token")
				})
			}
			h.finish()
		})
	}
}

// ---- document IDs ------------------------------------------------------

// TestDocIDTraversal: document IDs that could name a path outside the data
// directory are refused, even with a token granting every document, and
// nothing is created outside it; odd but safe IDs stay inside it.
func TestDocIDTraversal(t *testing.T) {
	parent := t.TempDir()
	data := filepath.Join(parent, "data")
	ts := startServer(t, hmacConfig(t, Config{DataDir: data}))
	all := mintT(t, []string{"*"}, RoleWrite, time.Hour)
	h := startHonest(t, ts, "doc", all, 2, 2*time.Millisecond, 0)

	for _, id := range []string{
		"..", ".", "../x", "../../etc/passwd", "../data/docs/doc", "a/../../x", "a/b", "/etc/passwd",
		`..\x`, `a\b`, `C:\x`, "x\x00y", ".hidden", "..x", "%2e%2e%2fx", "a b", "doc\n", "ü", "doc/",
		"*", "~", "$HOME",
	} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			c := dialRaw(t, ts)
			c.send(helloTok(id, "traveller", all))
			c.expectRefused(protocol.CodeBadRequest, "bad document ID")
		})
	}
	t.Run("too long", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.send(helloTok(strings.Repeat("a", 129), "traveller", all))
		c.expectRefused(protocol.CodeLimit, "doc id is 129 bytes")
	})
	t.Run("mutator endpoint", func(t *testing.T) {
		for _, p := range []string{"/v1/docs/..%2f..%2fx/mutator", "/v1/docs/.hidden/mutator", "/v1/docs/a%5cb/mutator"} {
			resp, err := http.Get("http://" + ts.addr + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 4 {
				t.Fatalf("GET %s: %s, want a 4xx", p, resp.Status)
			}
		}
	})
	// Odd but safe IDs are documents like any other, inside the data directory.
	safe := []string{"a..b", "-", "_x", "x.", strings.Repeat("z", 128)}
	for _, id := range safe {
		c := dialRaw(t, ts)
		c.send(helloTok(id, "odd", all))
		c.expectWelcome()
	}
	h.finish()

	var outside []string
	filepath.WalkDir(parent, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(parent, p)
		if rel != "." && rel != "data" && rel != filepath.Join("data", "docs") && !strings.HasPrefix(rel, filepath.Join("data", "docs")+string(filepath.Separator)) {
			outside = append(outside, rel)
		}
		return nil
	})
	if len(outside) > 0 {
		t.Fatalf("created outside the documents directory: %v", outside)
	}
	want := append([]string{"doc"}, safe...)
	sort.Strings(want)
	if got := ts.docDirs(t); !slices.Equal(got, want) {
		t.Fatalf("documents: %v, want %v", got, want)
	}
}

// ---- limits ------------------------------------------------------------

// slowMutator is the todo mutator plus "sleep", which takes N milliseconds.
type slowMutator struct{ testmutator.Mutator }

func (m slowMutator) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if name == "sleep" {
		var a testmutator.Args
		json.Unmarshal(args, &a)
		time.Sleep(time.Duration(a.N) * time.Millisecond)
		return nil
	}
	return m.Mutator.Mutate(ctx, conn, name, args)
}

func pushN(first uint64, n int, name string, a func(i int) testmutator.Args) protocol.Frame {
	p := &protocol.Push{}
	for i := range n {
		p.Mutations = append(p.Mutations, protocol.Mutation{Seq: first + uint64(i), Name: name, Args: a(i).Encode()})
	}
	return protocol.Frame{Push: p}
}

// TestFrameLimits complements TestMalformedFrames (oversized frames): too
// many mutations in a push, oversized args, names, tokens and IDs, and too
// many mutations waiting to be applied each close that connection with
// "limit", and the honest replicas beside it never notice.
func TestFrameLimits(t *testing.T) {
	lim := protocol.Limits{MaxMutationsPerPush: 100, MaxArgsBytes: 1024, MaxTokenBytes: 2048}
	ts := startServer(t, Config{
		Limits: lim, MaxQueuedPerConn: 200,
		Mutator: func(string) engine.Mutator { return slowMutator{} },
	})
	h := startHonest(t, ts, "doc", "", 2, 2*time.Millisecond, 0)
	add := func(i int) testmutator.Args { return testmutator.Args{ID: fmt.Sprintf("over-%d", i), Title: "x"} }
	for _, tt := range []struct {
		name   string
		send   func(c *rawConn)
		reason string
	}{
		{"too many mutations per push", func(c *rawConn) {
			c.send(hello("doc", "many"))
			c.send(pushN(1, 101, "add", add))
		}, "101 mutations, limit 100"},
		{"oversized args", func(c *rawConn) {
			c.send(hello("doc", "args"))
			c.send(protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{{Seq: 1, Name: "add", Args: make([]byte, 1025)}}}})
		}, "args are 1025 bytes"},
		{"oversized name", func(c *rawConn) {
			c.send(hello("doc", "name"))
			c.send(protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{{Seq: 1, Name: strings.Repeat("n", 129)}}}})
		}, "name is 129 bytes"},
		{"oversized token", func(c *rawConn) {
			c.send(helloTok("doc", "token", strings.Repeat("t", 2049)))
		}, "token is 2049 bytes"},
		{"oversized client ID", func(c *rawConn) {
			c.send(hello("doc", strings.Repeat("c", 129)))
		}, "client id is 129 bytes"},
		{"too many waiting", func(c *rawConn) {
			c.send(hello("doc", "queue"))
			// The document takes the first push and works on it for
			// 100 ms; the next fills the queue to its limit, the third
			// goes over.
			sleep := func(int) testmutator.Args { return testmutator.Args{N: 1} }
			c.send(pushN(1, 100, "sleep", sleep))
			c.send(pushN(101, 100, "sleep", sleep))
			c.send(pushN(201, 100, "sleep", sleep))
		}, "more than 200 mutations waiting"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			tt.send(c)
			cl, _, err := c.untilClose()
			if err != nil {
				t.Fatal(err)
			}
			if cl.Code != protocol.CodeLimit || !strings.Contains(cl.Reason, tt.reason) {
				t.Fatalf("close %s: %s, want limit: …%s…", cl.Code, cl.Reason, tt.reason)
			}
		})
	}
	h.finish()
	if got := queryString(t, h.docs[0], `SELECT count(*) FROM items WHERE id LIKE 'over-%'`); got != "[[0]]" {
		t.Fatalf("mutations from over-limit pushes were applied: %v", got)
	}
}

// TestHonestClientUnderLowLimits: a replica that was offline and built up
// more pending mutations than the coordinator takes in one push, or in one
// burst of its rate limit, still gets them all applied.
func TestHonestClientUnderLowLimits(t *testing.T) {
	ts := startServer(t, Config{Limits: protocol.Limits{MaxMutationsPerPush: 20}, RatePerConn: 200, RateBurst: 50})
	h := startHonest(t, ts, "doc", "", 2, 5*time.Millisecond, 0)
	d := openClient(t, ts, "doc", clientOptions{})
	waitSynced(t, d)
	d.SetOnline(false)
	for i := range 300 {
		mutate(t, d, "add", testmutator.Args{ID: fmt.Sprintf("offline-%d", i), Title: "offline"})
	}
	d.SetOnline(true)
	h.finish(d)
	if got := queryString(t, h.docs[0], `SELECT count(*) FROM items WHERE id LIKE 'offline-%'`); got != "[[300]]" {
		t.Fatalf("offline items applied: %v, want 300", got)
	}
}

// TestRateLimitFlood: a connection sending mutations faster than its rate
// allows is closed with "limit"; the honest replicas, well under the rate,
// are neither refused nor disconnected, their changes keep reaching each
// other after the floods, and all their writes land. (How fast they
// propagate is logged, not asserted: on a shared machine that measures the
// load.)
func TestRateLimitFlood(t *testing.T) {
	ts := startServer(t, Config{Limits: protocol.Limits{MaxMutationsPerPush: 100}, RatePerConn: 50, RateBurst: 100})
	// Each honest replica writes 20 times a second.
	h := startHonest(t, ts, "doc", "", 2, 25*time.Millisecond, 0)
	flood := func(i int) testmutator.Args { return testmutator.Args{ID: fmt.Sprintf("flood-%d", i), Title: "flood"} }
	t.Run("big pushes", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.send(hello("doc", "flood-big"))
		for i := range 5 {
			if err := c.ws.WriteMessage(websocket.BinaryMessage, mustEncode(t, pushN(uint64(i*100+1), 100, "add", func(j int) testmutator.Args { return flood(i*100 + j) }))); err != nil {
				break // the server may have closed already
			}
		}
		c.expectClose(protocol.CodeLimit, "rate limit: more than 50 mutations per second")
	})
	t.Run("many small pushes", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.send(hello("doc", "flood-small"))
		// Until the server closes the connection, at most 2000.
		for i := range 2000 {
			if err := c.ws.WriteMessage(websocket.BinaryMessage, mustEncode(t, pushFrame(uint64(i+1), "add", flood(1000+i)))); err != nil {
				break
			}
		}
		c.expectClose(protocol.CodeLimit, "rate limit")
	})
	// Each probe fails the test unless it reaches the other replica.
	ctx, stop := context.WithTimeout(context.Background(), 300*time.Millisecond)
	h.probeAtLeast(ctx, 10*time.Millisecond, 5)
	stop()
	median, largest := h.latency()
	t.Logf("honest propagation after the floods: median %v, max %v", median, largest)
	h.finish()
}

func mustEncode(t *testing.T, f protocol.Frame) []byte {
	t.Helper()
	b, err := protocol.Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMaxConnsPerDoc: the connection over the limit is refused with
// "limit" before anything of the document is sent; those already connected
// and other documents are unaffected, and a freed slot can be taken.
func TestMaxConnsPerDoc(t *testing.T) {
	ts := startServer(t, Config{MaxConnsPerDoc: 2})
	h := startHonest(t, ts, "doc", "", 2, 2*time.Millisecond, 0)
	c := dialRaw(t, ts)
	c.send(hello("doc", "third"))
	c.expectRefused(protocol.CodeLimit, "already has 2 connections")
	other := dialRaw(t, ts)
	other.send(hello("other", "elsewhere"))
	other.expectWelcome()
	h.finish()

	h.docs[1].Close()
	waitFor(t, "the closed replica's slot", func() bool { return ts.connCount() == 2 })
	c = dialRaw(t, ts)
	c.send(hello("doc", "later"))
	c.expectWelcome()
}

// TestMaxDocBytes: a mutation that would grow the document past its limit
// is rejected with a clear message and rolled back; the document stays
// usable and the honest writers go on.
func TestMaxDocBytes(t *testing.T) {
	const maxBytes = 256 << 10
	ts := startServer(t, Config{MaxDocBytes: maxBytes})
	// The honest writers rename items, so they do not fill the document.
	h := startHonest(t, ts, "doc", "", 2, 2*time.Millisecond, 32)
	big := openClient(t, ts, "doc", clientOptions{})
	var mu sync.Mutex
	rejected := map[uint64]string{}
	big.Watch(func(e client.Event) {
		if e.Rejected != nil {
			mu.Lock()
			rejected[e.Rejected.Seq] = e.Rejected.Message
			mu.Unlock()
		}
	})
	waitSynced(t, big)
	title := strings.Repeat("b", 40<<10)
	var seqs []uint64
	for i := range 8 {
		seqs = append(seqs, mutate(t, big, "add", testmutator.Args{ID: fmt.Sprintf("big-%d", i), Title: title}))
	}
	waitSynced(t, big)
	mu.Lock()
	n := len(rejected)
	msg := rejected[seqs[len(seqs)-1]]
	mu.Unlock()
	if n < 2 || n == len(seqs) {
		t.Fatalf("%d of %d growing mutations rejected", n, len(seqs))
	}
	if !strings.Contains(msg, "document size limit") || !strings.Contains(msg, "over the limit of 64") {
		t.Fatalf("rejection message %q does not explain the size limit", msg)
	}
	// Still usable: small changes from anyone apply.
	mutate(t, big, "rename", testmutator.Args{ID: "big-0", Title: "small"})
	mutate(t, big, "add", testmutator.Args{ID: "small", Title: "small"})
	h.finish(big)
	accepted := len(seqs) - n
	if got, want := queryString(t, big, `SELECT count(*) FROM items WHERE id LIKE 'big-%' OR id = 'small'`), fmt.Sprintf("[[%d]]", accepted+1); got != want {
		t.Fatalf("items of the big writer: %v, want %v", got, want)
	}
	b, _ := ts.coordinatorBytes(t, "doc")
	if len(b) > maxBytes+8<<10 {
		t.Fatalf("the document is %d bytes, limit %d", len(b), maxBytes)
	}
	t.Logf("%d of %d growing mutations rejected; the document is %d bytes", n, len(seqs), len(b))
}

// ---- clients that do not keep up ---------------------------------------

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestNeverReadingClient: a client that says hello and then never reads,
// while the document keeps changing, costs the coordinator at most the
// diff its writer is blocked on: memory does not grow with the commits it
// misses, the other replicas' changes keep reaching each other while it is
// stuck, and after WriteTimeout the connection is dropped.
func TestNeverReadingClient(t *testing.T) {
	const writeTimeout = 5 * time.Second
	ts := startServerWith(t, Config{WriteTimeout: writeTimeout}, func(ln net.Listener) net.Listener {
		return sndbufListener{ln, 16 << 10}
	})
	// Every write renames one of 8 items with a new 32 KiB title: the
	// document keeps its size while every commit changes several pages.
	h := startHonest(t, ts, "doc", "", 2, 2*time.Millisecond, 32<<10)
	// Warm up: a few hundred commits fill the caches whose growth would
	// otherwise blur the heap measurement (the coordinator's page versions,
	// every SQLite connection's page cache), whatever the machine's speed.
	waitFor(t, "300 commits", func() bool { return ts.lsn(t, "doc") >= 300 })
	// The others' pace without a stuck client, for the log.
	ctx, stop := context.WithTimeout(context.Background(), 500*time.Millisecond)
	h.probeAtLeast(ctx, 20*time.Millisecond, 5)
	stop()
	baseMedian, baseMax := h.latency()
	h.latencies = nil

	// The stuck client: a tiny receive buffer, and it never reads.
	dialer := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4 << 10)
		}
		return c, err
	}}
	stuck, _, err := dialRawWith(t, ts, dialer, nil)
	if err != nil {
		t.Fatal(err)
	}
	stuck.send(hello("doc", "stuck"))
	start := time.Now()
	waitFor(t, "the stuck connection", func() bool { return ts.connCount() == 3 })
	dropped := make(chan time.Time, 1)
	go func() {
		for ts.connCount() == 3 && time.Since(start) < testTimeout {
			time.Sleep(5 * time.Millisecond)
		}
		dropped <- time.Now()
	}()

	// Its writer blocks on the first diff, the whole document (256 KiB
	// against 20 KiB of socket buffers), at once: that one diff it may
	// cost. Measure from there, each time with the honest writers paused
	// and nothing in flight to the other replicas.
	time.Sleep(200 * time.Millisecond)
	before := h.quiescentHeap()
	lsn0 := ts.lsn(t, "doc")
	sent0 := ts.diffBytesSent(t)
	probing := time.Now()
	ctx, stop = context.WithDeadline(context.Background(), start.Add(writeTimeout-2*time.Second))
	h.probeAtLeast(ctx, 20*time.Millisecond, 1)
	stop()
	after := h.quiescentHeap()
	measured := time.Now()
	commits := ts.lsn(t, "doc") - lsn0
	// Had the coordinator queued the diffs the stuck client missed, it
	// would hold what each of the two readers was sent meanwhile.
	queued := (ts.diffBytesSent(t) - sent0) / 2
	grew := int64(after) - int64(before)
	median, largest := h.latency()
	t.Logf("while stuck: %d commits, %d KiB of diffs to each reader; heap grew %d KiB; others' propagation median %v, max %v (without it: %v, %v)",
		commits, queued>>10, grew>>10, median, largest, baseMedian, baseMax)
	dropAt := <-dropped
	if measured.After(dropAt) {
		t.Fatalf("the stuck connection was dropped %v after it blocked, before the heap was measured (%v after): either the coordinator waited on it, or the machine is too slow for WriteTimeout %v",
			dropAt.Sub(start), measured.Sub(start), writeTimeout)
	}
	// Both measurements are quiescent, so little but a queue for the stuck
	// client can tell them apart; it needs some traffic to show.
	if queued < 2<<20 {
		t.Fatalf("only %d KiB of diffs while the client was stuck, %d commits: too little to tell a queue for it from noise", queued>>10, commits)
	}
	if grew > 0 && uint64(grew) > queued/2 {
		t.Fatalf("the heap grew by %d KiB while a client did not read (%d KiB of diffs it missed)", grew>>10, queued>>10)
	}
	// Not held back: the others' changes reached each other while the
	// stuck client was connected, its writer blocked on a diff it never
	// reads. A coordinator waiting on that write would have delivered none
	// of them (nor let the replicas sync for quiescentHeap) until the drop.
	if n := h.probedBetween(probing, dropAt); n == 0 {
		t.Fatalf("no probe reached the other replica while the stuck client was connected: the coordinator waited on it")
	} else {
		t.Logf("%d probes reached the other replica while the stuck client was connected", n)
	}

	// WriteTimeout after the blocked write began, not before, the
	// connection is dropped.
	if took := dropAt.Sub(start); took < writeTimeout || took > writeTimeout+5*time.Second {
		t.Fatalf("the stuck connection was dropped after %v, WriteTimeout %v", took, writeTimeout)
	}
	h.finish()
}

// slowTransport reads one frame every delay.
type slowTransport struct {
	client.Transport
	delay time.Duration
	slow  *atomic.Bool
}

func (s slowTransport) Read(ctx context.Context) ([]byte, error) {
	if s.slow.Load() {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Transport.Read(ctx)
}

// TestSlowClient: a replica that reads slowly does not hold the others
// back, and catches up with coalesced diffs, fewer than the commits it
// missed. Coalescing is the proof that it did not hold them back: a diff
// spanning several commits means the coordinator committed, and served the
// others, again and again while the slow replica had not read. A
// coordinator in lockstep with its slowest reader would send it one diff per
// commit. (The others' propagation delays are logged, not compared: on a
// shared machine they measure the load; TestNeverReadingClient asserts that
// a client that never reads stops nobody.)
func TestSlowClient(t *testing.T) {
	ts := startServerWith(t, Config{}, func(ln net.Listener) net.Listener {
		return sndbufListener{ln, 32 << 10}
	})
	h := startHonest(t, ts, "doc", "", 2, 2*time.Millisecond, 8<<10)
	phase := 1500 * time.Millisecond
	if testing.Short() {
		phase = 800 * time.Millisecond
	}
	ctx, stop := context.WithTimeout(context.Background(), phase/3)
	h.probeAtLeast(ctx, 20*time.Millisecond, 5)
	stop()
	baseMedian, baseMax := h.latency()
	h.latencies = nil

	var log wireLog
	var slow atomic.Bool
	slow.Store(true)
	inner := log.dialer()
	sd := openTokenClient(t, ts, "doc", "", func(ctx context.Context, url string) (client.Transport, error) {
		tr, err := inner(ctx, url)
		if err != nil {
			return nil, err
		}
		return slowTransport{tr, 40 * time.Millisecond, &slow}, nil
	})
	waitFor(t, "the slow replica's connection", func() bool { return ts.connCount() == 3 })
	_, lsn0 := ts.coordinatorBytes(t, "doc")

	ctx, stop = context.WithTimeout(context.Background(), phase)
	h.probeFor(ctx, 20*time.Millisecond)
	stop()
	h.stop()
	_, lsn1 := ts.coordinatorBytes(t, "doc")
	lag := lsn1 - sd.Engine().LSN()
	median, largest := h.latency()

	// It catches up, still reading slowly.
	waitConverged(t, ts, "doc", append(slices.Clone(h.docs), sd)...)
	got := log.diffsSince(0)
	diffs, widest := len(got), uint64(0)
	for _, d := range got {
		widest = max(widest, d.to-d.from)
	}
	commits := lsn1 - lsn0
	t.Logf("%d commits; the slow replica lagged %d commits behind, got %d diffs (%d frames), the widest spanning %d commits; others' propagation median %v, max %v (without it: %v, %v)",
		commits, lag, diffs, log.frameCount(), widest, median, largest, baseMedian, baseMax)
	if lag < 10 {
		t.Fatalf("the slow replica was only %d commits behind: not slow enough to test anything", lag)
	}
	if uint64(diffs) >= commits || widest < 2 {
		t.Fatalf("the slow replica got %d diffs for %d commits, the widest spanning %d: they were not coalesced", diffs, commits, widest)
	}
	slow.Store(false)
	h.finish(sd)
}

// ---- origins -----------------------------------------------------------

// TestOriginCheck: a browser Origin that is not allowed is refused at the
// upgrade with HTTP 403; an allowed one, and no Origin at all, pass.
func TestOriginCheck(t *testing.T) {
	t.Run("allowed origins", func(t *testing.T) {
		ts := startServer(t, hmacConfig(t, Config{AllowedOrigins: []string{"https://app.example", "http://localhost:5173"}}))
		tok := mintT(t, []string{"doc"}, RoleWrite, time.Hour)
		h := startHonest(t, ts, "doc", tok, 2, 2*time.Millisecond, 0)
		for _, tt := range []struct {
			origin string
			ok     bool
		}{
			{"", true},
			{"https://app.example", true},
			{"HTTPS://APP.EXAMPLE", true},
			{"http://localhost:5173", true},
			{"https://evil.example", false},
			{"http://app.example", false},
			{"https://app.example.evil.example", false},
			{"https://app.example:444", false},
			{"null", false},
			{"http://" + ts.addr, true}, // its own origin, always allowed though not listed
		} {
			t.Run(fmt.Sprintf("%q", tt.origin), func(t *testing.T) {
				checkOriginDial(t, ts, tt.origin, tt.ok, tok)
			})
		}
		h.finish()
		if docs, _ := ts.health(t); docs != 1 {
			t.Fatalf("%d documents open, want 1", docs)
		}
	})
	t.Run("own origin only", func(t *testing.T) {
		ts := startServer(t, Config{})
		for _, tt := range []struct {
			origin string
			ok     bool
		}{
			{"", true},
			{"http://" + ts.addr, true},
			{"http://evil.example", false},
			{"http://127.0.0.2:" + strings.Split(ts.addr, ":")[1], false},
		} {
			t.Run(fmt.Sprintf("%q", tt.origin), func(t *testing.T) {
				checkOriginDial(t, ts, tt.origin, tt.ok, "")
			})
		}
	})
	t.Run("any origin", func(t *testing.T) {
		ts := startServer(t, Config{AllowedOrigins: []string{"*"}})
		checkOriginDial(t, ts, "https://anywhere.example", true, "")
	})
}

func checkOriginDial(t *testing.T, ts *testServer, origin string, ok bool, token string) {
	t.Helper()
	header := http.Header{}
	if origin != "" {
		header.Set("Origin", origin)
	}
	c, resp, err := dialRawWith(t, ts, websocket.DefaultDialer, header)
	if !ok {
		if err == nil {
			t.Fatalf("Origin %q: upgrade accepted", origin)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("Origin %q: %v (%v), want HTTP 403", origin, err, resp)
		}
		return
	}
	if err != nil {
		t.Fatalf("Origin %q: %v", origin, err)
	}
	c.send(helloTok("doc", "browser", token))
	c.expectWelcome()
}

// ---- fuzzing -----------------------------------------------------------

// FuzzVerifyToken: whatever token a client sends in its Hello, Verify does
// not panic, and it accepts only claims the key signed.
func FuzzVerifyToken(f *testing.F) {
	v, err := NewHMACVerifier(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	signed := map[string]bool{} // the claims minted below, as "role docs"
	for _, s := range []struct {
		docs []string
		role Role
		ttl  time.Duration
	}{
		{[]string{"doc"}, RoleWrite, time.Hour},
		{[]string{"team-*", "a"}, RoleRead, time.Hour},
		{[]string{"*"}, RoleWrite, -time.Hour},
	} {
		tok := mintT(f, s.docs, s.role, s.ttl)
		signed[fmt.Sprint(s.role, s.docs)] = true
		f.Add(tok, "doc")
		f.Add(tok, "team-1")
	}
	f.Add("", "doc")
	f.Add("a.b.c", "doc")
	f.Add("eyJhbGciOiJub25lIn0.eyJkb2NzIjpbIioiXX0.", "doc")
	f.Fuzz(func(t *testing.T, token, doc string) {
		claims, err := v.Verify(token, doc)
		if err != nil {
			return
		}
		if !signed[fmt.Sprint(claims.Role, claims.Docs)] || !claims.Grants(doc) {
			t.Fatalf("accepted unsigned claims %+v for %q", claims, doc)
		}
	})
}
