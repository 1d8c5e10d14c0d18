package bridge

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

// A preloaded store meets the store contract, reopened over the same
// durable store too.
func TestPreloadContract(t *testing.T) {
	var inner *keepOpen
	preload := func(t *testing.T) vfs.Store {
		s, err := Preload(inner)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, func(t *testing.T) vfs.Store {
		inner = &keepOpen{Store: memstore.New()}
		return preload(t)
	}, preload)
}

// Reads never reach the underlying store once it is preloaded.
func TestPreloadReadsFromMemory(t *testing.T) {
	inner := &countReads{Store: memstore.New()}
	inner.Apply(vfs.Commit{LSN: 1, PageCount: 2, Pages: []vfs.Page{storetest.Page(1, 'a'), storetest.Page(2, 'b')}})
	p, err := Preload(inner)
	if err != nil {
		t.Fatal(err)
	}
	before := inner.reads
	buf := make([]byte, vfs.PageSize)
	for range 3 {
		p.ReadPage(1, buf)
		p.ReadPage(2, buf)
	}
	if err := p.Apply(vfs.Commit{LSN: 2, PageCount: 3, Pages: []vfs.Page{storetest.Page(3, 'c')}}); err != nil {
		t.Fatal(err)
	}
	p.ReadPage(3, buf)
	if string(buf) != string(storetest.Page(3, 'c').Data) {
		t.Fatal("page 3 not read back")
	}
	if inner.reads != before {
		t.Fatalf("%d reads reached the store after the preload", inner.reads-before)
	}
}

type countReads struct {
	vfs.Store
	reads int
}

func (c *countReads) ReadPage(no uint32, buf []byte) error {
	c.reads++
	return c.Store.ReadPage(no, buf)
}

// A document opened with a module runs it through ModuleRuntime, over a
// preloaded store when it has one of its own (IndexedDB), and closes it.
func TestModuleRuntime(t *testing.T) {
	var got Config
	mut := &closingMutator{}
	ModuleRuntime = func(_ context.Context, cfg Config, _ *slog.Logger) (engine.Mutator, error) {
		got = cfg
		return mut, nil
	}
	defer func() { ModuleRuntime = nil }()
	store := &countReads{Store: memstore.New()}
	cfg := Config{DocID: "d", Module: []byte("\x00asm"), MutatorHash: "abc"}
	d, err := Open(context.Background(), cfg, State{Store: store, Log: pendinglog.NewMemory("c"), Kind: "indexeddb"}, nil, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Module) != "\x00asm" || got.MutatorHash != "abc" {
		t.Fatalf("runtime got %+v", got)
	}
	if _, err := d.Mutate(context.Background(), "add", []byte(`{"id":"1","title":"a"}`)); err != nil {
		t.Fatal(err)
	}
	reads := store.reads
	if _, err := d.Query(context.Background(), `SELECT count(*) FROM items`, nil); err != nil {
		t.Fatal(err)
	}
	if store.reads != reads {
		t.Error("reads reached the IndexedDB store")
	}
	d.Close()
	if !mut.closed {
		t.Error("the mutator was not closed with the document")
	}

	ModuleRuntime = nil
	if _, err := Open(context.Background(), cfg, State{}, nil, func([]byte) {}); err == nil || !strings.Contains(err.Error(), "cannot run WebAssembly mutator modules") {
		t.Fatalf("without a runtime: %v", err)
	}
}

type closingMutator struct {
	testmutator.Mutator
	closed bool
}

func (m *closingMutator) Close() error { m.closed = true; return nil }
