package filestore

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestStageIndex checks the chunked index against a map: the newest offset
// of each page, every page once, in ascending order.
func TestStageIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := newStageIndex()
	want := map[uint32]int64{}
	for i := range 5000 {
		no := uint32(1 + r.IntN(3*stageChunk))
		if i%100 == 0 {
			no = 1 + r.Uint32N(1<<31) // far apart: a chunk of its own
		}
		off := int64(100 + i)
		x.set(no, off)
		want[no] = off
	}
	if x.len() != len(want) {
		t.Fatalf("len %d, want %d", x.len(), len(want))
	}
	var got []uint32
	for no, off := range x.all() {
		if want[no] != off {
			t.Fatalf("page %d at %d, want %d", no, off, want[no])
		}
		got = append(got, no)
	}
	if !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
		t.Fatal("pages not each once in ascending order")
	}
	if n := len(slices.Collect((*stageIndex)(nil).pages())); n != 0 {
		t.Fatalf("a nil index yields %d pages", n)
	}
}
