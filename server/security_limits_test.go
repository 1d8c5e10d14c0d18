package server

// Abuse resistance (docs/security.md): frame, rate, connection and size
// limits, and clients that do not keep up, while honest replicas write to
// the same document alongside.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

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
			c.Send(hello("doc", "many"))
			c.Send(pushN(1, 101, "add", add))
		}, "101 mutations, limit 100"},
		{"oversized args", func(c *rawConn) {
			c.Send(hello("doc", "args"))
			c.Send(protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{{Seq: 1, Name: "add", Args: make([]byte, 1025)}}}})
		}, "args are 1025 bytes"},
		{"oversized name", func(c *rawConn) {
			c.Send(hello("doc", "name"))
			c.Send(protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{{Seq: 1, Name: strings.Repeat("n", 129)}}}})
		}, "name is 129 bytes"},
		{"oversized token", func(c *rawConn) {
			c.Send(helloTok("doc", "token", strings.Repeat("t", 2049)))
		}, "token is 2049 bytes"},
		{"oversized client ID", func(c *rawConn) {
			c.Send(hello("doc", strings.Repeat("c", 129)))
		}, "client id is 129 bytes"},
		{"too many waiting", func(c *rawConn) {
			c.Send(hello("doc", "queue"))
			// The document takes the first push and works on it for
			// 100 ms; the next fills the queue to its limit, the third
			// goes over.
			sleep := func(int) testmutator.Args { return testmutator.Args{N: 1} }
			c.Send(pushN(1, 100, "sleep", sleep))
			c.Send(pushN(101, 100, "sleep", sleep))
			c.Send(pushN(201, 100, "sleep", sleep))
		}, "more than 200 mutations waiting"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			tt.send(c)
			c.ExpectClose(protocol.CodeLimit, tt.reason)
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
		c.Send(hello("doc", "flood-big"))
		for i := range 5 {
			if err := c.WS.WriteMessage(websocket.BinaryMessage, mustEncode(t, pushN(uint64(i*100+1), 100, "add", func(j int) testmutator.Args { return flood(i*100 + j) }))); err != nil {
				break // the server may have closed already
			}
		}
		c.ExpectClose(protocol.CodeLimit, "rate limit: more than 50 mutations per second")
	})
	t.Run("many small pushes", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.Send(hello("doc", "flood-small"))
		// Until the server closes the connection, at most 2000.
		for i := range 2000 {
			if err := c.WS.WriteMessage(websocket.BinaryMessage, mustEncode(t, pushFrame(uint64(i+1), "add", flood(1000+i)))); err != nil {
				break
			}
		}
		c.ExpectClose(protocol.CodeLimit, "rate limit")
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
	c.Send(hello("doc", "third"))
	c.ExpectRefused(protocol.CodeLimit, "already has 2 connections")
	other := dialRaw(t, ts)
	other.Send(hello("other", "elsewhere"))
	other.ExpectWelcome()
	h.finish()

	h.docs[1].Close()
	waitFor(t, "the closed replica's slot", func() bool { return ts.connCount() == 2 })
	c = dialRaw(t, ts)
	c.Send(hello("doc", "later"))
	c.ExpectWelcome()
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
	stuck.Send(hello("doc", "stuck"))
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

// slowTransport reads one frame every delay while slow is set, and none
// while held is set.
type slowTransport struct {
	client.Transport
	delay time.Duration
	slow  *atomic.Bool
	held  *atomic.Bool
}

func (s slowTransport) Read(ctx context.Context) ([]byte, error) {
	for s.held.Load() {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
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
//
// How far behind a replica reading at a fixed pace falls depends on how
// fast the others commit, which on a loaded machine may be slower than it
// reads. So the slow replica first stops reading until it is minLag
// commits behind (more than its socket buffers hold: from then on the
// coordinator's writes to it block, and the commits pile up behind them),
// however long the others take to make them, and then reads slowly.
func TestSlowClient(t *testing.T) {
	const minLag = 64 // commits of 8 KiB items: well past 160 KiB of socket buffers
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
	var slow, held atomic.Bool
	slow.Store(true)
	sd := openClient(t, ts, "doc", clientOptions{dial: func(ctx context.Context, url string) (client.Transport, error) {
		tr, err := log.Dial(ctx, url)
		if err != nil {
			return nil, err
		}
		return slowTransport{tr, 40 * time.Millisecond, &slow, &held}, nil
	}})
	waitFor(t, "the slow replica's connection", func() bool { return ts.connCount() == 3 })
	waitSynced(t, sd)
	_, lsn0 := ts.coordinatorBytes(t, "doc")

	// Not reading: the others go on committing. Well within WriteTimeout
	// (30 s), so that the coordinator does not drop the replica.
	held.Store(true)
	lag := func() uint64 { _, lsn := ts.coordinatorBytes(t, "doc"); return lsn - sd.Engine().LSN() }
	start := time.Now()
	ctx, stop = context.WithCancel(context.Background())
	go func() {
		defer stop()
		for ctx.Err() == nil && lag() < minLag && time.Since(start) < 20*time.Second {
			time.Sleep(20 * time.Millisecond)
		}
	}()
	h.probeFor(ctx, 20*time.Millisecond)
	lagHeld := lag()
	if lagHeld < minLag {
		t.Fatalf("while one replica did not read for %v, the others made only %d commits: held back", time.Since(start), lagHeld)
	}
	t.Logf("the replica that did not read fell %d commits behind in %v", lagHeld, time.Since(start))

	// Reading slowly, while the others go on.
	held.Store(false)
	ctx, stop = context.WithTimeout(context.Background(), phase)
	h.probeFor(ctx, 20*time.Millisecond)
	stop()
	h.stop()
	_, lsn1 := ts.coordinatorBytes(t, "doc")
	median, largest := h.latency()

	// It catches up, still reading slowly.
	waitConverged(t, ts, "doc", append(slices.Clone(h.docs), sd)...)
	got := log.Diffs(0)
	diffs, widest := 0, uint64(0)
	for _, d := range got {
		if d.From >= lsn0 {
			diffs++
			widest = max(widest, d.To-d.From)
		}
	}
	commits := lsn1 - lsn0
	t.Logf("%d commits; the slow replica got %d diffs (%d frames in all), the widest spanning %d commits; others' propagation median %v, max %v (without it: %v, %v)",
		commits, diffs, len(log.DiffFrames(0)), widest, median, largest, baseMedian, baseMax)
	if uint64(diffs) >= commits || widest < 2 {
		t.Fatalf("the slow replica got %d diffs for %d commits, the widest spanning %d: they were not coalesced", diffs, commits, widest)
	}
	slow.Store(false)
	h.finish(sd)
}
