package syncwire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

func TestDeltasAndChunks(t *testing.T) {
	store := memstore.New()
	old := storetest.Page(2, 'a')
	if err := store.Apply(vfs.Commit{LSN: 1, PageCount: 3, Pages: []vfs.Page{storetest.Page(1, 'a'), old}}); err != nil {
		t.Fatal(err)
	}
	newer := bytes.Clone(old.Data)
	copy(newer[100:], "a small change")
	d := engine.Diff{From: 1, Commit: vfs.Commit{LSN: 2, PageCount: 4, Pages: []vfs.Page{
		storetest.Page(1, 'b'), {No: 2, Data: newer}, storetest.Page(3, 'b'), storetest.Page(4, 'b'),
	}}, Bases: map[uint32][]byte{2: old.Data}}
	frames := syncwire.Frames(d, 3)
	if len(frames) != 2 || !frames[0].More || frames[1].More {
		t.Fatalf("4 pages at 3 per frame: got %d frames", len(frames))
	}
	if !frames[0].Pages[1].Delta {
		t.Fatal("page 2 has a base but was not sent as a delta")
	}
	if n := bytes.Count(frames[0].Pages[1].Data, []byte{0}); n < vfs.PageSize-20 {
		t.Fatalf("the delta of a 14-byte change has only %d zero bytes", n)
	}
	a := &syncwire.Assembler{Base: store.ReadPage, BaseCount: store.PageCount}
	for i, f := range frames {
		if err := a.Add(f); err != nil {
			t.Fatal(err)
		}
		if got, want := a.Pending(), i == 0; got != want {
			t.Fatalf("after frame %d: Pending = %v, want %v", i, got, want)
		}
	}
	got := a.Take()
	if len(got) != 1 || len(got[0].Pages) != 4 {
		t.Fatalf("assembled %d diffs", len(got))
	}
	for i, p := range got[0].Pages {
		if !bytes.Equal(p.Data, d.Pages[i].Data) {
			t.Fatalf("page %d differs after reassembly", p.No)
		}
	}
}

func TestMismatchedFrames(t *testing.T) {
	store := memstore.New()
	a := &syncwire.Assembler{Base: store.ReadPage, BaseCount: store.PageCount}
	if err := a.Add(&protocol.Diff{From: 0, To: 2, PageCount: 1, More: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(&protocol.Diff{From: 0, To: 3, PageCount: 1}); !errors.Is(err, syncwire.ErrBadDiff) {
		t.Fatalf("a frame of another diff: %v, want ErrBadDiff", err)
	}
}
