package filestore

import (
	"iter"
	"maps"
	"slices"
)

// stageChunk is the number of pages in one chunk of a stageIndex.
const stageChunk = 512

// stageIndex maps each staged page to the log offset of its newest staged
// copy. It keeps offsets in chunks of stageChunk pages, a chunk made when
// one of its pages is first staged: a download stages pages densely, so
// this costs about 8 bytes a page (a map of pages cost some 35, 9 MiB at
// 1 GiB), and a chunk's 4 KiB never outweighs the one page on disk that
// made it.
type stageIndex struct {
	chunks map[uint32]*[stageChunk]int64 // by (no-1)/stageChunk; 0: not staged
	n      int                           // distinct pages staged
}

func newStageIndex() *stageIndex {
	return &stageIndex{chunks: map[uint32]*[stageChunk]int64{}}
}

// set records off (> 0) as page no's newest staged copy.
func (x *stageIndex) set(no uint32, off int64) {
	k, i := (no-1)/stageChunk, (no-1)%stageChunk
	c := x.chunks[k]
	if c == nil {
		c = new([stageChunk]int64)
		x.chunks[k] = c
	}
	if c[i] == 0 {
		x.n++
	}
	c[i] = off
}

// all yields every staged page and its offset, in ascending page order.
func (x *stageIndex) all() iter.Seq2[uint32, int64] {
	return func(yield func(uint32, int64) bool) {
		if x == nil {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(x.chunks)) {
			for i, off := range x.chunks[k] {
				if off != 0 && !yield(k*stageChunk+uint32(i)+1, off) {
					return
				}
			}
		}
	}
}

// pages yields every staged page, in ascending order, each once.
func (x *stageIndex) pages() iter.Seq[uint32] {
	return func(yield func(uint32) bool) {
		for no := range x.all() {
			if !yield(no) {
				return
			}
		}
	}
}

// len returns the number of distinct pages staged.
func (x *stageIndex) len() int {
	if x == nil {
		return 0
	}
	return x.n
}
