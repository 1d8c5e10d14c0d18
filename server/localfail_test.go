package server

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// heldPushes is a WebSocket Dialer whose connections hold back every Push
// frame until release, so a replica can take diffs while its pending
// mutations wait.
type heldPushes struct {
	gate chan struct{}
	once sync.Once
}

func (h *heldPushes) release() { h.once.Do(func() { close(h.gate) }) }

// dial is a client.Dialer.
func (h *heldPushes) dial(ctx context.Context, url string) (client.Transport, error) {
	return servertest.Dialer{Write: func(ctx context.Context, f protocol.Frame) error {
		if f.Push == nil {
			return nil
		}
		select {
		case <-h.gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}.Dial(ctx, url)
}

// TestLocalFailureStatus: a pending mutation that another client's change
// makes fail on replay shows in Status.LocalFailed and Doc.LocalFailures,
// with a status event, while it waits for the coordinator; once the
// coordinator rejects it, the count drops to zero, with another event.
func TestLocalFailureStatus(t *testing.T) {
	ts := startServer(t, Config{})
	a := openClient(t, ts, "doc", clientOptions{})
	h := &heldPushes{gate: make(chan struct{})}
	b := openClient(t, ts, "doc", clientOptions{dial: h.dial})
	var mu sync.Mutex
	var events []client.Status
	var rejected []*engine.RejectedError
	b.Watch(func(e client.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Status != nil {
			events = append(events, *e.Status)
		}
		if e.Rejected != nil {
			rejected = append(rejected, e.Rejected)
		}
	})
	mutate(t, a, "add", testmutator.Args{ID: "x", Title: "x"})
	waitSynced(t, a)
	// b's pushes are held, so it is not synced: wait for the diff.
	waitFor(t, "b sees x", func() bool {
		return queryString(t, b, `SELECT count(*) FROM items WHERE id = 'x'`) == "[[1]]"
	})
	seq := mutate(t, b, "rename", testmutator.Args{ID: "x", Title: "renamed by b"})
	mutate(t, a, "delete", testmutator.Args{ID: "x"})
	mutate(t, a, "purge", testmutator.Args{})
	waitSynced(t, a)

	// b rebases onto the purge: its rename finds no item.
	waitFor(t, "b's rename fails locally", func() bool { return b.Status().LocalFailed == 1 })
	f := b.LocalFailures()
	if len(f) != 1 || f[0].Seq != seq || f[0].Name != "rename" || !strings.Contains(f[0].Message, "no such item") {
		t.Fatalf("local failures %+v, want rename seq %d: no such item", f, seq)
	}
	if s := b.Status(); s.Pending != 1 {
		t.Fatalf("status %+v: the failed mutation must stay pending", s)
	}
	// Status() reads the engine as it is; the event for the same change is
	// emitted just after, on the goroutine that made it: wait for it.
	waitFor(t, "a status event with LocalFailed 1", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range events {
			if s.LocalFailed == 1 {
				return true
			}
		}
		return false
	})

	h.release()
	waitConverged(t, ts, "doc", a, b)
	if s := b.Status(); s.LocalFailed != 0 || len(b.LocalFailures()) != 0 {
		t.Fatalf("after the coordinator decided: status %+v, failures %+v", s, b.LocalFailures())
	}
	// As above, the events may trail what Status() already shows.
	waitFor(t, "the rejection and a status event with LocalFailed 0", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(rejected) > 0 && events[len(events)-1].LocalFailed == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(rejected) != 1 || rejected[0].Seq != seq {
		t.Fatalf("rejections %+v, want seq %d", rejected, seq)
	}
}
