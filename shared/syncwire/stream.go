package syncwire

import (
	"encoding/binary"
	"fmt"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// StreamPagesPerFrame bounds the pages in one frame of a streamed diff: a
// frame is staged with one durable write on the receiver, and a download
// that breaks resumes after its last staged frame.
const StreamPagesPerFrame = 256

// StreamMinPages is the size, in pages changed, from which a coordinator
// streams a diff to a receiver that can take one; smaller diffs go whole.
const StreamMinPages = 2 * PagesPerFrame

// StreamFrame returns the protocol frame of f, a frame of the streamed
// diff from LSN from. Its pages share f's bytes: encode it before f's
// send returns.
func StreamFrame(from uint64, f engine.StreamFrame) *protocol.Diff {
	d := &protocol.Diff{From: from, More: !f.Last, Stream: &protocol.Stream{Since: f.Since, Begin: f.Begin, After: f.After, Pages: f.PassPages}}
	if f.Last {
		d.To, d.PageCount = f.LSN, f.PageCount
	}
	d.Pages = make([]protocol.Page, len(f.Pages))
	for i, p := range f.Pages {
		d.Pages[i] = protocol.Page{No: p.No, Data: p.Data}
	}
	return d
}

// Progress is how far a streamed download has come.
type Progress struct {
	// Pages is the number of pages received so far; Total is the number
	// the stream sends as far as known (a later pass may add a few).
	Pages, Total uint64
}

// Bytes returns the page bytes received so far and in all.
func (p Progress) Bytes() (done, total uint64) {
	return p.Pages * vfs.PageSize, p.Total * vfs.PageSize
}

// StreamReceiver stages the frames of streamed diffs into a store (see
// protocol.Stream), durably, and hands back the commit that makes a stream
// visible once its last frame arrives. Its state lives in the store's
// stage, so a receiver made after a crash or a broken connection resumes.
type StreamReceiver struct {
	store vfs.Stager
	lsn   func() uint64 // the receiver's LSN
	cur   *streamCursor // nil: no stream staged
}

// streamCursor is the receiver's position, kept with each staged frame.
type streamCursor struct {
	from, since, begin uint64
	after              uint32
	pages, total       uint64
}

const cursorVersion = 1
const cursorSize = 1 + 8*5 + 4

// progress returns how far the stream at c has come.
func (c streamCursor) progress() Progress {
	return Progress{Pages: c.pages, Total: max(c.total, c.pages)}
}

func (c streamCursor) encode() []byte {
	b := make([]byte, 0, cursorSize)
	b = append(b, cursorVersion)
	b = binary.LittleEndian.AppendUint64(b, c.from)
	b = binary.LittleEndian.AppendUint64(b, c.since)
	b = binary.LittleEndian.AppendUint64(b, c.begin)
	b = binary.LittleEndian.AppendUint32(b, c.after)
	b = binary.LittleEndian.AppendUint64(b, c.pages)
	b = binary.LittleEndian.AppendUint64(b, c.total)
	return b
}

func decodeCursor(b []byte) (streamCursor, bool) {
	if len(b) != cursorSize || b[0] != cursorVersion {
		return streamCursor{}, false
	}
	le := binary.LittleEndian
	return streamCursor{
		from: le.Uint64(b[1:]), since: le.Uint64(b[9:]), begin: le.Uint64(b[17:]),
		after: le.Uint32(b[25:]), pages: le.Uint64(b[29:]), total: le.Uint64(b[37:]),
	}, true
}

// NewStreamReceiver returns a receiver staging into store, whose LSN lsn
// returns. A stage left in store by an earlier receiver carries on if it
// starts at the store's LSN; any other is dropped.
func NewStreamReceiver(store vfs.Stager, lsn func() uint64) (*StreamReceiver, error) {
	r := &StreamReceiver{store: store, lsn: lsn}
	raw, _, ok := store.Staged()
	if !ok {
		return r, nil
	}
	if c, ok := decodeCursor(raw); ok && c.from == lsn() {
		r.cur = &c
		return r, nil
	}
	if err := store.DropStaged(); err != nil {
		return nil, fmt.Errorf("drop a stale stage: %w", err)
	}
	return r, nil
}

// Resume returns what a Hello names to resume the staged stream, or nil.
func (r *StreamReceiver) Resume() *protocol.Stream {
	if r.cur == nil || r.cur.from != r.lsn() {
		return nil
	}
	return &protocol.Stream{Since: r.cur.since, Begin: r.cur.begin, After: r.cur.after}
}

// Progress returns how far the staged stream has come; ok is false when
// none is staged.
func (r *StreamReceiver) Progress() (p Progress, ok bool) {
	if r.cur == nil {
		return Progress{}, false
	}
	return r.cur.progress(), true
}

// Add stages frame f, a frame of a streamed diff (f.Stream set), and
// returns how far the stream has come with it. For the stream's last frame
// it returns the commit to hand to the store's CommitStaged (through the
// replica's engine), which ends the stream.
func (r *StreamReceiver) Add(f *protocol.Diff) (last *vfs.Commit, p Progress, err error) {
	s := f.Stream
	if s == nil {
		return nil, p, fmt.Errorf("%w: diff %d..%d is not streamed", ErrBadDiff, f.From, f.To)
	}
	next, err := r.follow(f, s)
	if err != nil {
		return nil, p, err
	}
	pages := make([]vfs.Page, len(f.Pages))
	for i, p := range f.Pages {
		pages[i] = vfs.Page{No: p.No, Data: p.Data}
		next.after = p.No
	}
	next.pages += uint64(len(pages))
	p = next.progress()
	if !f.More {
		// The last frame's pages go with the commit: one durable write.
		r.cur = nil
		return &vfs.Commit{LSN: f.To, PageCount: f.PageCount, Pages: pages}, p, nil
	}
	if err := r.store.Stage(next.encode(), pages); err != nil {
		r.cur = nil // the stage holds what it held; a new receiver reads it
		return nil, p, fmt.Errorf("stage diff frame: %w", err)
	}
	r.cur = &next
	return nil, p, nil
}

// Drop empties the stage: the next stream starts anew.
func (r *StreamReceiver) Drop() error {
	r.cur = nil
	if err := r.store.DropStaged(); err != nil {
		return fmt.Errorf("drop the stage: %w", err)
	}
	return nil
}

// follow checks that f goes on from the staged stream (or starts one) and
// returns the cursor before f's pages.
func (r *StreamReceiver) follow(f *protocol.Diff, s *protocol.Stream) (streamCursor, error) {
	c := r.cur
	switch {
	case c != nil && f.From == c.from && s.Since == c.since && s.Begin == c.begin && s.After == c.after:
		return *c, nil // the pass goes on
	case c != nil && f.From == c.from && s.Since == c.begin && s.After == 0:
		// A later pass: it sends again what changed since the last began.
		n := *c
		n.since, n.begin, n.after, n.total = s.Since, s.Begin, 0, n.pages+uint64(s.Pages)
		return n, nil
	case s.Since == f.From && s.After == 0 && f.From == r.lsn():
		// A new stream: whatever was staged is of no use now.
		if c != nil {
			if err := r.store.DropStaged(); err != nil {
				return streamCursor{}, fmt.Errorf("drop the stage of an abandoned stream: %w", err)
			}
			r.cur = nil
		}
		return streamCursor{from: f.From, since: s.Since, begin: s.Begin, total: uint64(s.Pages)}, nil
	}
	return streamCursor{}, fmt.Errorf("%w: stream frame (from %d, pass %d..%d after page %d) does not follow the stream staged", ErrBadDiff, f.From, s.Since, s.Begin, s.After)
}
