package jetstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore/jetstoretest"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

// embedded starts a single JetStream node in this process.
func embedded(t *testing.T) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	js := jetstoretest.Start(t)
	st, err := EnsureStream(context.Background(), js, "SQLSYNC", 1)
	if err != nil {
		t.Fatal(err)
	}
	return js, st
}

func open(t *testing.T, js jetstream.JetStream, st jetstream.Stream, doc string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), js, st, doc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestContract runs the vfs.Store contract, with commits in one message
// and with every commit split into parts of at most two pages.
func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{{"whole", Options{}}, {"parts", Options{MaxPartBytes: headerSize + 2*pageEntry}}} {
		t.Run(tc.name, func(t *testing.T) {
			js, st := embedded(t)
			var n int
			var doc string
			reopen := func(t *testing.T) vfs.Store { return open(t, js, st, doc, tc.opts) }
			storetest.Run(t, func(t *testing.T) vfs.Store {
				n++
				doc = fmt.Sprintf("doc.%d", n) // a '.' in the ID, as IDs may have
				return reopen(t)
			}, reopen)
		})
	}
}

// TestFence: two stores of one document (an owner and one that took over
// from it); once the second has written, the first's next commit is refused
// with ErrFenced, and so is every one after it, and the stream holds only
// the second's. A store opened afterwards follows the new owner.
func TestFence(t *testing.T) {
	js, st := embedded(t)
	old := open(t, js, st, "d", Options{})
	if err := old.Apply(vfs.Commit{LSN: 1, PageCount: 1, Pages: []vfs.Page{storetest.Page(1, 'a')}}); err != nil {
		t.Fatal(err)
	}
	next := open(t, js, st, "d", Options{})
	if err := next.Apply(vfs.Commit{LSN: 2, PageCount: 1, Pages: []vfs.Page{storetest.Page(1, 'b')}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		err := old.Apply(vfs.Commit{LSN: 2, PageCount: 1, Pages: []vfs.Page{storetest.Page(1, 'x')}})
		if !errors.Is(err, ErrFenced) {
			t.Fatalf("the deposed store's commit: %v, want ErrFenced", err)
		}
	}
	if old.LSN() != 1 {
		t.Fatalf("a fenced commit moved the store to LSN %d", old.LSN())
	}
	after := open(t, js, st, "d", Options{})
	buf := make([]byte, vfs.PageSize)
	if err := after.ReadPage(1, buf); err != nil {
		t.Fatal(err)
	}
	if after.LSN() != 2 || string(buf) != string(storetest.Page(1, 'b').Data) {
		t.Fatalf("reopened at LSN %d with page 1 %q..., want LSN 2 and the new owner's page", after.LSN(), buf[:4])
	}
}

// TestTornCommit: a commit cut short between its parts (the owner died, or
// a publish failed) never counts: a reopen sees the commit before it, and
// the same LSN written again afterwards reads whole.
func TestTornCommit(t *testing.T) {
	js, st := embedded(t)
	opts := Options{MaxPartBytes: headerSize + pageEntry}
	s := open(t, js, st, "torn", opts)
	if err := s.Apply(vfs.Commit{LSN: 1, PageCount: 2, Pages: []vfs.Page{storetest.Page(1, 'a'), storetest.Page(2, 'a')}}); err != nil {
		t.Fatal(err)
	}
	// The first of three parts of commit 2 only.
	parts, err := split(vfs.Commit{LSN: 2, PageCount: 3, Pages: []vfs.Page{storetest.Page(1, 'x'), storetest.Page(2, 'x'), storetest.Page(3, 'x')}}, opts.MaxPartBytes)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	err = s.publish(2, 0, parts[0])
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, js, st, "torn", opts)
	if s.LSN() != 1 || s.PageCount() != 2 {
		t.Fatalf("after a torn commit: LSN %d, %d pages; want 1 and 2", s.LSN(), s.PageCount())
	}
	if err := s.Apply(vfs.Commit{LSN: 2, PageCount: 2, Pages: []vfs.Page{storetest.Page(2, 'b')}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, js, st, "torn", opts)
	buf := make([]byte, vfs.PageSize)
	if err := s.ReadPage(1, buf); err != nil {
		t.Fatal(err)
	}
	if s.LSN() != 2 || s.PageCount() != 2 || string(buf) != string(storetest.Page(1, 'a').Data) {
		t.Fatalf("after the rewrite: LSN %d, %d pages, page 1 %q...", s.LSN(), s.PageCount(), buf[:4])
	}
}

// TestPartLimits: parts too small for a page are refused at Open, and a
// message that is not a part is corruption.
func TestPartLimits(t *testing.T) {
	js, st := embedded(t)
	if _, err := Open(context.Background(), js, st, "d", Options{MaxPartBytes: headerSize + 10}); err == nil {
		t.Fatal("Open with parts smaller than a page worked")
	}
	if _, err := js.Publish(context.Background(), Subject("bad"), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), js, st, "bad", Options{}); !errors.Is(err, vfs.ErrCorrupt) {
		t.Fatalf("open over a foreign message: %v, want ErrCorrupt", err)
	}
}
