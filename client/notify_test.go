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
