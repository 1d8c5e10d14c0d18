package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// TestQueueOnlyReplica: a replica opened without a mutator (it cannot know
// its document's) records mutations offline without running them, says so
// in its status, survives a reopen, and once online the coordinator runs
// them: their effect arrives in a diff, and a mutation the coordinator's
// mutator refuses comes back as a rejection with its message.
func TestQueueOnlyReplica(t *testing.T) {
	ts := startServer(t, Config{})
	state := t.TempDir()

	d := openClient(t, ts, "q", clientOptions{stateDir: state, offline: true, queueOnly: true})
	if s := d.Status(); !s.QueueOnly {
		t.Fatalf("status %+v: want QueueOnly", s)
	}
	mutate(t, d, "add", testmutator.Args{ID: "a", Title: "queued"})
	if _, err := d.Mutate(context.Background(), "add", []byte(`{"id": 7}`)); err != nil {
		t.Fatalf("a queue-only replica cannot refuse a mutation, got %v", err)
	}
	if got := d.Status().Pending; got != 2 {
		t.Fatalf("pending %d, want 2", got)
	}
	// Not run locally: the items table does not even exist yet.
	if _, err := d.Query(context.Background(), `SELECT count(*) FROM items`); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("query before sync: %v, want no such table", err)
	}
	d.Close()

	d = openClient(t, ts, "q", clientOptions{stateDir: state, queueOnly: true})
	rejected := make(chan string, 4)
	stop := d.Watch(func(e client.Event) {
		if e.Rejected != nil {
			rejected <- e.Rejected.Message
		}
	})
	defer stop()
	waitSynced(t, d)
	if got := queryString(t, d, `SELECT id, title FROM items`); got != "[[a queued]]" {
		t.Fatalf("items after sync: %s", got)
	}
	select {
	case msg := <-rejected:
		if !strings.Contains(msg, "cannot unmarshal number") {
			t.Fatalf("rejection message %q", msg)
		}
	case <-time.After(testTimeout):
		t.Fatal("no rejection for the bad mutation")
	}
	other := openClient(t, ts, "q", clientOptions{})
	waitConverged(t, ts, "q", d, other)
}

// TestNewNeedsMutator: a coordinator has no mutator of its own to fall
// back on; New without one says what is missing.
func TestNewNeedsMutator(t *testing.T) {
	_, err := New(Config{DataDir: t.TempDir(), Logger: testLogger()})
	if err == nil || !strings.Contains(err.Error(), "no mutator") {
		t.Fatalf("New without a mutator: %v, want a no-mutator error", err)
	}
}
