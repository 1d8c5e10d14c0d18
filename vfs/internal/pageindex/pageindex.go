// Package pageindex remembers the LSN at which each page last changed, in a
// list ordered by that LSN, so that the pages changed after any LSN are found
// in time proportional to their number.
package pageindex

import (
	"slices"
)

// Index maps page numbers to the LSN of their newest version.
// The zero value is an empty index. It is not safe for concurrent use.
type Index struct {
	lsn        []uint64 // by page number; lsn[0] unused
	prev, next []uint32 // doubly linked list by LSN, oldest first; 0 ends it
	head, tail uint32
}

// Build returns an index of pages 1..len(lsns) where page i+1 last changed at
// lsns[i].
func Build(lsns []uint64) *Index {
	x := &Index{}
	order := make([]uint32, len(lsns))
	for i := range order {
		order[i] = uint32(i + 1)
	}
	slices.SortStableFunc(order, func(a, b uint32) int {
		switch la, lb := lsns[a-1], lsns[b-1]; {
		case la < lb:
			return -1
		case la > lb:
			return 1
		}
		return 0
	})
	x.grow(uint32(len(lsns)))
	for _, no := range order {
		x.Touch(no, lsns[no-1])
	}
	return x
}

func (x *Index) grow(n uint32) {
	if int(n) < len(x.lsn) {
		return
	}
	x.lsn = slices.Grow(x.lsn, int(n)+1-len(x.lsn))[:n+1]
	x.prev = slices.Grow(x.prev, int(n)+1-len(x.prev))[:n+1]
	x.next = slices.Grow(x.next, int(n)+1-len(x.next))[:n+1]
}

func (x *Index) present(no uint32) bool {
	return int(no) < len(x.lsn) && (x.head == no || x.prev[no] != 0)
}

func (x *Index) unlink(no uint32) {
	p, n := x.prev[no], x.next[no]
	if p != 0 {
		x.next[p] = n
	} else {
		x.head = n
	}
	if n != 0 {
		x.prev[n] = p
	} else {
		x.tail = p
	}
	x.prev[no], x.next[no], x.lsn[no] = 0, 0, 0
}

// Touch records that page no changed at lsn, which must not be older than any
// LSN recorded before.
func (x *Index) Touch(no uint32, lsn uint64) {
	x.grow(no)
	if x.present(no) {
		if x.tail == no {
			x.lsn[no] = lsn
			return
		}
		x.unlink(no)
	}
	x.lsn[no] = lsn
	x.prev[no] = x.tail
	if x.tail != 0 {
		x.next[x.tail] = no
	} else {
		x.head = no
	}
	x.tail = no
}

// LSN returns the LSN at which page no last changed, or 0.
func (x *Index) LSN(no uint32) uint64 {
	if int(no) >= len(x.lsn) {
		return 0
	}
	return x.lsn[no]
}

// Truncate forgets the pages numbered above count.
func (x *Index) Truncate(count uint32) {
	for no := len(x.lsn) - 1; no > int(count); no-- {
		if x.present(uint32(no)) {
			x.unlink(uint32(no))
		}
	}
	if int(count)+1 < len(x.lsn) {
		x.lsn, x.prev, x.next = x.lsn[:count+1], x.prev[:count+1], x.next[:count+1]
	}
}

// ChangedSince returns, ascending, the pages whose newest version is newer
// than lsn.
func (x *Index) ChangedSince(lsn uint64) []uint32 {
	var out []uint32
	for no := x.tail; no != 0 && x.lsn[no] > lsn; no = x.prev[no] {
		out = append(out, no)
	}
	slices.Sort(out)
	return out
}

// Snapshot returns the LSN of every page 1..count, for persisting.
func (x *Index) Snapshot(count uint32) []uint64 {
	out := make([]uint64, count)
	for i := range out {
		out[i] = x.LSN(uint32(i + 1))
	}
	return out
}
