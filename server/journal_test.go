package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore/jetstoretest"
)

// TestJetStreamTwoCoordinators: two coordinators keep one document in one
// JetStream stream, a client on each writing to it in turn. Each commit is
// fenced on the document's last sequence, so a coordinator whose copy is
// stale has its commit refused, steps down (its clients reconnect) and
// reopens the document from the stream. Every mutation is applied exactly
// once: a third coordinator, started after the two are gone, serves all
// of them, each once, to a new replica.
func TestJetStreamTwoCoordinators(t *testing.T) {
	js := jetstoretest.Start(t)
	st, err := jetstore.EnsureStream(context.Background(), js, "SQLSYNC", 1)
	if err != nil {
		t.Fatal(err)
	}
	journal := JetStreamJournal(js, st)
	one := startServer(t, Config{Journal: journal})
	two := startServer(t, Config{Journal: journal})
	a := openClient(t, one, "shared", clientOptions{})
	b := openClient(t, two, "shared", clientOptions{})
	const n = 8
	for i := range n {
		mutate(t, a, "add", testmutator.Args{ID: fmt.Sprintf("a%d", i), Title: "from a"})
		waitSynced(t, a)
		mutate(t, b, "add", testmutator.Args{ID: fmt.Sprintf("b%d", i), Title: "from b"})
		waitSynced(t, b)
	}
	if got := queryString(t, b, `SELECT count(*) FROM items`); got != fmt.Sprint([][]any{{int64(2 * n)}}) {
		t.Fatalf("b, which wrote last, sees %s items, want %d", got, 2*n)
	}
	if m := metricsText(t, one) + metricsText(t, two); !strings.Contains(m, `sqlsync_step_downs_total{reason="fenced"}`) {
		t.Fatal("no fenced step-down counted in /metrics")
	}
	for _, ts := range []*testServer{one, two} {
		if err := ts.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	three := startServer(t, Config{Journal: journal})
	c := openClient(t, three, "shared", clientOptions{})
	waitSynced(t, c)
	want := "[[a 1] [b 1]]"
	if got := queryString(t, c, `SELECT substr(id, 1, 1) AS who, count(*) / ? FROM items GROUP BY who`, n); got != want {
		t.Fatalf("a new replica sees %s (who, items/%d), want %s", got, n, want)
	}
	if got := queryString(t, c, `SELECT count(DISTINCT id) FROM items`); got != fmt.Sprint([][]any{{int64(2 * n)}}) {
		t.Fatalf("distinct items %s, want %d", got, 2*n)
	}
}
