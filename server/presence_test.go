package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// presenceHello is a Hello asking for presence.
func presenceHello(docID, clientID, token string) protocol.Frame {
	f := hello(docID, clientID)
	f.Hello.Token = token
	f.Hello.Capabilities = []string{protocol.CapPresence}
	return f
}

// presenceClient is a raw connection granted presence, with its view of
// the other connections' presences. A goroutine reads its frames (a
// WebSocket read that times out cannot be retried).
type presenceClient struct {
	*rawConn
	t       *testing.T
	welcome protocol.Welcome
	frames  chan readResult
	peers   map[string]protocol.Peer
	full    bool // a full snapshot came
	refused []protocol.PresenceRefused
}

type readResult struct {
	f   protocol.Frame
	err error
}

// watchPresence starts reading c's frames.
func watchPresence(t *testing.T, c *rawConn, w protocol.Welcome) *presenceClient {
	p := &presenceClient{rawConn: c, t: t, welcome: w, frames: make(chan readResult, 1024), peers: map[string]protocol.Peer{}}
	go func() {
		for {
			_, b, err := c.WS.ReadMessage()
			if err != nil {
				p.frames <- readResult{err: err}
				return
			}
			f, err := protocol.Decode(b, protocol.Limits{MaxFrameBytes: 64 << 20})
			p.frames <- readResult{f: f, err: err}
		}
	}()
	return p
}

// dialPresence connects to docID as clientID asking for presence, and
// checks that the coordinator grants it.
func dialPresence(t *testing.T, ts *testServer, docID, clientID, token string) *presenceClient {
	t.Helper()
	c := dialRaw(t, ts)
	c.Send(presenceHello(docID, clientID, token))
	w := c.ExpectWelcome()
	if !protocol.HasCapability(w.Capabilities, protocol.CapPresence) || w.Presence == nil {
		t.Fatalf("welcome %+v does not grant presence", w)
	}
	return watchPresence(t, c, w)
}

// set publishes the presence key with state ("" withdraws it).
func (p *presenceClient) set(key, state string) {
	p.t.Helper()
	p.Send(protocol.Frame{PresenceSet: &protocol.PresenceSet{Key: key, State: []byte(state)}})
}

// read reads one frame within d and applies it to the view; false if
// none came.
func (p *presenceClient) read(d time.Duration) (protocol.Frame, bool) {
	p.t.Helper()
	f, ok := p.next(d)
	if ok && f.Close != nil {
		p.t.Fatalf("closed: %s: %s", f.Close.Code, f.Close.Reason)
	}
	return f, ok
}

// next takes the next frame within d and applies it to the view.
func (p *presenceClient) next(d time.Duration) (protocol.Frame, bool) {
	p.t.Helper()
	var r readResult
	select {
	case r = <-p.frames:
	case <-time.After(d):
		return protocol.Frame{}, false
	}
	if r.err != nil {
		p.t.Fatalf("read: %v", r.err)
	}
	f := r.f
	switch {
	case f.Presence != nil:
		if f.Presence.Full {
			p.full = true
			clear(p.peers)
		}
		for _, peer := range f.Presence.Peers {
			p.peers[peer.ID] = peer
		}
		for _, id := range f.Presence.Gone {
			delete(p.peers, id)
		}
	case f.PresenceRefused != nil:
		p.refused = append(p.refused, *f.PresenceRefused)
	}
	return f, true
}

// until reads frames until cond holds, failing the test after within.
func (p *presenceClient) until(what string, within time.Duration, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			p.t.Fatalf("timed out after %v waiting for %s; peers %v, refused %v", within, what, p.states(), p.refused)
		}
		p.read(left)
	}
}

// states returns the view as client ID and key -> state.
func (p *presenceClient) states() map[string]string {
	out := map[string]string{}
	for id, peer := range p.peers {
		out[peer.ClientID+" "+id[strings.Index(id, "/")+1:]] = string(peer.State)
	}
	return out
}

// sees waits until the view holds exactly want (client ID and key -> state).
func (p *presenceClient) sees(want map[string]string) {
	p.t.Helper()
	p.until("peers "+fmtMap(want), testTimeout, func() bool { return p.full && equalMaps(p.states(), want) })
}

// quiet reads for d and fails if a presence frame comes.
func (p *presenceClient) quiet(d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for left := d; left > 0; left = time.Until(deadline) {
		if f, ok := p.read(left); ok && (f.Presence != nil || f.PresenceRefused != nil) {
			p.t.Fatalf("unexpected %s frame: %+v", f.Kind(), f)
		}
	}
}

// expectClose reads frames until a Close frame, and checks it.
func (p *presenceClient) expectClose(code, reason string) {
	p.t.Helper()
	for {
		f, ok := p.next(testTimeout)
		if !ok {
			p.t.Fatal("no close frame")
		}
		if c := f.Close; c != nil {
			if c.Code != code || !strings.Contains(c.Reason, reason) {
				p.t.Fatalf("close %s: %s, want %s mentioning %q", c.Code, c.Reason, code, reason)
			}
			return
		}
	}
}

// waitDiff reads frames until a Diff.
func (p *presenceClient) waitDiff() {
	p.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		if f, ok := p.read(time.Until(deadline)); ok && f.Diff != nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatal("no diff came")
		}
	}
}

// refusal waits for the next refusal and returns it.
func (p *presenceClient) refusal() protocol.PresenceRefused {
	p.t.Helper()
	n := len(p.refused)
	p.until("a presence refusal", testTimeout, func() bool { return len(p.refused) > n })
	return p.refused[n]
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func fmtMap(m map[string]string) string {
	var s []string
	for k, v := range m {
		s = append(s, k+"="+v)
	}
	return "{" + strings.Join(s, ", ") + "}"
}

func TestPresenceFanOut(t *testing.T) {
	ts := startServer(t, Config{})
	a := dialPresence(t, ts, "doc", "alice", "")
	b := dialPresence(t, ts, "doc", "bob", "")
	other := dialPresence(t, ts, "other-doc", "carol", "")
	// Each starts with a full snapshot: nobody yet.
	a.sees(map[string]string{})
	b.sees(map[string]string{})
	other.sees(map[string]string{})

	a.set("tab-1", `{"name":"Alice"}`)
	a.set("tab-2", `{"name":"Alice","editing":"item-1"}`)
	b.sees(map[string]string{"alice tab-1": `{"name":"Alice"}`, "alice tab-2": `{"name":"Alice","editing":"item-1"}`})
	b.set("", `{"name":"Bob"}`)
	a.sees(map[string]string{"bob ": `{"name":"Bob"}`}) // never its own presences
	for id, peer := range b.peers {
		if peer.ClientID != "alice" || peer.ReadOnly || !strings.HasSuffix(id, "/tab-1") && !strings.HasSuffix(id, "/tab-2") {
			t.Fatalf("peer %s: %+v", id, peer)
		}
	}
	// A third connection joining gets both in its first frame.
	c := dialPresence(t, ts, "doc", "carol", "")
	for {
		f, _ := c.read(testTimeout)
		if f.Presence == nil {
			continue // the diff from LSN 0
		}
		if !f.Presence.Full || len(f.Presence.Peers) != 3 {
			t.Fatalf("first presence frame: got %+v, want a full snapshot of 3 peers", f.Presence)
		}
		break
	}
	// A change goes out; the same state again (a heartbeat) does not.
	a.set("tab-2", `{"name":"Alice","editing":"item-2"}`)
	b.sees(map[string]string{"alice tab-1": `{"name":"Alice"}`, "alice tab-2": `{"name":"Alice","editing":"item-2"}`})
	a.set("tab-1", `{"name":"Alice"}`)
	b.quiet(100 * time.Millisecond)
	// Another document's connection saw none of it.
	other.quiet(50 * time.Millisecond)
	if len(other.peers) != 0 {
		t.Fatalf("another document's connection sees %v", other.states())
	}
}

func TestPresenceGone(t *testing.T) {
	ts := startServer(t, Config{Presence: PresenceConfig{Timeout: 300 * time.Millisecond}})
	if got, want := ts.cfg.Presence.limits().TimeoutMs, uint32(300); got != want {
		t.Fatalf("welcome timeout: got %v ms, want %v", got, want)
	}
	watcher := dialPresence(t, ts, "doc", "watcher", "")

	t.Run("withdrawn", func(t *testing.T) {
		a := dialPresence(t, ts, "doc", "a", "")
		a.set("k", `1`)
		watcher.sees(map[string]string{"a k": "1"})
		a.set("k", "")
		watcher.sees(map[string]string{})
		a.Send(pushFrame(1, "add", testmutator.Args{ID: "x", Title: "still syncing"}))
		a.waitDiff()
	})
	t.Run("disconnect", func(t *testing.T) {
		a := dialPresence(t, ts, "doc", "a2", "")
		a.set("k", `2`)
		watcher.sees(map[string]string{"a2 k": "2"})
		start := time.Now()
		a.WS.Close()
		watcher.sees(map[string]string{})
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Fatalf("gone %v after the disconnect, want well before the timeout", d)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		a := dialPresence(t, ts, "doc", "a3", "")
		a.set("k", `3`)
		watcher.sees(map[string]string{"a3 k": "3"})
		start := time.Now()
		// The connection stays open but quiet: the presence goes after
		// the timeout.
		watcher.sees(map[string]string{})
		if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
			t.Fatalf("gone %v after the last update, want about the 300 ms timeout", d)
		}
		// Heartbeats below the timeout keep it.
		a.set("k", `3`)
		watcher.sees(map[string]string{"a3 k": "3"})
		for range 8 {
			time.Sleep(100 * time.Millisecond)
			a.set("k", `3`)
		}
		if got := watcher.states(); got["a3 k"] != "3" {
			t.Fatalf("after heartbeats for 800 ms: %v", got)
		}
		watcher.quiet(50 * time.Millisecond)
		if got := watcher.states(); got["a3 k"] != "3" {
			t.Fatalf("after heartbeats for 800 ms: %v", got)
		}
	})
}

func TestPresenceRefusals(t *testing.T) {
	ts := startServer(t, Config{Presence: PresenceConfig{MaxBytes: 64, Rate: 5, Burst: 3, MaxKeys: 2, MaxPeers: 3}})
	a := dialPresence(t, ts, "doc", "a", "")
	b := dialPresence(t, ts, "doc", "b", "")
	if got, want := *a.welcome.Presence, (protocol.PresenceLimits{MaxBytes: 64, TimeoutMs: 30000, IntervalMs: 200, Burst: 3, MaxPeers: 3, MaxKeys: 2}); got != want {
		t.Fatalf("welcome's limits: got %+v, want %+v", got, want)
	}
	// Waits for a's bucket to refill (one token per 200 ms).
	refill := func(n int) { time.Sleep(time.Duration(n) * 210 * time.Millisecond) }

	t.Run("too large", func(t *testing.T) {
		a.set("k", `"`+strings.Repeat("x", 70)+`"`)
		r := a.refusal()
		if r.Code != protocol.PresenceTooLarge || r.Key != "k" || !strings.Contains(r.Reason, "72 bytes, limit 64") {
			t.Fatalf("got %+v", r)
		}
		// Over the protocol's own limit it is a frame too large: closed.
	})
	refill(1)
	t.Run("not JSON", func(t *testing.T) {
		a.set("k", `{name: "a"}`)
		if r := a.refusal(); r.Code != protocol.PresenceBadState || !strings.Contains(r.Reason, "not valid JSON") {
			t.Fatalf("got %+v", r)
		}
	})
	refill(3)
	t.Run("rate", func(t *testing.T) {
		for i := range 5 {
			a.set("k", `{"i":`+string(rune('0'+i))+`}`)
		}
		n := len(a.refused)
		r := a.refusal()
		if r.Code != protocol.PresenceRate || !strings.Contains(r.Reason, "more than 5 presence updates per second (bursts of 3)") {
			t.Fatalf("got %+v", r)
		}
		a.until("the second refusal", testTimeout, func() bool { return len(a.refused) == n+2 })
		// The burst got through, the rest was refused: b sees the last
		// one accepted.
		b.sees(map[string]string{"a k": `{"i":2}`})
	})
	refill(3)
	t.Run("too many keys", func(t *testing.T) {
		a.set("k2", `2`)
		a.set("k3", `3`)
		if r := a.refusal(); r.Code != protocol.PresenceTooMany || r.Key != "k3" || !strings.Contains(r.Reason, "connection already has 2 presences") {
			t.Fatalf("got %+v", r)
		}
		b.sees(map[string]string{"a k": `{"i":2}`, "a k2": "2"})
	})
	t.Run("too many in the document", func(t *testing.T) {
		b.set("b1", `1`)
		b.set("b2", `2`)
		if r := b.refusal(); r.Code != protocol.PresenceTooMany || !strings.Contains(r.Reason, "document already has 3 presences") {
			t.Fatalf("got %+v", r)
		}
	})
	// After every refusal the connection and its writes go on.
	a.Send(pushFrame(1, "add", testmutator.Args{ID: "x", Title: "after refusals"}))
	a.waitDiff()
	refill(1)
	a.set("k", `"fine"`)
	b.sees(map[string]string{"a k": `"fine"`, "a k2": "2"})
	a.sees(map[string]string{"b b1": "1"})
}

func TestPresenceSpammerPaced(t *testing.T) {
	// A connection that writes updates as fast as it can is read at its
	// rate: over it, each update is refused and the coordinator reads on
	// only once the rate allows, so the spammer costs a decode per token;
	// the others' writes go on meanwhile.
	const rate, burst = 20, 2
	ts := startServer(t, Config{Presence: PresenceConfig{Rate: rate, Burst: burst}})
	spammer := dialPresence(t, ts, "doc", "spammer", "")
	writer := dialPresence(t, ts, "doc", "writer", "")
	processed := func() float64 {
		mfs, err := ts.metrics.registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for _, mf := range mfs {
			if mf.GetName() == "sqlsync_presence_updates_total" {
				for _, m := range mf.GetMetric() {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	frame, err := protocol.Encode(protocol.Frame{PresenceSet: &protocol.PresenceSet{State: []byte(`{"spam":true}`)}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for spammer.WS.WriteMessage(websocket.BinaryMessage, frame) == nil {
			sent.Add(1)
		}
	}()
	for i := range 5 {
		t0 := time.Now()
		writer.Send(pushFrame(uint64(i+1), "add", testmutator.Args{ID: fmt.Sprint("w", i), Title: "beside a spammer"}))
		writer.waitDiff()
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("a write took %v beside the spammer", d)
		}
	}
	time.Sleep(time.Second - time.Since(start))
	n, elapsed := processed(), time.Since(start)
	spammer.WS.Close() // ends the spamming goroutine, blocked or not
	<-done
	t.Logf("in %v the spammer wrote %d updates, the coordinator read %v", elapsed, sent.Load(), n)
	if max := rate*elapsed.Seconds() + burst + 5; n > max {
		t.Fatalf("%v updates read in %v, over %v", n, elapsed, max)
	}
}

func TestPresenceRefusalsBounded(t *testing.T) {
	// The refusals waiting for a connection's writer stay bounded; those
	// past the bound are counted in the last one's reason.
	const n = 300
	cfg, err := PresenceConfig{Rate: 1, Burst: 1}.withDefaults(&protocol.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h := newPresenceHub(cfg, newPresenceMetrics(prometheus.NewRegistry()), testLogger())
	c := &conn{wakeCh: make(chan struct{}, 1), log: testLogger(), clientID: "c"}
	h.join(c)
	for i := range n {
		h.set(c, &protocol.PresenceSet{State: []byte(fmt.Sprint(i))})
	}
	frames := h.take(c)
	if got, want := len(frames), maxQueuedRefusals+1; got != want { // and the full snapshot
		t.Fatalf("got %d frames, want %d", got, want)
	}
	if r := frames[maxQueuedRefusals-1].PresenceRefused; r == nil || !strings.Contains(r.Reason, fmt.Sprintf("(and %d more updates refused)", n-1-maxQueuedRefusals)) {
		t.Fatalf("last refusal: %+v", frames[maxQueuedRefusals-1])
	}
	h.close()
}

func TestPresenceQueueCoalesces(t *testing.T) {
	// A member that does not read costs one entry per presence, and a
	// full snapshot once presences come and go past a bound.
	h := newPresenceHub(PresenceConfig{MaxBytes: 100, Timeout: time.Minute, Rate: 1e6, Burst: 1e6, MaxPeers: 4, MaxKeys: 100}, newPresenceMetrics(prometheus.NewRegistry()), testLogger())
	defer h.close()
	newConn := func(id string) *conn {
		c := &conn{wakeCh: make(chan struct{}, 1), log: testLogger(), clientID: id}
		h.join(c)
		return c
	}
	slow, pub := newConn("slow"), newConn("pub")
	if f := h.take(slow); len(f) != 1 || !f[0].Presence.Full {
		t.Fatalf("first frames %+v, want a full snapshot", f)
	}
	for i := range 50 {
		h.set(pub, &protocol.PresenceSet{Key: "k", State: []byte(fmt.Sprint(i))})
	}
	f := h.take(slow)
	if len(f) != 1 || len(f[0].Presence.Peers) != 1 || string(f[0].Presence.Peers[0].State) != "49" {
		t.Fatalf("after 50 updates of one presence: %+v, want the last one", f)
	}
	for i := range 17 { // each comes and goes: 17 IDs, over 4 * MaxPeers
		key := fmt.Sprint("k", i)
		h.set(pub, &protocol.PresenceSet{Key: key, State: []byte("1")})
		h.set(pub, &protocol.PresenceSet{Key: key})
	}
	f = h.take(slow)
	if len(f) != 1 || !f[0].Presence.Full || len(f[0].Presence.Peers) != 1 {
		t.Fatalf("after churn: %+v, want a full snapshot of the one presence left", f)
	}
}

func TestPresenceOldClient(t *testing.T) {
	ts := startServer(t, Config{})
	a := dialPresence(t, ts, "doc", "new", "")
	old := dialRaw(t, ts)
	old.Send(hello("doc", "old"))
	if w := old.ExpectWelcome(); w.Capabilities != nil || w.Presence != nil {
		t.Fatalf("a client that did not ask got %+v", w)
	}
	a.set("", `{"name":"new"}`)
	a.Send(pushFrame(1, "add", testmutator.Args{ID: "x", Title: "from new"}))
	old.Send(pushFrame(1, "add", testmutator.Args{ID: "y", Title: "from old"}))
	// The old client gets diffs and nothing of presence.
	oc := watchPresence(t, old, protocol.Welcome{})
	diffs := 0
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		f, ok := oc.read(time.Until(deadline))
		if !ok {
			break
		}
		if f.Presence != nil || f.PresenceRefused != nil {
			t.Fatalf("a client without the capability got %s", f.Kind())
		}
		if f.Diff != nil {
			diffs++
		}
	}
	if diffs == 0 {
		t.Fatal("the old client got no diff")
	}
	// And may not set presence.
	old.Send(protocol.Frame{PresenceSet: &protocol.PresenceSet{State: []byte(`1`)}})
	oc.expectClose(protocol.CodeBadRequest, "with the presence capability")
}

func TestPresenceDisabled(t *testing.T) {
	ts := startServer(t, Config{Presence: PresenceConfig{Disabled: true}})
	c := dialRaw(t, ts)
	c.Send(presenceHello("doc", "a", ""))
	if w := c.ExpectWelcome(); w.Capabilities != nil || w.Presence != nil {
		t.Fatalf("presence granted while disabled: %+v", w)
	}
	c.Send(protocol.Frame{PresenceSet: &protocol.PresenceSet{State: []byte(`1`)}})
	c.ExpectClose(protocol.CodeBadRequest, "presence")
}

func TestPresenceReadOnly(t *testing.T) {
	v, err := NewHMACVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(role Role) string {
		tok, err := Mint(testSecret, []string{"*"}, role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, deny := range []bool{false, true} {
		name := "readers publish"
		if deny {
			name = "readers refused"
		}
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, Config{Verifier: v, Presence: PresenceConfig{DenyReaders: deny}})
			w := dialPresence(t, ts, "doc", "writer", mint(RoleWrite))
			r := dialPresence(t, ts, "doc", "reader", mint(RoleRead))
			w.sees(map[string]string{})
			w.set("", `{"name":"W"}`)
			r.sees(map[string]string{"writer ": `{"name":"W"}`}) // a reader always sees
			r.set("", `{"name":"R"}`)
			if deny {
				if got := r.refusal(); got.Code != protocol.PresenceForbidden || !strings.Contains(got.Reason, "read-only") {
					t.Fatalf("got %+v", got)
				}
				w.quiet(100 * time.Millisecond)
				if len(w.peers) != 0 {
					t.Fatalf("the writer sees %v", w.states())
				}
				r.set("", "") // withdrawing is always allowed
				r.quiet(50 * time.Millisecond)
			} else {
				w.sees(map[string]string{"reader ": `{"name":"R"}`})
				for _, p := range w.peers {
					if !p.ReadOnly {
						t.Fatalf("the reader's presence is not marked read-only: %+v", p)
					}
				}
			}
			// Its mutations are still refused, with the usual reason.
			r.Send(pushFrame(1, "add", testmutator.Args{ID: "x", Title: "no"}))
			r.until("the rejection", testTimeout, func() bool {
				f, _ := r.read(testTimeout)
				return f.Rejected != nil && strings.Contains(f.Rejected.Message, "read-only")
			})
		})
	}
}

func TestPresenceConfigBounds(t *testing.T) {
	for _, cfg := range []PresenceConfig{
		{MaxBytes: 64<<10 + 1},
		{MaxPeers: 257},
		{Rate: -1},
	} {
		if _, err := New(Config{DataDir: t.TempDir(), Mutator: todoMutator, Presence: cfg, Logger: testLogger()}); err == nil {
			t.Fatalf("New accepted %+v", cfg)
		}
	}
	// A larger presence limit raises the frame decoder's, so that a state
	// between the two is refused with a reason, not closed as too large.
	ts := startServer(t, Config{Limits: protocol.Limits{MaxPresenceBytes: 16}, Presence: PresenceConfig{MaxBytes: 100}})
	a := dialPresence(t, ts, "doc", "a", "")
	a.set("", `"`+strings.Repeat("x", 50)+`"`)
	b := dialPresence(t, ts, "doc", "b", "")
	b.sees(map[string]string{"a ": `"` + strings.Repeat("x", 50) + `"`})
}

// FuzzPresenceFrames sends fuzzed frames on a connection granted presence.
// The server must answer with frames that decode, refuse a bad update with
// a known code and a reason (or end a bad connection with a Close frame of
// a known code), fan out only states that are JSON within the limit, and
// stay healthy.
func FuzzPresenceFrames(f *testing.F) {
	for _, fr := range []protocol.Frame{
		{PresenceSet: &protocol.PresenceSet{Key: "tab", State: []byte(`{"name":"fuzz"}`)}},
		{PresenceSet: &protocol.PresenceSet{Key: "tab"}},
		{PresenceSet: &protocol.PresenceSet{State: []byte(`{not json`)}},
		{PresenceSet: &protocol.PresenceSet{State: []byte(`"` + strings.Repeat("x", 2000) + `"`)}},
		{Presence: &protocol.Presence{Full: true}},
		{PresenceRefused: &protocol.PresenceRefused{Code: "rate"}},
		pushFrame(1, "add", testmutator.Args{ID: "fuzz", Title: "fuzz"}),
	} {
		b, err := protocol.Encode(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(1))
		f.Add(b, uint8(30))
	}
	f.Add([]byte("\xa1\x07\xa1\x02\x41\x7b"), uint8(2)) // state "{"
	ts := startServer(f, Config{Limits: robustLimits, HelloTimeout: time.Second, Presence: PresenceConfig{Burst: 5}})
	codes := map[string]bool{protocol.PresenceTooLarge: true, protocol.PresenceRate: true, protocol.PresenceTooMany: true, protocol.PresenceBadState: true}
	closes := map[string]bool{protocol.CodeBadFrame: true, protocol.CodeBadRequest: true, protocol.CodeLimit: true}
	var n int
	f.Fuzz(func(t *testing.T, data []byte, times uint8) {
		n++
		c := dialRaw(t, ts)
		c.Send(presenceHello("fuzz", fmt.Sprintf("fuzzer%d", n), ""))
		c.ExpectWelcome()
		for range min(int(times), 40) {
			// A frame that ends the connection fails the writes after it.
			if c.WS.WriteMessage(websocket.BinaryMessage, data) != nil {
				break
			}
		}
		readFrames(t, c, 100*time.Millisecond, func(fr protocol.Frame) {
			switch {
			case fr.Close != nil:
				if !closes[fr.Close.Code] || fr.Close.Reason == "" {
					t.Fatalf("close: code %q reason %q", fr.Close.Code, fr.Close.Reason)
				}
			case fr.PresenceRefused != nil:
				if r := fr.PresenceRefused; !codes[r.Code] || r.Reason == "" {
					t.Fatalf("refusal %+v", r)
				}
			case fr.Presence != nil:
				for _, p := range fr.Presence.Peers {
					if !json.Valid(p.State) || len(p.State) > DefaultPresenceMaxBytes {
						t.Fatalf("fanned out %q", p.State)
					}
				}
			}
		})
		c.WS.Close()
		checkHealthy(t, ts)
	})
}
