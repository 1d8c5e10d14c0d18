package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// startCoordinator serves a coordinator with cfg on 127.0.0.1 for the
// test and returns its sync endpoint.
func startCoordinator(t *testing.T, cfg server.Config) string {
	t.Helper()
	cfg.DataDir, cfg.Logger = t.TempDir(), servertest.Logger()
	cfg.Mutator = func(string) engine.Mutator { return testmutator.Mutator{} }
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Start(t, s, servertest.Listen(t)).URL(server.SyncPath)
}

// wire counts a replica's frames and may drop its presence updates, as a
// network that stops carrying them would.
type wire struct {
	mute      atomic.Bool
	sets      atomic.Int64 // PresenceSet frames sent
	presences atomic.Int64 // Presence and PresenceRefused frames received
}

func (w *wire) dial(ctx context.Context, url string) (client.Transport, error) {
	t, err := servertest.Dialer{Read: func(f protocol.Frame, _ int) {
		if f.Presence != nil || f.PresenceRefused != nil {
			w.presences.Add(1)
		}
	}}.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	return &muteTransport{Transport: t, w: w}, nil
}

type muteTransport struct {
	client.Transport
	w *wire
}

func (t *muteTransport) Write(ctx context.Context, b []byte) error {
	if f, err := protocol.Decode(b, protocol.Limits{}); err == nil && f.PresenceSet != nil {
		if t.w.mute.Load() {
			return nil // lost on the way
		}
		t.w.sets.Add(1)
	}
	return t.Transport.Write(ctx, b)
}

// replica opens a replica of doc on url taking part in presence (unless
// off), over w if given.
func replica(t *testing.T, url, doc string, w *wire, mod func(*client.Options)) *client.Doc {
	t.Helper()
	opts := client.Options{URL: url, DocID: doc, Mutator: testmutator.Mutator{}, Presence: true}
	if w != nil {
		opts.Dial = w.dial
	}
	if mod != nil {
		mod(&opts)
	}
	d := servertest.OpenReplica(t, opts)
	servertest.WaitSynced(t, d)
	return d
}

// watch records what a presence's Subscribe reports.
type watch struct {
	mu     sync.Mutex
	others []client.Peer
	calls  int
}

func watchOthers(t *testing.T, p *client.Presence) *watch {
	w := &watch{}
	t.Cleanup(p.Subscribe(func(o []client.Peer) {
		w.mu.Lock()
		w.others, w.calls = o, w.calls+1
		w.mu.Unlock()
	}))
	return w
}

// states returns the others as "clientID key=state" (key "" for a
// remote presence's own key, after its ID's "/").
func (w *watch) states() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, p := range w.others {
		key := p.Key
		if !p.Local {
			key = p.ID[strings.Index(p.ID, "/")+1:]
		}
		out = append(out, fmt.Sprintf("%s %s=%s", p.ClientID, key, p.State))
	}
	return out
}

// until waits for the others to be want (in ID order, which puts the
// local ones last).
func (w *watch) until(t *testing.T, within time.Duration, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for !equal(w.states(), want) {
		if time.Since(start) > within {
			t.Fatalf("others %q, want %q", w.states(), want)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPresence(t *testing.T) {
	url := startCoordinator(t, server.Config{})
	a := replica(t, url, "doc", nil, nil)
	b := replica(t, url, "doc", nil, nil)
	if !a.Status().Presence || !b.Status().Presence {
		t.Fatalf("presence not granted: %+v", a.Status())
	}
	ida, idb := a.ClientID(), b.ClientID()
	wb := watchOthers(t, b.Presence())
	wa := watchOthers(t, a.Presence())

	if err := a.Presence().Set(map[string]string{"name": "Ada"}); err != nil {
		t.Fatal(err)
	}
	d := wb.until(t, servertest.Timeout, ida+` ={"name":"Ada"}`)
	t.Logf("b saw a's presence %v after Set", d)
	// A second presence of a (a browser's second tab): b sees both; a's
	// first sees the second as local, and not itself.
	tab := a.PresenceOf("tab-2")
	wtab := watchOthers(t, tab)
	if err := tab.Set(json.RawMessage(`{"name":"Ada","editing":"item-1"}`)); err != nil {
		t.Fatal(err)
	}
	wb.until(t, servertest.Timeout, ida+` ={"name":"Ada"}`, ida+` tab-2={"name":"Ada","editing":"item-1"}`)
	wa.until(t, servertest.Timeout, ida+` tab-2={"name":"Ada","editing":"item-1"}`)
	wtab.until(t, servertest.Timeout, ida+` ={"name":"Ada"}`)
	if err := b.Presence().Set("Bob"); err != nil {
		t.Fatal(err)
	}
	wa.until(t, servertest.Timeout, idb+` ="Bob"`, ida+` tab-2={"name":"Ada","editing":"item-1"}`)
	wtab.until(t, servertest.Timeout, idb+` ="Bob"`, ida+` ={"name":"Ada"}`)
	if got := string(a.Presence().State()); got != `{"name":"Ada"}` {
		t.Fatalf("a's own state: %s", got)
	}
	// Clearing withdraws it for the others.
	tab.Clear()
	wb.until(t, servertest.Timeout, ida+` ={"name":"Ada"}`)
	wa.until(t, servertest.Timeout, idb+` ="Bob"`)
	// Mutations go on beside it.
	servertest.Mutate(t, a, "add", testmutator.Args{ID: "x", Title: "x"})
	servertest.WaitSynced(t, a)
}

func TestPresenceLocalChecks(t *testing.T) {
	d := servertest.OpenReplica(t, client.Options{DocID: "offline", Mutator: testmutator.Mutator{}, Presence: true})
	p := d.Presence()
	if err := p.Set(strings.Repeat("x", 2000)); !errors.Is(err, client.ErrPresenceTooLarge) {
		t.Fatalf("2000 bytes: got %v, want ErrPresenceTooLarge", err)
	}
	if err := p.Set([]byte(`{no`)); !errors.Is(err, client.ErrPresenceNotJSON) {
		t.Fatalf("not JSON: got %v, want ErrPresenceNotJSON", err)
	}
	// Offline, the state is kept (and sent once connected); the local
	// presences see each other.
	if err := p.Set(1); err != nil {
		t.Fatal(err)
	}
	w := watchOthers(t, d.PresenceOf("t2"))
	w.until(t, time.Second, d.ClientID()+" =1")
	if d.Status().Presence {
		t.Fatal("offline, presence reported granted")
	}
}

func TestPresenceGoneOnClose(t *testing.T) {
	url := startCoordinator(t, server.Config{})
	a := replica(t, url, "doc", nil, nil)
	b := replica(t, url, "doc", nil, nil)
	wb := watchOthers(t, b.Presence())
	a.Presence().Set("here")
	wb.until(t, servertest.Timeout, a.ClientID()+` ="here"`)
	a.Close()
	d := wb.until(t, servertest.Timeout)
	t.Logf("gone %v after Close", d)
	// Going offline (the app's switch) withdraws it too, and coming back
	// brings it back.
	c := replica(t, url, "doc", nil, nil)
	c.Presence().Set("c")
	wb.until(t, servertest.Timeout, c.ClientID()+` ="c"`)
	c.SetOnline(false)
	wb.until(t, servertest.Timeout)
	wc := watchOthers(t, c.Presence())
	b.Presence().Set("b")
	time.Sleep(50 * time.Millisecond)
	if got := wc.states(); len(got) != 0 {
		t.Fatalf("offline, c sees %q", got)
	}
	c.SetOnline(true)
	wb.until(t, servertest.Timeout, c.ClientID()+` ="c"`)
	wc.until(t, servertest.Timeout, b.ClientID()+` ="b"`)
}

func TestPresenceTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	url := startCoordinator(t, server.Config{Presence: server.PresenceConfig{Timeout: timeout}})
	var w wire
	a := replica(t, url, "doc", &w, nil)
	b := replica(t, url, "doc", nil, nil)
	wb := watchOthers(t, b.Presence())
	a.Presence().Set("a")
	wb.until(t, servertest.Timeout, a.ClientID()+` ="a"`)
	// The heartbeat keeps it past several timeouts.
	sets := w.sets.Load()
	time.Sleep(4 * timeout)
	if got := wb.states(); len(got) != 1 {
		t.Fatalf("after 4 timeouts with heartbeats: %q", got)
	}
	if n := w.sets.Load() - sets; n < 6 || n > 20 {
		t.Fatalf("%d heartbeats in 4 timeouts, want about 12 (one every third)", n)
	}
	// A network that stops carrying them: gone after the timeout, though
	// the connection stays up.
	w.mute.Store(true)
	start := time.Now()
	wb.until(t, 10*timeout)
	if d := time.Since(start); d < timeout/2 {
		t.Fatalf("gone after %v, before the %v timeout could pass", d, timeout)
	}
	if !a.Status().Presence || a.Status().State != client.Online {
		t.Fatalf("a's connection ended: %+v", a.Status())
	}
	w.mute.Store(false)
	wb.until(t, servertest.Timeout, a.ClientID()+` ="a"`)
}

func TestPresencePacing(t *testing.T) {
	// A replica that sets its presence far faster than the coordinator's
	// rate is never refused: its updates are paced and coalesced, the
	// last one wins.
	url := startCoordinator(t, server.Config{Presence: server.PresenceConfig{Rate: 20, Burst: 4}})
	var w wire
	a := replica(t, url, "doc", &w, nil)
	b := replica(t, url, "doc", nil, nil)
	var refused atomic.Int64
	a.Watch(func(e client.Event) {
		if e.PresenceRefused != nil {
			refused.Add(1)
		}
	})
	wb := watchOthers(t, b.Presence())
	// A Set every millisecond for half a second, as a cursor might.
	start := time.Now()
	i := 0
	for ; time.Since(start) < 500*time.Millisecond; i++ {
		if err := a.Presence().Set(map[string]int{"x": i}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	wb.until(t, servertest.Timeout, a.ClientID()+fmt.Sprintf(` ={"x":%d}`, i-1))
	elapsed := time.Since(start)
	n := w.sets.Load()
	t.Logf("%d Sets in %v: %d updates sent", i, elapsed, n)
	if n > 3+int64(elapsed.Seconds()*20) {
		t.Fatalf("%d updates sent in %v, over the rate of 20/s with bursts of 2", n, elapsed)
	}
	if n < 5 {
		t.Fatalf("only %d updates sent in %v: the others saw too few of the changes", n, elapsed)
	}
	if n := refused.Load(); n != 0 {
		t.Fatalf("%d updates refused", n)
	}
}

func TestPresenceOldReplica(t *testing.T) {
	// A replica that does not ask for presence gets none of it, and syncs.
	url := startCoordinator(t, server.Config{})
	var w wire
	old := replica(t, url, "doc", &w, func(o *client.Options) { o.Presence = false })
	a := replica(t, url, "doc", nil, nil)
	a.Presence().Set("a")
	servertest.Mutate(t, a, "add", testmutator.Args{ID: "x", Title: "from a"})
	servertest.Mutate(t, old, "add", testmutator.Args{ID: "y", Title: "from old"})
	servertest.WaitSynced(t, a)
	servertest.WaitFor(t, "old sees a's mutation", func() bool {
		return servertest.Query(t, old, `SELECT count(*) FROM items`) == "[[2]]"
	})
	if old.Status().Presence {
		t.Fatal("presence granted to a replica that did not ask")
	}
	if n := w.presences.Load(); n != 0 {
		t.Fatalf("the old replica got %d presence frames", n)
	}
	if got := old.Presence().Others(); len(got) != 0 {
		t.Fatalf("the old replica sees %v", got)
	}
}

func TestPresenceReadOnly(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := server.NewHMACVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	token := func(role server.Role) string {
		tok, err := server.Mint(secret, []string{"*"}, role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, deny := range []bool{false, true} {
		t.Run(fmt.Sprint("deny readers ", deny), func(t *testing.T) {
			url := startCoordinator(t, server.Config{Verifier: v, Presence: server.PresenceConfig{DenyReaders: deny}})
			writer := replica(t, url, "doc", nil, func(o *client.Options) { o.Token = token(server.RoleWrite) })
			reader := replica(t, url, "doc", nil, func(o *client.Options) { o.Token = token(server.RoleRead) })
			refusals := make(chan *client.PresenceRefusal, 4)
			reader.Watch(func(e client.Event) {
				if e.PresenceRefused != nil {
					refusals <- e.PresenceRefused
				}
			})
			ww, wr := watchOthers(t, writer.Presence()), watchOthers(t, reader.Presence())
			writer.Presence().Set("w")
			wr.until(t, servertest.Timeout, writer.ClientID()+` ="w"`) // readers see
			reader.Presence().Set("r")
			if deny {
				select {
				case r := <-refusals:
					if r.Code != protocol.PresenceForbidden || !strings.Contains(r.Reason, "read-only") {
						t.Fatalf("refusal %+v", r)
					}
				case <-time.After(servertest.Timeout):
					t.Fatal("no refusal")
				}
				if got := ww.states(); len(got) != 0 {
					t.Fatalf("the writer sees %q", got)
				}
				return
			}
			ww.until(t, servertest.Timeout, reader.ClientID()+` ="r"`)
			ww.mu.Lock()
			ro := ww.others[0].ReadOnly
			ww.mu.Unlock()
			if !ro {
				t.Fatal("the reader's presence is not marked read-only")
			}
		})
	}
}
