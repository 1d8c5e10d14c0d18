package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// presenceEvents collects a document's presence events.
type presenceEvents struct {
	mu    sync.Mutex
	peers [][]Peer
}

func (e *presenceEvents) emit(b []byte) {
	var ev struct {
		Type  string `json:"type"`
		Peers []Peer `json:"peers"`
	}
	if json.Unmarshal(b, &ev) == nil && ev.Type == "presence" {
		e.mu.Lock()
		e.peers = append(e.peers, ev.Peers)
		e.mu.Unlock()
	}
}

func (e *presenceEvents) last() []Peer {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.peers) == 0 {
		return nil
	}
	return e.peers[len(e.peers)-1]
}

// TestPresence: each tab's presence (a key) goes out through the one
// replica; the events list every presence, the local ones with their key,
// and the state as JSON itself.
func TestPresence(t *testing.T) {
	url := startCoordinator(t, testmutator.Mutator{})
	open := func(ev *presenceEvents) *Doc {
		d, err := Open(context.Background(), Config{URL: url, DocID: "doc", Mutator: "", Presence: true}, State{Kind: "memory"}, slog.New(slog.DiscardHandler), ev.emit)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	var ea, eb presenceEvents
	a, b := open(&ea), open(&eb)
	if err := a.SetPresence("tab-1", []byte(`{"name":"Ada"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPresence("tab-2", []byte(`{"name":"Ada","editing":"x"}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(eb.last()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("b's last presence event: %+v", eb.last())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, p := range eb.last() {
		if p.Local || p.ClientID != a.ClientID() || !strings.HasPrefix(string(p.State), `{"name":"Ada"`) {
			t.Fatalf("b sees %+v", p)
		}
	}
	got := ea.last()
	if len(got) != 2 || !got[0].Local || got[0].Key != "tab-1" || string(got[0].State) != `{"name":"Ada"}` {
		t.Fatalf("a's own presences: %+v", got)
	}
	var s Status
	json.Unmarshal(b.Status(), &s)
	if !s.Presence {
		t.Fatalf("status: %+v", s)
	}
	code := func(err error) string {
		var e *Error
		if errors.As(err, &e) {
			return e.Code()
		}
		return ""
	}
	if err := a.SetPresence("tab-1", []byte(`"`+strings.Repeat("x", 2000)+`"`)); code(err) != "presence_too_large" {
		t.Fatalf("2 KB state: got %v, want code presence_too_large", err)
	}
	if err := a.SetPresence("tab-1", []byte(`{x`)); code(err) != "bad_request" {
		t.Fatalf("not JSON: got %v, want code bad_request", err)
	}
	if err := a.SetPresence("tab-2", nil); err != nil {
		t.Fatal(err)
	}
	for len(eb.last()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("b's last presence event after a clear: %+v", eb.last())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
