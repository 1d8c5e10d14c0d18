// Package storestate is the in-memory state every page store keeps, and the
// rules that change it: which commits may follow, and which pages a commit
// changes. A store persists pages and holds a State; it asks the State what
// a commit changes before persisting it, and applies that change once it is
// durable.
package storestate

import (
	"fmt"
	"iter"
	"slices"
	"sync"

	"github.com/sqlsync-go/sqlsync/vfs/internal/pageindex"
)

// State is a store's LSN, page count, lowest page count since the last
// ResetLowWater, and the LSN at which each page last changed.
// The zero value is an empty store at LSN 0. It is not safe for concurrent
// use: the store guards it.
type State struct {
	lsn   uint64
	count uint32
	low   uint32
	index pageindex.Index
}

// Load returns the state of a store at lsn with count pages, where page i+1
// last changed at lsns[i] (len(lsns) == count).
func Load(lsn uint64, count uint32, lsns []uint64) State {
	return State{lsn: lsn, count: count, low: count, index: *pageindex.Build(lsns)}
}

// LSN returns the LSN of the last applied commit.
func (s *State) LSN() uint64 { return s.lsn }

// PageCount returns the number of pages.
func (s *State) PageCount() uint32 { return s.count }

// PageLSN returns the LSN at which page no last changed, or 0.
func (s *State) PageLSN(no uint32) uint64 { return s.index.LSN(no) }

// ChangedSince returns, ascending, the pages (at or below PageCount) whose
// newest version was written after lsn.
func (s *State) ChangedSince(lsn uint64) []uint32 { return s.index.ChangedSince(lsn) }

// Snapshot returns the LSN of every page 1..PageCount, for persisting.
func (s *State) Snapshot() []uint64 { return s.index.Snapshot(s.count) }

// Forget drops the per-page LSNs, keeping the LSN and the page count: for a
// closed store, whose ChangedSince then lists nothing.
func (s *State) Forget() { s.index = pageindex.Index{} }

// LowWater returns the lowest page count since Load or the last
// ResetLowWater: pages above it were dropped on the way.
func (s *State) LowWater() uint32 { return s.low }

// ResetLowWater makes the current page count the low water mark.
func (s *State) ResetLowWater() { s.low = s.count }

// ReadLocked returns f() with mu held for reading: a store's LSN and
// PageCount read its State this way under the lock that guards it.
func ReadLocked[T any](mu *sync.RWMutex, f func() T) T {
	mu.RLock()
	defer mu.RUnlock()
	return f()
}

// Check reports whether a commit to lsn with count pages that writes pages
// nos may follow the state: see the package function Check.
func (s *State) Check(lsn uint64, count uint32, nos []uint32) error {
	return Check(s.lsn, lsn, count, nos)
}

// Check reports whether a commit to lsn with count pages that writes pages
// nos may follow a store at after: the LSN must grow, and the page numbers
// must be ascending, unique and within 1..count. The error says why, without
// a sentinel: callers wrap it in theirs.
func Check(after, lsn uint64, count uint32, nos []uint32) error {
	if lsn <= after {
		return fmt.Errorf("LSN %d does not follow %d", lsn, after)
	}
	var prev uint32
	for _, no := range nos {
		switch {
		case no == 0 || no > count:
			return fmt.Errorf("page %d outside 1..%d", no, count)
		case no <= prev:
			return fmt.Errorf("page %d out of order", no)
		}
		prev = no
	}
	return nil
}

// Change is what one commit does to a State, worked out by State.Change
// before the store persists the commit.
type Change struct {
	LSN       uint64
	OldCount  uint32 // the page count before the commit
	PageCount uint32 // the page count after it
	// Changed lists, ascending, the pages that change at LSN: the pages the
	// commit writes, and every page that comes into being as the file grows
	// (OldCount+1..PageCount), written or not. Grown pages read as zeros
	// unless written, and count as changed so that a replica that missed
	// an earlier shrink gets them.
	Changed []uint32
}

// Grown returns, ascending, the pages that come into being with the change:
// OldCount+1..PageCount.
func (c Change) Grown() iter.Seq[uint32] {
	return func(yield func(uint32) bool) {
		for no := c.OldCount + 1; no <= c.PageCount; no++ {
			if !yield(no) {
				return
			}
		}
	}
}

// Dropped returns, ascending, the pages the change drops: PageCount+1..OldCount.
func (c Change) Dropped() iter.Seq[uint32] {
	return func(yield func(uint32) bool) {
		for no := c.PageCount + 1; no <= c.OldCount; no++ {
			if !yield(no) {
				return
			}
		}
	}
}

// Shrinks reports whether the change drops pages.
func (c Change) Shrinks() bool { return c.PageCount < c.OldCount }

// Change returns what a commit to lsn with count pages that writes pages nos
// (ascending, as Check requires) does to the state, without applying it.
func (s *State) Change(lsn uint64, count uint32, nos []uint32) Change {
	c := Change{LSN: lsn, OldCount: s.count, PageCount: count}
	for _, no := range nos {
		if no > s.count {
			break // grown: listed below
		}
		c.Changed = append(c.Changed, no)
	}
	c.Changed = slices.AppendSeq(c.Changed, c.Grown())
	return c
}

// PageLSNAfter returns the LSN at which page no will have last changed once
// c is applied, or 0 if c drops it.
func (s *State) PageLSNAfter(c Change, no uint32) uint64 {
	if no == 0 || no > c.PageCount {
		return 0
	}
	if _, ok := slices.BinarySearch(c.Changed, no); ok {
		return c.LSN
	}
	return s.index.LSN(no)
}

// Apply applies c, which State.Change returned for this state: the LSN and
// the page count move on, the pages above a smaller count are dropped and
// every page in c.Changed last changed at c.LSN.
func (s *State) Apply(c Change) {
	if c.OldCount != s.count || c.LSN <= s.lsn {
		panic(fmt.Sprintf("storestate: change from %d pages to LSN %d applied to %d pages at LSN %d", c.OldCount, c.LSN, s.count, s.lsn))
	}
	if c.Shrinks() {
		s.index.Truncate(c.PageCount)
	}
	for _, no := range c.Changed {
		s.index.Touch(no, c.LSN)
	}
	s.lsn, s.count = c.LSN, c.PageCount
	s.low = min(s.low, c.PageCount)
}
