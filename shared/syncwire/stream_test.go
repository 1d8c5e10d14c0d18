package syncwire_test

import (
	"bytes"
	"errors"
	"flag"
	"math/rand/v2"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

var streamSeed = flag.Uint64("stream.seed", 0, "run TestStreamedDiffs with this seed only")

// history is a document: its store, and every commit applied to it, so a
// test can rebuild its state at any LSN.
type history struct {
	store   *memstore.Store
	commits []vfs.Commit
	r       *rand.Rand
}

// commit applies a random commit: a few pages rewritten, and the page
// count grown or shrunk now and then.
func (h *history) commit(t *testing.T) {
	t.Helper()
	count := h.store.PageCount()
	next := count
	switch h.r.IntN(6) {
	case 0:
		next += uint32(1 + h.r.IntN(40))
	case 1:
		if count > 4 {
			next -= uint32(1 + h.r.IntN(min(int(count)-2, 8)))
		}
	}
	if next == 0 {
		next = 1
	}
	lsn := h.store.LSN() + 1
	set := map[uint32]bool{}
	for range 1 + h.r.IntN(6) {
		set[1+uint32(h.r.IntN(int(next)))] = true
	}
	for no := count + 1; no <= next; no++ {
		set[no] = true // a fast-forward commit carries its new pages
	}
	c := vfs.Commit{LSN: lsn, PageCount: next}
	for no := uint32(1); no <= next; no++ {
		if set[no] {
			data := make([]byte, vfs.PageSize)
			for i := range 64 {
				data[i] = byte(h.r.Uint32())
			}
			c.Pages = append(c.Pages, vfs.Page{No: no, Data: data})
		}
	}
	if err := h.store.Apply(c); err != nil {
		t.Fatal(err)
	}
	h.commits = append(h.commits, c)
}

// at returns a store holding the document at lsn.
func (h *history) at(t *testing.T, lsn uint64) *memstore.Store {
	t.Helper()
	s := memstore.New()
	for _, c := range h.commits {
		if c.LSN > lsn {
			break
		}
		if err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// wire turns a stream frame into the protocol frame a coordinator sends,
// through the codec (which copies the pages, as the receiver may keep
// them), so the receiver sees what it would on the wire.
func wire(t *testing.T, from uint64, f engine.StreamFrame) *protocol.Diff {
	t.Helper()
	b, err := protocol.Encode(protocol.Frame{Diff: syncwire.StreamFrame(from, f)})
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	back, err := protocol.Decode(b, protocol.DefaultLimits())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return back.Diff
}

func sameStores(t *testing.T, got, want vfs.Store) {
	t.Helper()
	if got.LSN() != want.LSN() || got.PageCount() != want.PageCount() {
		t.Fatalf("replica at LSN %d with %d pages, want %d and %d", got.LSN(), got.PageCount(), want.LSN(), want.PageCount())
	}
	a, b := make([]byte, vfs.PageSize), make([]byte, vfs.PageSize)
	for no := uint32(1); no <= want.PageCount(); no++ {
		got.ReadPage(no, a)
		want.ReadPage(no, b)
		if !bytes.Equal(a, b) {
			t.Fatalf("page %d differs from the document's at LSN %d", no, want.LSN())
		}
	}
}

// TestStreamedDiffs streams diffs while commits go on between frames, breaks
// some streams off and resumes them with a fresh receiver over the staged
// store, and checks every replica ends equal to the document at the LSN
// its stream named, and that a resumed stream does not start over.
func TestStreamedDiffs(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if *streamSeed != 0 {
		seeds = []uint64{*streamSeed}
	}
	for _, seed := range seeds {
		if !t.Run("", func(t *testing.T) { streamOnce(t, seed) }) {
			t.Fatalf("failed with seed %d (rerun: go test ./shared/syncwire -run TestStreamedDiffs -stream.seed %d)", seed, seed)
		}
	}
}

func streamOnce(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 99))
	doc := &history{store: memstore.New(), r: r}
	for range 20 + r.IntN(40) {
		doc.commit(t)
	}
	from := uint64(r.IntN(int(doc.store.LSN()) / 2))
	replica := doc.at(t, from)
	perFrame := 1 + r.IntN(12)
	commitEvery := r.IntN(4) // 0: the document holds still
	breakAfter := -1
	if r.IntN(2) == 0 {
		breakAfter = 1 + r.IntN(6)
	}
	recv, err := syncwire.NewStreamReceiver(replica, replica.LSN)
	if err != nil {
		t.Fatal(err)
	}
	errBreak := errors.New("connection broke")
	var resume *engine.StreamPos
	var sentBefore, sentAfter int
	for attempt := 0; ; attempt++ {
		if attempt > 1 {
			t.Fatal("a stream broke twice")
		}
		frames := 0
		var last *vfs.Commit
		to, err := engine.StreamDiff(doc.store, from, resume, perFrame, func(f engine.StreamFrame) error {
			if attempt == 0 && frames == breakAfter && !f.Last {
				return errBreak
			}
			frames++
			if attempt == 0 {
				sentBefore += len(f.Pages)
			} else {
				sentAfter += len(f.Pages)
			}
			c, _, err := recv.Add(wire(t, from, f))
			if err != nil {
				return err
			}
			last = c
			if commitEvery > 0 && frames%commitEvery == 0 {
				doc.commit(t)
			}
			return nil
		})
		if errors.Is(err, errBreak) {
			// A fresh receiver reads what the first staged.
			if recv, err = syncwire.NewStreamReceiver(replica, replica.LSN); err != nil {
				t.Fatal(err)
			}
			rs := recv.Resume()
			if rs == nil {
				t.Fatal("a broken stream left nothing to resume")
			}
			resume = &engine.StreamPos{Since: rs.Since, Begin: rs.Begin, After: rs.After}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if last == nil || last.LSN != to {
			t.Fatalf("stream to %d ended without its last frame (%v)", to, last)
		}
		if err := replica.CommitStaged(*last); err != nil {
			t.Fatal(err)
		}
		break
	}
	sameStores(t, replica, doc.at(t, replica.LSN()))
	if resume != nil && commitEvery == 0 {
		// The document held still: a resumed stream sends each page once.
		if want := len(doc.store.ChangedSince(from)); sentBefore+sentAfter != want {
			t.Fatalf("resumed stream sent %d+%d pages, want %d in all", sentBefore, sentAfter, want)
		}
	}
}

// TestStreamReceiverRefuses checks that frames out of order are refused
// and leave the stage as it was.
func TestStreamReceiverRefuses(t *testing.T) {
	replica := memstore.New()
	recv, err := syncwire.NewStreamReceiver(replica, replica.LSN)
	if err != nil {
		t.Fatal(err)
	}
	page := func(no uint32) protocol.Page { return protocol.Page{No: no, Data: make([]byte, vfs.PageSize)} }
	first := &protocol.Diff{From: 0, More: true, Stream: &protocol.Stream{Since: 0, Begin: 5, Pages: 4}, Pages: []protocol.Page{page(1), page(2)}}
	if _, p, err := recv.Add(first); err != nil || p.Pages != 2 || p.Total != 4 {
		t.Fatalf("first frame: %v, progress %+v", err, p)
	}
	bad := map[string]*protocol.Diff{
		"skips pages":      {More: true, Stream: &protocol.Stream{Since: 0, Begin: 5, After: 3}, Pages: []protocol.Page{page(4)}},
		"another pass":     {More: true, Stream: &protocol.Stream{Since: 1, Begin: 5}, Pages: []protocol.Page{page(4)}},
		"not from the LSN": {From: 3, More: true, Stream: &protocol.Stream{Since: 3, Begin: 5}},
		"not streamed":     {From: 0, To: 5},
	}
	for name, f := range bad {
		if _, _, err := recv.Add(f); !errors.Is(err, syncwire.ErrBadDiff) {
			t.Fatalf("%s: %v, want ErrBadDiff", name, err)
		}
	}
	if rs := recv.Resume(); rs == nil || rs.After != 2 || rs.Begin != 5 {
		t.Fatalf("resume after refused frames: %+v", rs)
	}
	// A new stream from the replica's LSN replaces the stage.
	fresh := &protocol.Diff{From: 0, To: 6, PageCount: 1, Stream: &protocol.Stream{Since: 0, Begin: 6, Pages: 1}, Pages: []protocol.Page{page(1)}}
	last, _, err := recv.Add(fresh)
	if err != nil || last == nil {
		t.Fatalf("fresh stream: %v", err)
	}
	if err := replica.CommitStaged(*last); err != nil {
		t.Fatal(err)
	}
	if replica.PageCount() != 1 || replica.LSN() != 6 {
		t.Fatalf("replica at %d with %d pages after the fresh stream", replica.LSN(), replica.PageCount())
	}
}

// TestStreamReceiverDrop: a stream whose last frame the store refuses is
// dropped, so that the next connection does not resume it.
func TestStreamReceiverDrop(t *testing.T) {
	replica := memstore.New()
	recv, err := syncwire.NewStreamReceiver(replica, replica.LSN)
	if err != nil {
		t.Fatal(err)
	}
	page := protocol.Page{No: 1, Data: make([]byte, vfs.PageSize)}
	if _, _, err := recv.Add(&protocol.Diff{More: true, Stream: &protocol.Stream{Begin: 5, Pages: 2}, Pages: []protocol.Page{page}}); err != nil {
		t.Fatal(err)
	}
	// The last frame claims 9 pages, of which the stream brought 1.
	last, _, err := recv.Add(&protocol.Diff{To: 5, PageCount: 9, Stream: &protocol.Stream{Begin: 5, After: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.CommitStaged(*last); !errors.Is(err, vfs.ErrBadCommit) {
		t.Fatalf("commit of a stream missing pages: %v, want ErrBadCommit", err)
	}
	if err := recv.Drop(); err != nil {
		t.Fatal(err)
	}
	again, err := syncwire.NewStreamReceiver(replica, replica.LSN)
	if err != nil {
		t.Fatal(err)
	}
	if r := again.Resume(); r != nil {
		t.Fatalf("a dropped stream resumes: %+v", r)
	}
}
