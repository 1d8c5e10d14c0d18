package server

// The harness of the security tests: raw connections that speak the
// protocol by hand, and groups of honest replicas that write alongside an
// attack and check that their work converged untouched.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// ---- replicas and raw connections --------------------------------------

// waitStopped waits until the coordinator has refused d for good and
// returns its last error.
func waitStopped(t *testing.T, d *client.Doc, within time.Duration) string {
	t.Helper()
	return servertest.WaitState(t, d, client.Stopped, within).LastError
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
	return servertest.DialRawWith(t, ts.url, dialer, header)
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
		d := openClient(t, ts, docID, clientOptions{token: token})
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
