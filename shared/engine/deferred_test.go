package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// trail records, in order, what a replica did to its store and log.
type trail struct {
	mu     sync.Mutex
	events []string
}

func (t *trail) add(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, fmt.Sprintf(format, args...))
}

func (t *trail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.events, ", ")
}

// deferringStore is a memstore that can defer: it records deferred applies
// and syncs.
type deferringStore struct {
	*memstore.Store
	t *trail
}

func (s deferringStore) ApplyDeferred(c vfs.Commit) error {
	s.t.add("deferred %d", c.LSN)
	return s.Store.Apply(c)
}

func (s deferringStore) SyncApplied() error {
	s.t.add("sync")
	return nil
}

// trimLog is a memory pending log that records its trims.
type trimLog struct {
	*pendinglog.Memory
	t *trail
}

func (l trimLog) Trim(through uint64) error {
	l.t.add("trim %d", through)
	return l.Memory.Trim(through)
}

// TestRebaseShowsBeforeSync: on a store that can defer, a rebase applies the
// diff without waiting for it to be durable, tells the app, and only then
// syncs the snapshot and trims the pending log of what the diff
// acknowledged; until the sync, the log keeps them.
func TestRebaseShowsBeforeSync(t *testing.T) {
	ctx := context.Background()
	coord := openCoord(t, testmutator.Mutator{}, engine.CoordinatorOptions{})
	tr := &trail{}
	log := trimLog{pendinglog.NewMemory("r"), tr}
	c, err := engine.OpenClient(ctx, deferringStore{memstore.New(), tr}, log, testmutator.Mutator{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.OnChange(func(ch engine.Change) {
		if ch.All {
			loaded, _ := log.Load()
			tr.add("shown with %d in the log", len(loaded))
		}
	})
	for _, id := range []string{"a", "b"} {
		if _, err := c.Mutate(ctx, "add", testmutator.Args{ID: id, Title: id}.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := coord.Apply(ctx, c.Pending()); err != nil {
		t.Fatal(err)
	}
	d, err := coord.Diff(c.LSN())
	if err != nil {
		t.Fatal(err)
	}
	tr.events = nil
	if err := c.Rebase(ctx, d); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("deferred %d, shown with 2 in the log, sync, trim 2", d.LSN)
	if got := tr.String(); got != want {
		t.Fatalf("rebase did: %s\nwant: %s", got, want)
	}
	if n := c.PendingCount(); n != 0 {
		t.Fatalf("%d pending after the coordinator applied both", n)
	}
}
