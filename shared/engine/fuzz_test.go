package engine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// diffFixture is a coordinator with some history: a replica starts at LSN
// l1 with two pending mutations; real is the true diff from l1 to l2, which
// applies the first of them.
type diffFixture struct {
	coord   *engine.Coordinator
	l1, l2  uint64
	base    engine.Diff // from 0 to l1
	real    engine.Diff // from l1 to l2
	pending []engine.Mutation
	want    []byte // the coordinator's bytes at l2
}

const fuzzClient = "fuzzer"

func newDiffFixture(tb testing.TB) *diffFixture {
	tb.Helper()
	ctx := context.Background()
	coord, err := engine.OpenCoordinator(ctx, memstore.New(), testmutator.Mutator{}, engine.CoordinatorOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { coord.Close() })
	fx := &diffFixture{coord: coord}
	add := func(client string, seq uint64, id string) engine.Mutation {
		return engine.Mutation{ClientID: client, Seq: seq, Name: "add", Args: testmutator.Args{ID: id, Title: "title of " + id}.Encode()}
	}
	var batch []engine.Mutation
	for i := range 40 {
		batch = append(batch, add("a", uint64(i+1), fmt.Sprintf("a%d", i)))
	}
	if _, err := coord.Apply(ctx, batch); err != nil {
		tb.Fatal(err)
	}
	fx.l1 = coord.LSN()
	if fx.base, err = coord.Diff(0); err != nil {
		tb.Fatal(err)
	}
	fx.pending = []engine.Mutation{add(fuzzClient, 1, "f1"), add(fuzzClient, 2, "f2")}
	batch = []engine.Mutation{
		add("b", 1, "b0"),
		fx.pending[0],
		{ClientID: "a", Seq: 41, Name: "toggle", Args: testmutator.Args{ID: "a3"}.Encode()},
		{ClientID: "a", Seq: 42, Name: "rename", Args: testmutator.Args{ID: "a7", Title: "renamed"}.Encode()},
	}
	if _, err := coord.Apply(ctx, batch); err != nil {
		tb.Fatal(err)
	}
	fx.l2 = coord.LSN()
	if fx.real, err = coord.Diff(fx.l1); err != nil {
		tb.Fatal(err)
	}
	if fx.want, err = coord.Database().Bytes(); err != nil {
		tb.Fatal(err)
	}
	return fx
}

// replica opens a fresh replica at l1 with the fixture's pending mutations.
func (fx *diffFixture) replica(tb testing.TB) *engine.Client {
	tb.Helper()
	store := memstore.New()
	if err := store.Apply(fx.base.Commit); err != nil {
		tb.Fatal(err)
	}
	log := pendinglog.NewMemory(fuzzClient)
	for _, m := range fx.pending {
		log.Append(m)
	}
	c, err := engine.OpenClient(context.Background(), store, log, testmutator.Mutator{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// replicaState is what an invalid diff must leave untouched.
type replicaState struct {
	Bytes   []byte
	LSN     uint64
	Pending []engine.Mutation
	Rows    engine.Rows // what queries see, pending mutations included
}

func stateOf(tb testing.TB, c *engine.Client) replicaState {
	tb.Helper()
	b, err := c.Database().Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	rows, err := c.Query(`SELECT id, title, done FROM items ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	return replicaState{Bytes: b, LSN: c.LSN(), Pending: c.Pending(), Rows: rows}
}

// fuzzBytes reads numbers from fuzz input, then zeros once it runs out.
type fuzzBytes struct{ b []byte }

func (r *fuzzBytes) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzBytes) fill(p []byte) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	clear(p[n:])
}

func (r *fuzzBytes) u16() uint16 {
	var b [2]byte
	r.fill(b[:])
	return binary.LittleEndian.Uint16(b[:])
}
func (r *fuzzBytes) u32() uint32 {
	var b [4]byte
	r.fill(b[:])
	return binary.LittleEndian.Uint32(b[:])
}
func (r *fuzzBytes) u64() uint64 {
	var b [8]byte
	r.fill(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// allRealPages, as a page count byte, stands for the real diff's pages.
const allRealPages = 255

// decodeDiffs turns fuzz input into diffs for a replica at fx.l1: each
// field is either taken from the real diff or the fixture, or drawn from the
// input, so that inputs reach both well-formed diffs with garbage pages and
// malformed ones (bad LSNs, page numbers, sizes and counts).
func (fx *diffFixture) decodeDiffs(in []byte) []engine.Diff {
	r := &fuzzBytes{b: in}
	var out []engine.Diff
	for range 1 + int(r.byte()%3) {
		var d engine.Diff
		switch r.byte() % 4 {
		case 0:
			d.From = fx.l1
		case 1:
			d.From = fx.l1 - 1
		case 2:
			d.From = fx.l1 + 1
		default:
			d.From = r.u64()
		}
		switch r.byte() % 4 {
		case 0:
			d.LSN = fx.l2
		case 1:
			d.LSN = fx.l1
		case 2:
			d.LSN = d.From + 1
		default:
			d.LSN = r.u64()
		}
		switch r.byte() % 4 {
		case 0:
			d.PageCount = fx.real.PageCount
		case 1:
			d.PageCount = fx.base.PageCount
		case 2:
			d.PageCount = fx.base.PageCount + uint32(r.byte())
		default:
			d.PageCount = r.u32()
		}
		n := int(r.byte())
		if n == allRealPages {
			for _, p := range fx.real.Pages {
				d.Pages = append(d.Pages, vfs.Page{No: p.No, Data: bytes.Clone(p.Data)})
			}
			out = append(out, d)
			continue
		}
		for i := range n % 8 {
			var p vfs.Page
			switch r.byte() % 4 {
			case 0:
				p.No = uint32(i + 1)
				if i < len(fx.real.Pages) {
					p.No = fx.real.Pages[i].No
				}
			case 1:
				p.No = uint32(r.byte())
			case 2:
				p.No = r.u32()
			default:
				p.No = d.PageCount - uint32(i)
			}
			switch r.byte() % 4 {
			case 0, 1: // the coordinator's page, perhaps with bytes flipped
				p.Data = make([]byte, vfs.PageSize)
				if off := int(p.No-1) * vfs.PageSize; p.No > 0 && off+vfs.PageSize <= len(fx.want) {
					copy(p.Data, fx.want[off:])
				}
				for range r.byte() % 8 {
					p.Data[int(r.u16())%vfs.PageSize] ^= r.byte()
				}
			case 2: // garbage
				p.Data = make([]byte, vfs.PageSize)
				r.fill(p.Data)
			default: // any size
				p.Data = make([]byte, int(r.u16())%(2*vfs.PageSize+2))
				r.fill(p.Data)
			}
			d.Pages = append(d.Pages, p)
		}
		out = append(out, d)
	}
	return out
}

// FuzzApplyDiff applies fuzzed diffs to a replica with pending mutations.
// It must never panic or hang. A diff the replica refuses as malformed
// (ErrDiffGap, vfs.ErrBadCommit) must leave it exactly as it was: same
// snapshot bytes, LSN, pending log and query results; and the real diff
// must still apply after it. A well-formed diff with garbage pages may
// fail (SQLite reports corruption) but must not crash.
func FuzzApplyDiff(f *testing.F) {
	fx := newDiffFixture(f)
	for _, seed := range [][]byte{
		{0, 0, 0, 0, allRealPages},                           // the real diff
		{1, 0, 0, 0, allRealPages, 1, 0, 0, 0, allRealPages}, // the real diff twice
		{0, 2, 0, 0, allRealPages},                           // starts after the replica: a gap
		{0, 1, 1, 1, 0},                                      // already applied
		{0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0},              // page count 2^32-1, no pages
		{0, 0, 0, 2, 200, 0},                                 // grows 200 pages, sends none
		{0, 0, 0, 0, 1, 1, 0, 0},                             // page 0
		{0, 0, 0, 0, 1, 2, 0xff, 0xff, 0xff, 0x7f, 0},        // page beyond the count
		{0, 0, 0, 0, 2, 0, 0, 0, 0},                          // the same page twice
		{0, 0, 0, 0, 1, 0, 3, 0x10, 0},                       // a short page
		{0, 0, 0, 0, 1, 0, 3, 0x01, 0x10},                    // a long page
		{0, 0, 0, 0, 3, 0, 1, 5, 0x18, 0, 0x55, 0x20, 0, 0xaa, 0x30, 0, 1, 0, 0, 1, 2, 0}, // flipped bytes
		{0, 0, 0, 0, 1, 0, 2, 'g', 'a', 'r', 'b', 'a', 'g', 'e'},                          // garbage page
		{0, 0, 0, 1, 1, 1, 1, 2}, // garbage page 1
		{0, 3, 3, 3, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0}, // zeros everywhere
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		diffs := fx.decodeDiffs(in)
		c := fx.replica(t)
		before := stateOf(t, c)
		err := c.Rebase(context.Background(), diffs...)
		if err == nil {
			// Applied, or nothing new. Whatever the pages hold, the
			// replica must answer without crashing.
			c.Query(`PRAGMA integrity_check`)
			c.Query(`SELECT * FROM items`)
			c.Mutate(context.Background(), "add", testmutator.Args{ID: "later", Title: "later"}.Encode())
			if len(diffs) == 1 && reflect.DeepEqual(diffs[0].Commit, fx.real.Commit) && diffs[0].From == fx.real.From {
				if got, _ := c.Database().Bytes(); !bytes.Equal(got, fx.want) {
					t.Fatal("the real diff did not bring the replica to the coordinator's bytes")
				}
			}
			return
		}
		if !errors.Is(err, engine.ErrDiffGap) && !errors.Is(err, vfs.ErrBadCommit) {
			return // e.g. corruption found while replaying: allowed
		}
		after := stateOf(t, c)
		if !bytes.Equal(after.Bytes, before.Bytes) || after.LSN != before.LSN {
			t.Fatalf("refused diff (%v) changed the snapshot: LSN %d -> %d", err, before.LSN, after.LSN)
		}
		if !reflect.DeepEqual(after.Pending, before.Pending) {
			t.Fatalf("refused diff (%v) changed the pending log: %v -> %v", err, before.Pending, after.Pending)
		}
		if !reflect.DeepEqual(after.Rows, before.Rows) {
			t.Fatalf("refused diff (%v) changed what queries see: %d rows -> %d rows", err, len(before.Rows.Values), len(after.Rows.Values))
		}
		if err := c.Rebase(context.Background(), fx.real); err != nil {
			t.Fatalf("the real diff after a refused one: %v", err)
		}
		if got, _ := c.Database().Bytes(); !bytes.Equal(got, fx.want) {
			t.Fatal("after a refused diff, the real diff did not bring the replica to the coordinator's bytes")
		}
		if got, want := len(c.Pending()), 1; got != want {
			t.Fatalf("pending after the real diff: got %v, want %v", got, want)
		}
	})
}
