package protocol

import (
	"reflect"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, tt := range validFrames() {
		b, err := Encode(tt.f)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "00", "f6", "80", "a0", "ff", "bf ff",
		"a1 05 a2 01 05 02",                            // truncated
		"a2 05 a1 01 05 05 a1 01 06",                   // duplicate key
		"a1 05 a1 01 c2 41 05",                         // tag
		"a1 02 a1 01 81 a3 01 01 02 61 6d 03 40",       // empty args
		"a1 04 a3 01 00 02 01 04 80",                   // empty pages
		"a2 05 a1 01 05 18 63 a1 01 02",                // unknown key
		"a1 05 a2 01 05 18 63 81 81 81 81 81 81 81 80", // too deep
	} {
		f.Add(mustHex(f, s))
	}
	lim := Limits{MaxFrameBytes: 1 << 20, MaxMutationsPerPush: 64, MaxPagesPerDiff: 64}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b, lim)
		if err != nil {
			return
		}
		checkRoundTrip(t, b, fr, lim)
	})
}

// checkRoundTrip fails t unless fr, decoded from b, encodes to no more
// bytes than b and decodes back to itself.
func checkRoundTrip(t *testing.T, b []byte, fr Frame, lim Limits) {
	t.Helper()
	b2, err := Encode(fr)
	if err != nil {
		t.Fatalf("Encode of decoded %+v: %v", fr, err)
	}
	if len(b2) > len(b) {
		t.Fatalf("re-encoding is %d bytes, longer than the %d-byte input", len(b2), len(b))
	}
	fr2, err := Decode(b2, lim)
	if err != nil {
		t.Fatalf("Decode of re-encoding %x: %v", b2, err)
	}
	if !reflect.DeepEqual(fr2, fr) {
		t.Fatalf("round trip: got %+v, want %+v", fr2, fr)
	}
}
