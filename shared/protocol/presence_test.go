package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestPresenceValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	lim := DefaultLimits()
	peers := func(n int) []Peer {
		ps := make([]Peer, n)
		for i := range ps {
			ps[i] = Peer{ID: "p", State: []byte("1")}
		}
		return ps
	}
	tests := []struct {
		name string
		f    Frame
		want error
		msg  string
	}{
		{"hello empty capability", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Capabilities: []string{""}}}, ErrBadFrame, "capability 0 is empty"},
		{"hello long capability", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Capabilities: []string{long(lim.MaxNameBytes + 1)}}}, ErrTooLarge, "capability 0 is 129 bytes"},
		{"hello many capabilities", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Capabilities: make([]string, maxCapabilities+1)}}, ErrTooLarge, "17 capabilities, limit 16"},
		{"welcome empty capability", Frame{Welcome: &Welcome{Version: 1, Capabilities: []string{"presence", ""}}}, ErrBadFrame, "capability 1 is empty"},
		{"presence_set long key", Frame{PresenceSet: &PresenceSet{Key: long(65), State: []byte("1")}}, ErrTooLarge, "presence_set: key is 65 bytes, limit 64"},
		{"presence_set bad key", Frame{PresenceSet: &PresenceSet{Key: "\xff", State: []byte("1")}}, ErrBadFrame, "invalid UTF-8"},
		{"presence_set large state", Frame{PresenceSet: &PresenceSet{State: make([]byte, lim.MaxPresenceBytes+1)}}, ErrTooLarge, "presence_set: state is 65537 bytes, limit 65536"},
		{"presence no id", Frame{Presence: &Presence{Peers: []Peer{{State: []byte("1")}}}}, ErrBadFrame, "presence: peer 0: id is empty"},
		{"presence no state", Frame{Presence: &Presence{Peers: []Peer{{ID: "p"}}}}, ErrBadFrame, "presence: peer 0: state is empty"},
		{"presence large state", Frame{Presence: &Presence{Peers: []Peer{{ID: "p", State: make([]byte, lim.MaxPresenceBytes+1)}}}}, ErrTooLarge, "peer 0: state is 65537 bytes"},
		{"presence long client id", Frame{Presence: &Presence{Peers: []Peer{{ID: "p", ClientID: long(129), State: []byte("1")}}}}, ErrTooLarge, "peer 0: client id is 129 bytes"},
		{"presence empty gone", Frame{Presence: &Presence{Gone: []string{"a", ""}}}, ErrBadFrame, "presence: gone 1 is empty"},
		{"presence too many", Frame{Presence: &Presence{Peers: peers(lim.MaxPresencePeers), Gone: []string{"g"}}}, ErrTooLarge, "256 peers and 1 gone, limit 256 in all"},
		{"presence_refused no code", Frame{PresenceRefused: &PresenceRefused{Key: "k"}}, ErrBadFrame, "presence_refused: code is empty"},
		{"presence_refused long reason", Frame{PresenceRefused: &PresenceRefused{Code: "rate", Reason: long(lim.MaxMessageBytes + 1)}}, ErrTooLarge, "reason is 4097 bytes"},
		{"presence_set and push", Frame{PresenceSet: &PresenceSet{}, Push: &Push{Mutations: []Mutation{{Seq: 1, Name: "m"}}}}, ErrBadFrame, "2 messages set (push, presence_set)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(rawEncode(t, tt.f), lim)
			if got, want := errors.Is(err, tt.want), true; got != want {
				t.Fatalf("Decode: errors.Is(%v, %v) = %v, want %v", err, tt.want, got, want)
			}
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Decode: got %v, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestPresenceLimitsConfigurable(t *testing.T) {
	f := Frame{PresenceSet: &PresenceSet{State: []byte(`"abcdef"`)}}
	if _, err := Decode(rawEncode(t, f), Limits{MaxPresenceBytes: 8}); err != nil {
		t.Fatalf("8 bytes at limit 8: %v", err)
	}
	if _, err := Decode(rawEncode(t, f), Limits{MaxPresenceBytes: 7}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("8 bytes at limit 7: got %v, want ErrTooLarge", err)
	}
	many := Frame{Presence: &Presence{Gone: []string{"a", "b", "c"}}}
	if _, err := Decode(rawEncode(t, many), Limits{MaxPresencePeers: 2}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("3 gone at limit 2: got %v, want ErrTooLarge", err)
	}
}

// TestPresenceNormalizesEmpty: empty arrays and byte strings decode as nil,
// as Encode omits them.
func TestPresenceNormalizesEmpty(t *testing.T) {
	// Hello with Capabilities [] and PresenceSet with State h''.
	tests := []decodeCase{
		{"empty capabilities", "a1 01 a4 01 01 02 61 64 03 61 63 07 80", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c"}}},
		{"empty state", "a1 07 a2 01 61 6b 02 40", Frame{PresenceSet: &PresenceSet{Key: "k"}}},
		{"empty peers and gone", "a1 08 a3 01 80 02 80 03 f5", Frame{Presence: &Presence{Full: true}}},
	}
	checkDecodes(t, tests)
}

func TestHasCapability(t *testing.T) {
	if !HasCapability([]string{"x", CapPresence}, CapPresence) {
		t.Fatal("presence not found")
	}
	if HasCapability(nil, CapPresence) || HasCapability([]string{"presences"}, CapPresence) {
		t.Fatal("presence found where it is not")
	}
}

// FuzzDecodePresence fuzzes the decoding of the presence frames and the
// capability fields around them: whatever decodes re-encodes to at most as
// many bytes and decodes back to the same frame, and the limits hold.
func FuzzDecodePresence(f *testing.F) {
	for _, tt := range validFrames() {
		if tt.f.PresenceSet == nil && tt.f.Presence == nil && tt.f.PresenceRefused == nil &&
			!strings.Contains(tt.name, "capabilities") && !strings.Contains(tt.name, "presence") {
			continue
		}
		b, err := Encode(tt.f)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"a1 07 a0",                         // presence_set, all absent
		"a1 07 a2 01 61 6b 02 40",          // empty state
		"a1 08 a1 01 81 a1 01 61 69",       // peer without state
		"a1 08 a3 01 80 02 80 03 f5",       // empty full snapshot
		"a1 09 a1 01 61 6b",                // refused without code
		"a1 07 a2 01 62 ff fe 02 41 31",    // invalid UTF-8 key
		"a2 07 a0 08 a0",                   // two presence messages
		"a1 08 a1 02 83 61 61 61 62 61 63", // three gone
		"a1 03 a2 01 01 05 a1 01 19 04 00", // welcome with partial limits
	} {
		f.Add(mustHex(f, s))
	}
	lim := Limits{MaxFrameBytes: 1 << 16, MaxPresenceBytes: 64, MaxPresencePeers: 4}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b, lim)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Decode error %v wraps neither sentinel", err)
			}
			return
		}
		if p := fr.PresenceSet; p != nil && len(p.State) > lim.MaxPresenceBytes {
			t.Fatalf("state of %d bytes passed a limit of %d", len(p.State), lim.MaxPresenceBytes)
		}
		if p := fr.Presence; p != nil {
			if n := len(p.Peers) + len(p.Gone); n > lim.MaxPresencePeers {
				t.Fatalf("%d peers and gone passed a limit of %d", n, lim.MaxPresencePeers)
			}
			for _, peer := range p.Peers {
				if peer.ID == "" || len(peer.State) == 0 {
					t.Fatalf("peer %+v without id or state passed", peer)
				}
			}
		}
		checkRoundTrip(t, b, fr, lim)
	})
}
