package client

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// TestNotifyAfterMutate: with NotifyAfterMutate, Mutate returns while a
// subscription's callback is still busy (its re-run is not Mutate's work),
// and the subscription then sees every mutation, the ones that queued up
// meanwhile merged into one re-run.
func TestNotifyAfterMutate(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, Options{DocID: "d", Mutator: testmutator.Mutator{}, NotifyAfterMutate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	counts := make(chan int64, 16)
	release := make(chan struct{})
	first := true
	cancel := d.Subscribe(`SELECT count(*) FROM items`, nil, func(rows engine.Rows, err error) {
		if err != nil {
			t.Error(err)
			return
		}
		if !first {
			<-release // the page is slow to take the rows
		}
		first = false
		counts <- rows.Values[0][0].(int64)
	})
	defer cancel()
	if n := <-counts; n != 0 {
		t.Fatalf("first rows: %d items", n)
	}
	var pendingSeen atomic.Int64 // the newest status event's Pending
	stop := d.Watch(func(e Event) {
		if e.Status != nil {
			pendingSeen.Store(int64(e.Status.Pending))
		}
	})
	defer stop()
	returned := make(chan error, 1)
	go func() {
		for _, id := range []string{"a", "b", "c"} {
			if _, err := d.Mutate(ctx, "add", testmutator.Args{ID: id, Title: id}); err != nil {
				returned <- err
				return
			}
		}
		returned <- nil
	}()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Mutate waited for a subscription's callback")
	}
	// The status event does not wait for the re-runs: it counts the
	// mutations by the time Mutate has returned.
	if p := pendingSeen.Load(); p != 3 {
		t.Fatalf("status event after Mutate returned: %d pending, want 3", p)
	}
	close(release)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-counts:
			if n == 3 {
				return
			}
		case <-deadline:
			t.Fatal("the subscription never saw the three items")
		}
	}
}

// TestNotifyEvery: with NotifyEvery, a change after a quiet spell re-runs
// the subscriptions at once, and the changes that follow within
// NotifyEvery of that re-run wait for it to pass, merged into one re-run.
func TestNotifyEvery(t *testing.T) {
	ctx := context.Background()
	const every = 500 * time.Millisecond
	d, err := Open(ctx, Options{DocID: "d", Mutator: testmutator.Mutator{}, NotifyAfterMutate: true, NotifyEvery: every})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	type call struct {
		n  int64
		at time.Time
	}
	calls := make(chan call, 16)
	cancel := d.Subscribe(`SELECT count(*) FROM items`, nil, func(rows engine.Rows, err error) {
		if err != nil {
			t.Error(err)
			return
		}
		calls <- call{rows.Values[0][0].(int64), time.Now()}
	})
	defer cancel()
	next := func() call {
		t.Helper()
		select {
		case c := <-calls:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no re-run")
			return call{}
		}
	}
	if c := next(); c.n != 0 {
		t.Fatalf("first rows: %d items", c.n)
	}
	start := time.Now()
	if _, err := d.Mutate(ctx, "add", testmutator.Args{ID: "a", Title: "a"}); err != nil {
		t.Fatal(err)
	}
	first := next()
	if first.n != 1 {
		t.Fatalf("after one mutation: %d items", first.n)
	}
	if waited := first.at.Sub(start); waited >= every {
		t.Fatalf("the first change waited %v for its re-run: want it at once", waited)
	}
	for _, id := range []string{"b", "c", "d"} {
		if _, err := d.Mutate(ctx, "add", testmutator.Args{ID: id, Title: id}); err != nil {
			t.Fatal(err)
		}
	}
	merged := next()
	if merged.n != 4 {
		t.Fatalf("after three more mutations: %d items, want the three merged into one re-run showing 4", merged.n)
	}
	if gap := merged.at.Sub(first.at); gap < every {
		t.Fatalf("re-runs %v apart, want at least %v", gap, every)
	}
}
