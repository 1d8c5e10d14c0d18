// Package syncwire turns the engine's diffs into protocol frames and back:
// it splits a large diff over several frames, sends pages the receiver
// already has a copy of as XOR deltas, and on the receiving side reassembles
// the frames and resolves the deltas. Both the coordinator's connections
// and the clients use it, and so does the simulation.
package syncwire

import (
	"errors"
	"fmt"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// PagesPerFrame bounds the pages in one Diff frame.
const PagesPerFrame = 1024

// Frames returns d as Diff frames of at most perFrame pages, the last with
// More unset. Pages with a known base go as deltas.
func Frames(d engine.Diff, perFrame int) []*protocol.Diff {
	var out []*protocol.Diff
	pages := d.Pages
	for first := true; first || len(pages) > 0; first = false {
		n := min(len(pages), perFrame)
		f := &protocol.Diff{From: d.From, To: d.LSN, PageCount: d.PageCount, More: n < len(pages)}
		f.Pages = make([]protocol.Page, n)
		for i, p := range pages[:n] {
			f.Pages[i] = protocol.Page{No: p.No, Data: p.Data}
			if base := d.Bases[p.No]; base != nil {
				f.Pages[i] = protocol.Page{No: p.No, Data: xor(p.Data, base), Delta: true}
			}
		}
		pages = pages[n:]
		out = append(out, f)
	}
	return out
}

func xor(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range out {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// ErrBadDiff reports diff frames that do not fit together.
var ErrBadDiff = errors.New("bad diff frames")

// Assembler rebuilds diffs from frames on the receiving side. It resolves a
// delta page against the receiver's copy: the page in the diffs assembled
// but not yet taken, else Base.
type Assembler struct {
	// Base reads the receiver's copy of page no (its snapshot) into buf.
	Base func(no uint32, buf []byte) error
	// BaseCount returns the receiver's page count.
	BaseCount func() uint32

	partial *engine.Diff
	ready   []engine.Diff
	pages   map[uint32][]byte // pages of the ready diffs, newest last
	floor   uint32            // lowest page count among the ready diffs
}

// Add takes one frame. Complete diffs wait in the assembler until Take.
func (a *Assembler) Add(f *protocol.Diff) error {
	if a.partial != nil && (a.partial.From != f.From || a.partial.LSN != f.To) {
		return fmt.Errorf("%w: frame %d..%d inside diff %d..%d", ErrBadDiff, f.From, f.To, a.partial.From, a.partial.LSN)
	}
	if a.partial == nil {
		a.partial = &engine.Diff{From: f.From, Commit: vfs.Commit{LSN: f.To}}
	}
	p := a.partial
	p.PageCount = f.PageCount
	for _, pg := range f.Pages {
		if n := len(p.Pages); n > 0 && p.Pages[n-1].No >= pg.No {
			return fmt.Errorf("%w: page %d after page %d", ErrBadDiff, pg.No, p.Pages[n-1].No)
		}
		data := pg.Data
		if pg.Delta {
			base, err := a.base(pg.No)
			if err != nil {
				return err
			}
			data = xor(pg.Data, base)
		}
		p.Pages = append(p.Pages, vfs.Page{No: pg.No, Data: data})
	}
	if f.More {
		return nil
	}
	a.partial = nil
	if a.pages == nil {
		a.pages, a.floor = map[uint32][]byte{}, a.BaseCount()
	}
	a.floor = min(a.floor, p.PageCount)
	for no := range a.pages {
		if no > p.PageCount {
			delete(a.pages, no)
		}
	}
	for _, pg := range p.Pages {
		a.pages[pg.No] = pg.Data
	}
	a.ready = append(a.ready, *p)
	return nil
}

func (a *Assembler) base(no uint32) ([]byte, error) {
	if p, ok := a.pages[no]; ok {
		return p, nil
	}
	buf := make([]byte, vfs.PageSize)
	if a.pages != nil && no > a.floor {
		return buf, nil // cut off by a ready diff: zeros
	}
	if no > a.BaseCount() {
		return buf, nil
	}
	if err := a.Base(no, buf); err != nil {
		return nil, fmt.Errorf("read base of page %d: %w", no, err)
	}
	return buf, nil
}

// Pending reports whether a diff is partly received.
func (a *Assembler) Pending() bool { return a.partial != nil }

// Take returns the complete diffs received since the last Take. The caller
// must apply them to the receiver before adding more frames.
func (a *Assembler) Take() []engine.Diff {
	out := a.ready
	a.ready, a.pages = nil, nil
	return out
}
