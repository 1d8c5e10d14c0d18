package client

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/hack-pad/hackpadfs/mem"

	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// TestOpenStorageOptions: Open accepts exactly one way to keep the state
// (or none, for memory) and refuses a half-set or conflicting choice with a
// message that names the options.
func TestOpenStorageOptions(t *testing.T) {
	memFS := func(t *testing.T) *mem.FS {
		fsys, err := mem.NewFS()
		if err != nil {
			t.Fatal(err)
		}
		return fsys
	}
	for _, tc := range []struct {
		name    string
		set     func(t *testing.T, o *Options)
		wantErr string // "" if Open must succeed
	}{
		{"memory", func(t *testing.T, o *Options) {}, ""},
		{"StateDir", func(t *testing.T, o *Options) { o.StateDir = t.TempDir() }, ""},
		{"FS", func(t *testing.T, o *Options) { o.FS = memFS(t) }, ""},
		{"Store and PendingLog", func(t *testing.T, o *Options) {
			o.Store, o.PendingLog = memstore.New(), pendinglog.NewMemory("c")
		}, ""},
		{"Store alone", func(t *testing.T, o *Options) { o.Store = memstore.New() },
			"Store and PendingLog go together: set both or neither (or, with Lazy, PendingLog alone)"},
		{"PendingLog alone", func(t *testing.T, o *Options) { o.PendingLog = pendinglog.NewMemory("c") },
			"Store and PendingLog go together: set both or neither (or, with Lazy, PendingLog alone)"},
		{"Store alone with StateDir", func(t *testing.T, o *Options) {
			o.Store, o.StateDir = memstore.New(), t.TempDir()
		}, "Store and PendingLog go together: set both or neither (or, with Lazy, PendingLog alone)"},
		{"Lazy with PendingLog alone", func(t *testing.T, o *Options) {
			o.Lazy, o.PendingLog = true, pendinglog.NewMemory("c")
		}, ""},
		{"Lazy in memory", func(t *testing.T, o *Options) { o.Lazy = true }, ""},
		{"Lazy with StateDir", func(t *testing.T, o *Options) { o.Lazy, o.StateDir = true, t.TempDir() }, ""},
		{"Lazy with Store", func(t *testing.T, o *Options) {
			o.Lazy, o.Store, o.PendingLog = true, memstore.New(), pendinglog.NewMemory("c")
		}, "Lazy keeps the snapshot in its own cache: it excludes Store (a PendingLog alone keeps the pending mutations)"},
		{"Lazy with PendingLog and StateDir", func(t *testing.T, o *Options) {
			o.Lazy, o.PendingLog, o.StateDir = true, pendinglog.NewMemory("c"), t.TempDir()
		}, "PendingLog replaces StateDir and FS: set one way to keep the state"},
		{"negative CacheBytes", func(t *testing.T, o *Options) { o.Lazy, o.CacheBytes = true, -1 }, "CacheBytes is negative"},
		{"StateDir and FS", func(t *testing.T, o *Options) {
			o.StateDir, o.FS = t.TempDir(), memFS(t)
		}, "StateDir and FS are alternatives: set one"},
		{"Store and PendingLog with StateDir", func(t *testing.T, o *Options) {
			o.Store, o.PendingLog, o.StateDir = memstore.New(), pendinglog.NewMemory("c"), t.TempDir()
		}, "Store and PendingLog replace StateDir and FS: set one way to keep the state"},
		{"Store and PendingLog with FS", func(t *testing.T, o *Options) {
			o.Store, o.PendingLog, o.FS = memstore.New(), pendinglog.NewMemory("c"), memFS(t)
		}, "Store and PendingLog replace StateDir and FS: set one way to keep the state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{DocID: "doc", Mutator: testmutator.Mutator{}}
			tc.set(t, &opts)
			d, err := Open(context.Background(), opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if err := d.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				return
			}
			if err == nil {
				d.Close()
				t.Fatalf("Open succeeded, want error %q", tc.wantErr)
			}
			if got, want := err.Error(), "open document doc: "+tc.wantErr; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			// Open took nothing over: a Store it refused is still open.
			if opts.Store != nil {
				if err := opts.Store.ReadPage(1, make([]byte, vfs.PageSize)); err != nil {
					t.Fatalf("Store after the refused Open: %v", err)
				}
			}
		})
	}
}

// TestOpenURLsWithoutURL: alternate coordinators without the first one is
// a mistake Open names.
func TestOpenURLsWithoutURL(t *testing.T) {
	_, err := Open(context.Background(), Options{DocID: "d", Mutator: testmutator.Mutator{}, URLs: []string{"ws://127.0.0.1:1/v1/sync"}})
	if err == nil || !strings.Contains(err.Error(), "URLs without URL") {
		t.Fatalf("Open: %v, want URLs without URL", err)
	}
}

// TestOpenWatch: Options.Watch is installed by Open itself, and hears the
// replica's events like a watcher installed after it.
func TestOpenWatch(t *testing.T) {
	var mu sync.Mutex
	var got []Event
	d, err := Open(context.Background(), Options{DocID: "w", Mutator: testmutator.Mutator{},
		Watch: func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, e)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Mutate(context.Background(), "add", testmutator.Args{ID: "a", Title: "a"}.Encode()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range got {
		if e.Status != nil && e.Status.Pending == 1 {
			return
		}
	}
	t.Fatalf("Watch heard %+v, want a status event with one pending mutation", got)
}
