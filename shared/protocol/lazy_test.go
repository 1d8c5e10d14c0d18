package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestPageFrames(t *testing.T) {
	page := func(no uint32) Page { return Page{No: no, Data: make([]byte, PageSize)} }
	valid := []Frame{
		{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Capabilities: []string{CapLazy}, Held: HeldBitmap([]uint32{1, 9, 300})}},
		{PageRequest: &PageRequest{ID: 1, LSN: 7, Pages: []uint32{2, 3, 90}}},
		{PageReply: &PageReply{ID: 1, LSN: 9, Pages: []Page{page(2), page(90)}, Stale: []uint32{3}}},
	}
	for _, f := range valid {
		b, err := Encode(f)
		if err != nil {
			t.Fatalf("Encode %s: %v", f.Kind(), err)
		}
		got, err := Decode(b, Limits{})
		if err != nil {
			t.Fatalf("Decode %s: %v", f.Kind(), err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("%s round trip: got %+v, want %+v", f.Kind(), got, f)
		}
	}
	many := make([]uint32, MaxPagesPerRequest+1)
	for i := range many {
		many[i] = uint32(i + 1)
	}
	tests := []struct {
		name string
		f    Frame
		want error
		msg  string
	}{
		{"held without lazy", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Held: []byte{1}}}, ErrBadFrame, "held pages without the lazy capability"},
		{"held too large", Frame{Hello: &Hello{Version: 1, DocID: "d", ClientID: "c", Capabilities: []string{CapLazy}, Held: make([]byte, MaxHeldBytes+1)}}, ErrTooLarge, "held bitmap is 1048577 bytes"},
		{"request no id", Frame{PageRequest: &PageRequest{Pages: []uint32{1}}}, ErrBadFrame, "page_request: id is 0"},
		{"request no pages", Frame{PageRequest: &PageRequest{ID: 1}}, ErrBadFrame, "page_request: no pages"},
		{"request page 0", Frame{PageRequest: &PageRequest{ID: 1, Pages: []uint32{0}}}, ErrBadFrame, "number 0 not after 0"},
		{"request unsorted", Frame{PageRequest: &PageRequest{ID: 1, Pages: []uint32{5, 5}}}, ErrBadFrame, "page index 1: number 5 not after 5"},
		{"request too many", Frame{PageRequest: &PageRequest{ID: 1, Pages: many}}, ErrTooLarge, "257 pages, limit 256"},
		{"reply short page", Frame{PageReply: &PageReply{ID: 1, Pages: []Page{{No: 1, Data: []byte{1}}}}}, ErrBadFrame, "data is 1 bytes"},
		{"reply delta", Frame{PageReply: &PageReply{ID: 1, Pages: []Page{{No: 1, Data: make([]byte, PageSize), Delta: true}}}}, ErrBadFrame, "a delta in a page reply"},
		{"reply stale unsorted", Frame{PageReply: &PageReply{ID: 1, Stale: []uint32{4, 2}}}, ErrBadFrame, "number 2 not after 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(rawEncode(t, tt.f), DefaultLimits())
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Decode: got %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestHeldBitmap(t *testing.T) {
	nos := []uint32{1, 8, 9, 64, 65, 1000}
	b := HeldBitmap(nos)
	for no := uint32(0); no <= 1100; no++ {
		want := false
		for _, n := range nos {
			want = want || n == no
		}
		if got := HeldHas(b, no); got != want {
			t.Fatalf("HeldHas(%d) = %v, want %v", no, got, want)
		}
	}
}
