package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"github.com/sqlsync-go/sqlsync/vfs/pagecache"
)

type countReads struct {
	vfs.Store
	reads int
}

func (c *countReads) ReadPage(no uint32, buf []byte) error {
	c.reads++
	return c.Store.ReadPage(no, buf)
}

// A document opened with a module runs it through ModuleRuntime, over a
// page cache when it has a store of its own (IndexedDB): pages read once
// are read from memory after. It closes the module with the document.
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

// eventLoopMutator is testmutator.Mutator as a module in the browser runs:
// its calls must not wait (engine.EventLoopMutator).
type eventLoopMutator struct{ testmutator.Mutator }

func (eventLoopMutator) InEventLoop() bool { return true }

// An IndexedDB document with a module keeps only a cache of its pages in
// memory: opened over a snapshot with rows, its module's calls find the
// cache empty, fail at once on each page it lacks, and run again once the
// page is read; the rows are all there, the mutation lands, and the cache
// stays within its bound.
func TestModuleOverPageCache(t *testing.T) {
	ctx := context.Background()
	// A snapshot with a few hundred pages of items, as a coordinator
	// would have sent it.
	seed, err := Open(ctx, Config{DocID: "d", Mutator: "todo"}, State{}, nil, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if _, err := seed.Mutate(ctx, "add", []byte(fmt.Sprintf(`{"id":"%d","title":"%s"}`, i, strings.Repeat("x", 3000)))); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := memstore.New()
	// The seed replica's pages live in its local layer: commit them as
	// a coordinator would, by replaying its mutations on a coordinator.
	coord, err := engine.OpenCoordinator(ctx, snapshot, testmutator.Mutator{}, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := coord.Apply(ctx, seed.doc.Engine().Pending()); err != nil {
		t.Fatal(err)
	}
	coord.Close()
	seed.Close()

	ModuleRuntime = func(context.Context, Config, *slog.Logger) (engine.Mutator, error) { return eventLoopMutator{}, nil }
	defer func() { ModuleRuntime = nil }()
	store := &countReads{Store: snapshot}
	const cache = 64 * vfs.PageSize
	d, err := Open(ctx, Config{DocID: "d", Module: []byte("\x00asm"), CacheBytes: cache}, State{Store: store, Log: pendinglog.NewMemory("c2"), Kind: "indexeddb"}, nil, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Mutate(ctx, "add", []byte(`{"id":"new","title":"n"}`)); err != nil {
		t.Fatal(err)
	}
	rows, err := d.Query(ctx, `SELECT count(*) FROM items`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(rows) != `{"columns":["count(*)"],"rows":[[301]]}` {
		t.Fatalf("rows: %s", rows)
	}
	if _, fetched := d.doc.Engine().Reruns(); fetched == 0 {
		t.Fatal("the module's calls never ran again: they waited for IndexedDB inside the call")
	}
	st := d.doc.Engine().Database().Store().(*pagecache.Store).Stats()
	if st.CachedBytes > cache || store.reads == 0 {
		t.Fatalf("cache %+v after %d reads of the store", st, store.reads)
	}
}
