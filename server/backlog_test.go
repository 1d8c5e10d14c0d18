package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// TestBacklogUnderRateLimit: a replica that comes back online with 10,000
// mutations made offline drains them at the coordinator's rate limit, on
// one connection: the limit slows it (backpressure), never closes it, so
// there is no reconnect loop, and it is done in bounded time.
func TestBacklogUnderRateLimit(t *testing.T) {
	const backlog, rate, burst = 10000, 1500, 500
	ts := startServer(t, Config{RatePerConn: rate, RateBurst: burst})
	var w wireLog
	d := openClient(t, ts, "doc", clientOptions{dial: w.Dial})
	waitSynced(t, d)
	d.SetOnline(false)
	waitState(t, d, "offline")
	for i := range backlog {
		mutate(t, d, "add", testmutator.Args{ID: fmt.Sprintf("offline-%d", i), Title: "offline"})
	}
	other := openClient(t, ts, "doc", clientOptions{})
	start := time.Now()
	d.SetOnline(true)
	// Bounded, with room for a loaded machine: unlimited, this takes
	// about 4 s on a quiet one, mostly replaying the pending mutations.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := d.WaitSynced(ctx); err != nil {
		t.Fatalf("backlog not drained: %v", err)
	}
	took := time.Since(start)
	waitConverged(t, ts, "doc", d, other)
	t.Logf("%d mutations drained in %v", backlog, took)

	if got := queryString(t, other, `SELECT count(*) FROM items WHERE id LIKE 'offline-%'`); got != fmt.Sprintf("[[%d]]", backlog) {
		t.Fatalf("offline items applied: %v, want %d", got, backlog)
	}
	if n := len(w.Hellos()); n != 2 {
		t.Fatalf("%d Hellos: the replica reconnected %d times after going online, want 0", n, n-2)
	}
	if s := d.Status(); s.LastError != "" {
		t.Fatalf("the replica saw an error: %q", s.LastError)
	}
	// The limit was in force: past the burst, no faster than the rate.
	if least := time.Duration(backlog-burst) * time.Second / rate; took < least*9/10 {
		t.Fatalf("drained in %v, faster than the rate limit allows (%v)", took, least)
	}
}
