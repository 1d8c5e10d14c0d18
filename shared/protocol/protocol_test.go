package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// page returns PageSize bytes of b.
func page(b byte) []byte { return bytes.Repeat([]byte{b}, PageSize) }

type namedFrame struct {
	name string
	f    Frame
}

// validFrames returns valid frames of every kind.
func validFrames() []namedFrame {
	return []namedFrame{
		{"hello", Frame{Hello: &Hello{Version: Version, DocID: "doc-1", ClientID: "client-1", LSN: 42, Token: "secret"}}},
		{"hello new", Frame{Hello: &Hello{Version: Version, DocID: "doc-1", ClientID: "client-1"}}},
		{"hello with secret", Frame{Hello: &Hello{Version: Version, DocID: "doc-1", ClientID: "client-1", Secret: "0123456789abcdef"}}},
		{"push", Frame{Push: &Push{Mutations: []Mutation{
			{Seq: 1, Name: "addTodo", Args: []byte(`{"title":"milk"}`)},
			{Seq: 2, Name: "clear"},
			{Seq: 9, Name: "toggle", Args: []byte{0}},
		}}}},
		{"welcome", Frame{Welcome: &Welcome{Version: Version, LSN: 7, MutatorHash: "sha256:abcd"}}},
		{"welcome empty doc", Frame{Welcome: &Welcome{Version: Version}}},
		{"diff", Frame{Diff: &Diff{From: 3, To: 5, PageCount: 10, Pages: []Page{{No: 1, Data: page(1)}, {No: 10, Data: page(10)}}}}},
		{"diff no pages", Frame{Diff: &Diff{From: 0, To: 1, PageCount: 0}}},
		{"rejected", Frame{Rejected: &Rejected{Seq: 5, Message: "title is required"}}},
		{"rejected no message", Frame{Rejected: &Rejected{Seq: 1}}},
		{"close", Frame{Close: &Close{Code: CodeVersion, Reason: "unsupported version 2"}}},
		{"close unknown code", Frame{Close: &Close{Code: "some_future_code"}}},
		{"hello with capabilities", Frame{Hello: &Hello{Version: Version, DocID: "doc-1", ClientID: "client-1", Capabilities: []string{CapPresence, "future"}}}},
		{"welcome with presence", Frame{Welcome: &Welcome{Version: Version, LSN: 7, Capabilities: []string{CapPresence},
			Presence: &PresenceLimits{MaxBytes: 1024, TimeoutMs: 30000, IntervalMs: 100, Burst: 20, MaxPeers: 100, MaxKeys: 16}}}},
		{"presence_set", Frame{PresenceSet: &PresenceSet{Key: "tab-1", State: []byte(`{"name":"Ada","editing":"item-3"}`)}}},
		{"presence_set withdraw", Frame{PresenceSet: &PresenceSet{Key: "tab-1"}}},
		{"presence_set default key", Frame{PresenceSet: &PresenceSet{State: []byte(`{}`)}}},
		{"presence", Frame{Presence: &Presence{Peers: []Peer{
			{ID: "c7/tab-1", ClientID: "client-2", State: []byte(`{"name":"Bob"}`)},
			{ID: "c9/", ClientID: "client-3", ReadOnly: true, State: []byte(`null`)},
		}, Gone: []string{"c3/x"}}}},
		{"presence full empty", Frame{Presence: &Presence{Full: true}}},
		{"presence_refused", Frame{PresenceRefused: &PresenceRefused{Key: "tab-1", Code: PresenceTooLarge, Reason: "state is 2000 bytes, limit 1024"}}},
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawEncode encodes f without validating it.
func rawEncode(t testing.TB, f Frame) []byte {
	t.Helper()
	b, err := encMode.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range validFrames() {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.f) {
				t.Fatalf("got %+v, want %+v", got, tt.f)
			}
			if got, want := got.Kind(), strings.Fields(tt.name)[0]; got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
			b2, err := Encode(got)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := hex.EncodeToString(b2), hex.EncodeToString(b); got != want {
				t.Fatalf("re-encoding: got %v, want %v", got, want)
			}
		})
	}
}

// TestWireFormat pins the integer keys documented in docs/protocol.md.
func TestWireFormat(t *testing.T) {
	tests := []struct {
		name string
		f    Frame
		hex  string
	}{
		{"hello", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", LSN: 2, Token: "t"}},
			"a1 01 a5 01 01 02 61 64 03 61 63 04 02 05 61 74"},
		{"page request", Frame{PageRequest: &PageRequest{ID: 1, LSN: 2, Pages: []uint32{3}}},
			"a1 0a a3 01 01 02 02 03 81 03"},
		{"page reply", Frame{PageReply: &PageReply{ID: 1, LSN: 2, Stale: []uint32{3}}},
			"a1 0b a3 01 01 02 02 04 81 03"},
		{"hello with held", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Capabilities: []string{"lazy"}, Held: []byte{5}}},
			"a1 01 a5 01 01 02 61 64 03 61 63 07 81 64 6c 61 7a 79 09 41 05"},
		{"hello with secret", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", LSN: 2, Token: "t", Secret: "s"}},
			"a1 01 a6 01 01 02 61 64 03 61 63 04 02 05 61 74 06 61 73"},
		{"push", Frame{Push: &Push{Mutations: []Mutation{{Seq: 1, Name: "n", Args: []byte{0xff}}}}},
			"a1 02 a1 01 81 a3 01 01 02 61 6e 03 41 ff"},
		{"welcome", Frame{Welcome: &Welcome{Version: 1, LSN: 3, MutatorHash: "h"}},
			"a1 03 a3 01 01 02 03 03 61 68"},
		{"diff", Frame{Diff: &Diff{From: 1, To: 2, PageCount: 0}},
			"a1 04 a2 01 01 02 02"},
		{"rejected", Frame{Rejected: &Rejected{Seq: 5, Message: "no"}},
			"a1 05 a2 01 05 02 62 6e 6f"},
		{"close", Frame{Close: &Close{Code: "limit", Reason: "r"}},
			"a1 06 a2 01 65 6c 69 6d 69 74 02 61 72"},
		{"hello with capabilities", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Capabilities: []string{"presence"}}},
			"a1 01 a4 01 01 02 61 64 03 61 63 07 81 68 70 72 65 73 65 6e 63 65"},
		{"welcome with presence", Frame{Welcome: &Welcome{Version: 1, Capabilities: []string{"presence"},
			Presence: &PresenceLimits{MaxBytes: 1, TimeoutMs: 2, IntervalMs: 3, Burst: 4, MaxPeers: 5, MaxKeys: 6}}},
			"a1 03 a3 01 01 04 81 68 70 72 65 73 65 6e 63 65 05 a6 01 01 02 02 03 03 04 04 05 05 06 06"},
		{"presence_set", Frame{PresenceSet: &PresenceSet{Key: "k", State: []byte("1")}},
			"a1 07 a2 01 61 6b 02 41 31"},
		{"presence", Frame{Presence: &Presence{Peers: []Peer{{ID: "i", ClientID: "c", ReadOnly: true, State: []byte("1")}}, Gone: []string{"g"}, Full: true}},
			"a1 08 a3 01 81 a4 01 61 69 02 61 63 03 f5 04 41 31 02 81 61 67 03 f5"},
		{"presence_refused", Frame{PresenceRefused: &PresenceRefused{Key: "k", Code: "rate", Reason: "r"}},
			"a1 09 a3 01 61 6b 02 64 72 61 74 65 03 61 72"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := hex.EncodeToString(b), strings.ReplaceAll(tt.hex, " ", ""); got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	lim := DefaultLimits()
	tests := []struct {
		name string
		f    Frame
		want error  // sentinel Decode must return
		msg  string // substring of the Decode error
	}{
		{"no message", Frame{}, ErrBadFrame, "no message set"},
		{"two messages", Frame{Rejected: &Rejected{Seq: 1}, Close: &Close{Code: "x"}}, ErrBadFrame, "2 messages set (rejected, close)"},
		{"hello version 0", Frame{Hello: &Hello{DocID: "d", ClientID: "c"}}, ErrBadFrame, "hello: version is 0"},
		{"hello no doc id", Frame{Hello: &Hello{Version: 1, ClientID: "c"}}, ErrBadFrame, "hello: doc id is empty"},
		{"hello no client id", Frame{Hello: &Hello{Version: 1, DocID: "d"}}, ErrBadFrame, "hello: client id is empty"},
		{"hello long doc id", Frame{Hello: &Hello{Version: 1, DocID: long(lim.MaxDocIDBytes + 1), ClientID: "c"}}, ErrTooLarge, "hello: doc id is 129 bytes, limit 128"},
		{"hello long client id", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: long(lim.MaxDocIDBytes + 1)}}, ErrTooLarge, "client id is 129 bytes"},
		{"hello long secret", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Secret: long(lim.MaxDocIDBytes + 1)}}, ErrTooLarge, "secret is 129 bytes"},
		{"hello long token", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Token: long(lim.MaxTokenBytes + 1)}}, ErrTooLarge, "token is 8193 bytes"},
		{"push empty", Frame{Push: &Push{}}, ErrBadFrame, "push: no mutations"},
		{"push seq 0", Frame{Push: &Push{Mutations: []Mutation{{Seq: 0, Name: "m"}}}}, ErrBadFrame, "push: mutation 0: seq is 0"},
		{"push seq not increasing", Frame{Push: &Push{Mutations: []Mutation{{Seq: 7, Name: "m"}, {Seq: 5, Name: "m"}}}}, ErrBadFrame, "push: mutation 1: seq 5 not after 7"},
		{"push seq repeated", Frame{Push: &Push{Mutations: []Mutation{{Seq: 7, Name: "m"}, {Seq: 7, Name: "m"}}}}, ErrBadFrame, "seq 7 not after 7"},
		{"push no name", Frame{Push: &Push{Mutations: []Mutation{{Seq: 1}}}}, ErrBadFrame, "push: mutation 0: name is empty"},
		{"push long name", Frame{Push: &Push{Mutations: []Mutation{{Seq: 1, Name: long(lim.MaxNameBytes + 1)}}}}, ErrTooLarge, "name is 129 bytes"},
		{"push long args", Frame{Push: &Push{Mutations: []Mutation{{Seq: 1, Name: "m", Args: make([]byte, lim.MaxArgsBytes+1)}}}}, ErrTooLarge, "args are 65537 bytes"},
		{"push too many", Frame{Push: &Push{Mutations: func() []Mutation {
			ms := make([]Mutation, lim.MaxMutationsPerPush+1)
			for i := range ms {
				ms[i] = Mutation{Seq: uint64(i + 1), Name: "m"}
			}
			return ms
		}()}}, ErrTooLarge, "push: 1001 mutations, limit 1000"},
		{"welcome version 0", Frame{Welcome: &Welcome{LSN: 1}}, ErrBadFrame, "welcome: version is 0"},
		{"welcome long hash", Frame{Welcome: &Welcome{Version: 1, MutatorHash: long(lim.MaxNameBytes + 1)}}, ErrTooLarge, "mutator hash is 129 bytes"},
		{"diff to equals from", Frame{Diff: &Diff{From: 3, To: 3}}, ErrBadFrame, "diff: to 3 not after from 3"},
		{"diff to before from", Frame{Diff: &Diff{From: 3, To: 2}}, ErrBadFrame, "diff: to 2 not after from 3"},
		{"diff page 0", Frame{Diff: &Diff{To: 1, PageCount: 2, Pages: []Page{{No: 0, Data: page(0)}}}}, ErrBadFrame, "diff: page index 0: number 0 not in 1..2"},
		{"diff page past count", Frame{Diff: &Diff{To: 1, PageCount: 2, Pages: []Page{{No: 3, Data: page(0)}}}}, ErrBadFrame, "number 3 not in 1..2"},
		{"diff pages unordered", Frame{Diff: &Diff{To: 1, PageCount: 3, Pages: []Page{{No: 2, Data: page(0)}, {No: 1, Data: page(0)}}}}, ErrBadFrame, "diff: page index 1: number 1 not after 2"},
		{"diff pages repeated", Frame{Diff: &Diff{To: 1, PageCount: 3, Pages: []Page{{No: 2, Data: page(0)}, {No: 2, Data: page(0)}}}}, ErrBadFrame, "number 2 not after 2"},
		{"diff short page", Frame{Diff: &Diff{To: 1, PageCount: 1, Pages: []Page{{No: 1, Data: make([]byte, 100)}}}}, ErrBadFrame, "data is 100 bytes, want 4096"},
		{"diff long page", Frame{Diff: &Diff{To: 1, PageCount: 1, Pages: []Page{{No: 1, Data: make([]byte, PageSize+1)}}}}, ErrBadFrame, "data is 4097 bytes"},
		{"diff empty page", Frame{Diff: &Diff{To: 1, PageCount: 1, Pages: []Page{{No: 1}}}}, ErrBadFrame, "data is 0 bytes"},
		{"stream since before from", Frame{Diff: &Diff{From: 5, More: true, Stream: &Stream{Since: 4, Begin: 6}}}, ErrBadFrame, "diff: stream pass from 4 to 6, diff from 5"},
		{"stream begin before since", Frame{Diff: &Diff{From: 5, More: true, Stream: &Stream{Since: 6, Begin: 5}}}, ErrBadFrame, "stream pass from 6 to 5"},
		{"stream frame with to", Frame{Diff: &Diff{To: 3, PageCount: 1, More: true, Stream: &Stream{Begin: 2}}}, ErrBadFrame, "stream frame before the last names to 3 and 1 pages"},
		{"stream ends before its pass", Frame{Diff: &Diff{To: 1, Stream: &Stream{Begin: 2}}}, ErrBadFrame, "stream ends at 1, pass began at 2"},
		{"stream ends at from", Frame{Diff: &Diff{From: 2, To: 2, Stream: &Stream{Since: 2, Begin: 2}}}, ErrBadFrame, "stream ends at 2"},
		{"stream page not after", Frame{Diff: &Diff{More: true, Stream: &Stream{Begin: 1, After: 5}, Pages: []Page{{No: 5, Data: page(0)}}}}, ErrBadFrame, "page index 0: number 5 not after 5"},
		{"stream delta", Frame{Diff: &Diff{More: true, Stream: &Stream{Begin: 1}, Pages: []Page{{No: 1, Data: page(0), Delta: true}}}}, ErrBadFrame, "a delta in a stream"},
		{"stream last page past count", Frame{Diff: &Diff{To: 2, PageCount: 1, Stream: &Stream{Begin: 2}, Pages: []Page{{No: 2, Data: page(0)}}}}, ErrBadFrame, "number 2 not in 1..1"},
		{"stream short page", Frame{Diff: &Diff{More: true, Stream: &Stream{Begin: 1}, Pages: []Page{{No: 1, Data: make([]byte, 10)}}}}, ErrBadFrame, "data is 10 bytes"},
		{"hello resume before its LSN", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", LSN: 5, Resume: &Stream{Since: 4, Begin: 6}}}, ErrBadFrame, "resume of a pass from 4 to 6, replica at 5"},
		{"rejected seq 0", Frame{Rejected: &Rejected{Message: "m"}}, ErrBadFrame, "rejected: seq is 0"},
		{"rejected long message", Frame{Rejected: &Rejected{Seq: 1, Message: long(lim.MaxMessageBytes + 1)}}, ErrTooLarge, "message is 4097 bytes"},
		{"close no code", Frame{Close: &Close{Reason: "r"}}, ErrBadFrame, "close: code is empty"},
		{"close long code", Frame{Close: &Close{Code: long(lim.MaxNameBytes + 1)}}, ErrTooLarge, "code is 129 bytes"},
		{"close long reason", Frame{Close: &Close{Code: CodeInternal, Reason: long(lim.MaxMessageBytes + 1)}}, ErrTooLarge, "reason is 4097 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(rawEncode(t, tt.f), lim)
			if got, want := errors.Is(err, tt.want), true; got != want {
				t.Fatalf("Decode: errors.Is(%v, %v) = %v, want %v", err, tt.want, got, want)
			}
			if got, want := errors.Is(err, ErrBadFrame) && errors.Is(err, ErrTooLarge), false; got != want {
				t.Fatalf("Decode: %v wraps both sentinels", err)
			}
			if !strings.HasPrefix(err.Error(), "decode frame: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Decode: got %q, want it to contain %q", err, tt.msg)
			}
			// Encode enforces the field rules but not the limits.
			_, err = Encode(tt.f)
			if tt.want == ErrTooLarge {
				if err != nil {
					t.Fatalf("Encode: got %v, want nil", err)
				}
				return
			}
			if got, want := errors.Is(err, ErrBadFrame), true; got != want {
				t.Fatalf("Encode: errors.Is(%v, ErrBadFrame) = %v, want %v", err, got, want)
			}
			if !strings.HasPrefix(err.Error(), "encode frame: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Encode: got %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	f := Frame{Push: &Push{Mutations: []Mutation{
		{Seq: 1, Name: "a"}, {Seq: 6, Name: "a"}, {Seq: 7, Name: "a"}, {Seq: 5, Name: "a"},
	}}}
	_, err := Decode(rawEncode(t, f), DefaultLimits())
	if got, want := err.Error(), "decode frame: push: mutation 3: seq 5 not after 7"; got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestEncodeInvalidUTF8(t *testing.T) {
	tests := []struct {
		name string
		f    Frame
	}{
		{"doc id", Frame{Hello: &Hello{Version: 1, DocID: "\xff", ClientID: "c"}}},
		{"token", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Token: "\xff"}}},
		{"secret", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Secret: "\xff"}}},
		{"mutation name", Frame{Push: &Push{Mutations: []Mutation{{Seq: 1, Name: "\xff"}}}}},
		{"close reason", Frame{Close: &Close{Code: "x", Reason: "\xc3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Encode(tt.f)
			if got, want := errors.Is(err, ErrBadFrame), true; got != want {
				t.Fatalf("errors.Is(%v, ErrBadFrame) = %v, want %v", err, got, want)
			}
		})
	}
}

// TestDecodeStrict covers malformed or non-canonical CBOR.
func TestDecodeStrict(t *testing.T) {
	small := Limits{MaxMutationsPerPush: 20, MaxPagesPerDiff: 20}
	tests := []struct {
		name string
		hex  string
		lim  Limits
		want error
	}{
		{"empty", "", Limits{}, ErrBadFrame},
		{"truncated", "a1 05 a2 01 05 02", Limits{}, ErrBadFrame},
		{"trailing bytes", "a1 05 a1 01 05 00", Limits{}, ErrBadFrame},
		{"two frames", "a1 05 a1 01 05 a1 05 a1 01 05", Limits{}, ErrBadFrame},
		{"null", "f6", Limits{}, ErrBadFrame},
		{"not a map", "80", Limits{}, ErrBadFrame},
		{"integer", "05", Limits{}, ErrBadFrame},
		{"duplicate frame key", "a2 05 a1 01 05 05 a1 01 06", Limits{}, ErrBadFrame},
		{"duplicate field key", "a1 05 a2 01 05 01 06", Limits{}, ErrBadFrame},
		{"indefinite map", "bf 05 a1 01 05 ff", Limits{}, ErrBadFrame},
		{"indefinite text", "a1 06 a1 01 7f 61 78 ff", Limits{}, ErrBadFrame},
		{"tag", "a1 05 a1 01 c2 41 05", Limits{}, ErrBadFrame},
		{"invalid utf8", "a1 06 a1 01 62 ff fe", Limits{}, ErrBadFrame},
		{"wrong type", "a1 05 a1 01 61 31", Limits{}, ErrBadFrame},
		{"negative seq", "a1 05 a1 01 20", Limits{}, ErrBadFrame},
		{"uint32 overflow", "a1 03 a1 01 1b 00 00 00 01 00 00 00 00", Limits{}, ErrBadFrame},
		{"too deep", "a1 05 a2 01 05 18 63 81 81 81 81 81 81 81 80", Limits{}, ErrBadFrame},
		{"array over limit", "a1 02 a1 01 95" + strings.Repeat(" a0", 21), small, ErrTooLarge},
		{"map over limit", "a1 05 b8 21 01 05" + func() string {
			var s strings.Builder
			for k := 0x20; k < 0x40; k++ { // 32 unknown keys
				s.WriteString(" 18 " + hex.EncodeToString([]byte{byte(k)}) + " 00")
			}
			return s.String()
		}(), Limits{}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode(mustHex(t, tt.hex), tt.lim)
			if got, want := errors.Is(err, tt.want), true; got != want {
				t.Fatalf("errors.Is(%v, %v) = %v, want %v (frame %+v)", err, tt.want, got, want, f)
			}
		})
	}
}

func TestDecodeIgnoresUnknownKeys(t *testing.T) {
	tests := []decodeCase{
		// Frame key 99 holding a map, beside Rejected{Seq: 5}.
		{"frame key", "a2 05 a1 01 05 18 63 a1 01 02", Frame{Rejected: &Rejected{Seq: 5}}},
		// Rejected with unknown key 9 and text key "x".
		{"message keys", "a1 05 a3 01 05 09 82 01 02 61 78 f5", Frame{Rejected: &Rejected{Seq: 5}}},
		// Rejected with text key "1", which is not the field key 1.
		{"text key", "a1 05 a2 01 05 61 31 06", Frame{Rejected: &Rejected{Seq: 5}}},
	}
	checkDecodes(t, tests)
}

func TestDecodeNormalizesEmpty(t *testing.T) {
	// Push{[{Seq: 1, Name: "m", Args: h''}]} and Diff{From: 0, To: 1, Pages: []}.
	tests := []decodeCase{
		{"empty args", "a1 02 a1 01 81 a3 01 01 02 61 6d 03 40", Frame{Push: &Push{Mutations: []Mutation{{Seq: 1, Name: "m"}}}}},
		{"null args", "a1 02 a1 01 81 a3 01 01 02 61 6d 03 f6", Frame{Push: &Push{Mutations: []Mutation{{Seq: 1, Name: "m"}}}}},
		{"empty pages", "a1 04 a3 01 00 02 01 04 80", Frame{Diff: &Diff{To: 1}}},
	}
	checkDecodes(t, tests)
}

func TestFrameTooLarge(t *testing.T) {
	tests := []struct {
		name string
		size int
		lim  Limits
	}{
		{"custom limit", 101, Limits{MaxFrameBytes: 100}},
		{"default limit", DefaultLimits().MaxFrameBytes + 1, Limits{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// 0xff is a CBOR "break" byte: the frame would fail to decode, so
			// ErrTooLarge proves the size is checked first.
			b := bytes.Repeat([]byte{0xff}, tt.size)
			_, err := Decode(b, tt.lim)
			if got, want := errors.Is(err, ErrTooLarge), true; got != want {
				t.Fatalf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, want)
			}
			if got, want := errors.Is(err, ErrBadFrame), false; got != want {
				t.Fatalf("errors.Is(%v, ErrBadFrame) = %v, want %v", err, got, want)
			}
		})
	}
	t.Run("at limit", func(t *testing.T) {
		b, err := Encode(Frame{Rejected: &Rejected{Seq: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(b, Limits{MaxFrameBytes: len(b)}); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
	})
}

func TestLimitsDefaults(t *testing.T) {
	if got, want := (Limits{}).WithDefaults(), DefaultLimits(); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	custom := Limits{MaxFrameBytes: 1, MaxMutationsPerPush: 2, MaxArgsBytes: 3, MaxNameBytes: 4,
		MaxPagesPerDiff: 5, MaxDocIDBytes: 6, MaxTokenBytes: 7, MaxMessageBytes: 8, MaxPresenceBytes: 9, MaxPresencePeers: 10}
	if got, want := custom.WithDefaults(), custom; got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestKind(t *testing.T) {
	tests := []struct {
		f    Frame
		want string
	}{
		{Frame{}, "empty"},
		{Frame{Hello: &Hello{}}, "hello"},
		{Frame{Push: &Push{}}, "push"},
		{Frame{Welcome: &Welcome{}}, "welcome"},
		{Frame{Diff: &Diff{}}, "diff"},
		{Frame{Rejected: &Rejected{}}, "rejected"},
		{Frame{Close: &Close{}}, "close"},
		{Frame{PresenceSet: &PresenceSet{}}, "presence_set"},
		{Frame{Presence: &Presence{}}, "presence"},
		{Frame{PresenceRefused: &PresenceRefused{}}, "presence_refused"},
		{Frame{Hello: &Hello{}, Close: &Close{}}, "multiple"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got, want := tt.f.Kind(), tt.want; got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// decodeCase is a frame's bytes (hex) and what they must decode to.
type decodeCase struct {
	name string
	hex  string
	want Frame
}

// checkDecodes decodes each case with the default limits and compares.
func checkDecodes(t *testing.T, tests []decodeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(mustHex(t, tt.hex), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestStreamFrames checks that streamed diff frames that keep the rules
// decode: pages in a frame before the last need no page count, and a pass
// may start over from page 1.
func TestStreamFrames(t *testing.T) {
	for _, f := range []Frame{
		{Diff: &Diff{From: 2, More: true, Stream: &Stream{Since: 2, Begin: 9, Pages: 3}, Pages: []Page{{No: 7, Data: page(1)}, {No: 900, Data: page(2)}}}},
		{Diff: &Diff{From: 2, More: true, Stream: &Stream{Since: 9, Begin: 11, Pages: 1}, Pages: []Page{{No: 1, Data: page(1)}}}},
		{Diff: &Diff{From: 2, To: 11, PageCount: 900, Stream: &Stream{Since: 9, Begin: 11, After: 1}}},
		{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", LSN: 2, Capabilities: []string{CapStream}, Resume: &Stream{Since: 2, Begin: 9, After: 900}}},
	} {
		got, err := Decode(rawEncode(t, f), DefaultLimits())
		if err != nil {
			t.Fatalf("%s frame: %v", f.Kind(), err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("round trip: got %+v, want %+v", got, f)
		}
	}
}
