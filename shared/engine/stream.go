package engine

import (
	"fmt"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// StreamPos is where a streamed diff stands: in the pass that sends the
// pages changed after Since, begun when the document was at Begin, after
// page After (see protocol.Stream).
type StreamPos struct {
	Since, Begin uint64
	After        uint32
}

// StreamFrame is one piece of a streamed diff.
type StreamFrame struct {
	StreamPos
	// PassPages is the number of pages the whole pass sends.
	PassPages uint32
	// Pages are the pass's next pages, ascending, each read as it goes
	// out. They are valid only until send returns.
	Pages []vfs.Page
	// Last marks the stream's last frame, with the LSN and page count the
	// stream brings its receiver to.
	Last      bool
	LSN       uint64
	PageCount uint32
}

// StreamDiff sends the fast-forward diff from LSN from to the newest LSN as
// frames of at most perFrame pages, reading each page out of store just
// before its frame goes out, so that memory stays within one frame however
// large the diff. It returns the LSN the diff brings its receiver to.
//
// It reads as DiffFrom does, in passes, while commits go on; but each pass
// is sent as it is read, so a page may go out once per pass (see
// protocol.Stream). With resume it goes on with a stream a receiver staged
// in part, if resume fits the store (else it starts anew: the first frame
// says which).
//
// send must not keep a frame's pages after it returns; an error from send
// ends the stream with that error.
func StreamDiff(store vfs.Store, from uint64, resume *StreamPos, perFrame int, send func(StreamFrame) error) (uint64, error) {
	if perFrame <= 0 {
		return from, fmt.Errorf("stream diff from %d: %d pages per frame", from, perFrame)
	}
	lsn := store.LSN()
	if from > lsn {
		return from, fmt.Errorf("stream diff from %d: %w: the document is at %d", from, ErrFuture, lsn)
	}
	pos := StreamPos{Since: from, Begin: lsn}
	if r := resume; r != nil && from <= r.Since && r.Since <= r.Begin && r.Begin <= lsn {
		pos = *r
	}
	buf := make([]byte, perFrame*vfs.PageSize)
	pages := make([]vfs.Page, 0, perFrame)
	cr, _ := store.(vfs.ChangeReader)
	for pass := 0; ; pass++ {
		// The pass's pages: read as they go out, or, once commits have
		// kept coming for diffPasses passes, read now with them held off
		// (a few commits' worth): that pass is the last.
		var nos []uint32
		var held *vfs.Commit
		if cr != nil && pass >= diffPasses {
			c, err := cr.ReadChanged(pos.Since)
			if err != nil {
				return from, fmt.Errorf("stream diff from %d: %w", from, err)
			}
			held, pos.Begin, nos = &c, c.LSN, c.PageNumbers()
		} else {
			nos = store.ChangedSince(pos.Since)
		}
		passPages := uint32(len(nos))
		skip := 0
		for skip < len(nos) && nos[skip] <= pos.After {
			skip++
		}
		for first := true; first || skip < len(nos); first = false {
			n := min(len(nos)-skip, perFrame)
			pages = pages[:0]
			for i, no := range nos[skip : skip+n] {
				data := buf[i*vfs.PageSize : (i+1)*vfs.PageSize]
				if held != nil {
					copy(data, held.Pages[skip+i].Data)
				} else if err := store.ReadPage(no, data); err != nil {
					return from, fmt.Errorf("stream diff from %d: %w", from, err)
				}
				pages = append(pages, vfs.Page{No: no, Data: data})
			}
			f := StreamFrame{StreamPos: pos, PassPages: passPages, Pages: pages}
			switch {
			case skip+n < len(nos):
			case held != nil:
				f.Last, f.LSN, f.PageCount = true, held.LSN, held.PageCount
			default:
				// The pass's last frame: the stream's last if the document
				// held still while the pass read.
				count := store.PageCount()
				if store.LSN() == pos.Begin {
					f.Last, f.LSN, f.PageCount = true, pos.Begin, count
					for len(f.Pages) > 0 && f.Pages[len(f.Pages)-1].No > count {
						f.Pages = f.Pages[:len(f.Pages)-1] // cut by a commit after their read
					}
				}
			}
			if err := send(f); err != nil {
				return from, err
			}
			if n > 0 {
				pos.After = nos[skip+n-1]
			}
			skip += n
			if f.Last {
				return f.LSN, nil
			}
		}
		pos = StreamPos{Since: pos.Begin, Begin: store.LSN()}
	}
}

// Stream sends the fast-forward diff from LSN from to the newest LSN with
// StreamDiff, reading the coordinator's store.
func (c *Coordinator) Stream(from uint64, resume *StreamPos, perFrame int, send func(StreamFrame) error) (uint64, error) {
	return StreamDiff(c.db.Store(), from, resume, perFrame, send)
}

// Changed returns the number of pages changed after LSN from: what a diff
// from there carries.
func (c *Coordinator) Changed(from uint64) int {
	return len(c.db.Store().ChangedSince(from))
}
