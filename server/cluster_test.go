package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore/jetstoretest"
)

// clusterNodes starts n coordinators, running mut, sharing one JetStream journal and
// lease bucket, each on its own listener and data directory.
func clusterNodes(t *testing.T, n int, ttl time.Duration, mut func(string) engine.Mutator) []*testServer {
	t.Helper()
	js := jetstoretest.Start(t)
	ctx := context.Background()
	st, err := jetstore.EnsureStream(ctx, js, "SQLSYNC", 1)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := EnsureLeases(ctx, js, ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*testServer
	for range n {
		ln := servertest.Listen(t)
		cfg := Config{Mutator: mut, Journal: JetStreamJournal(js, st),
			Cluster: &Cluster{KV: kv, URL: "http://" + ln.Addr().String(), TTL: ttl}}
		nodes = append(nodes, startServerOn(t, cfg, ln))
	}
	return nodes
}

// TestClusterForwardsAndHandsOver: three coordinators, a client on each,
// one document. The first client's node takes the document's lease; the
// other nodes forward their clients to it, and all three replicas
// converge. Its coordinator shut down, the lease is released: the other
// two clients reconnect, one of their nodes takes the document over from
// the journal, and writing goes on, every mutation applied once.
func TestClusterForwardsAndHandsOver(t *testing.T) {
	nodes := clusterNodes(t, 3, time.Second, todoMutator)
	var docs []*client.Doc
	for i, ts := range nodes {
		d := openClient(t, ts, "shared", clientOptions{})
		waitSynced(t, d) // the first one's node owns the document
		mutate(t, d, "add", testmutator.Args{ID: fmt.Sprintf("n%d", i), Title: "first"})
		docs = append(docs, d)
	}
	for _, d := range docs {
		waitSynced(t, d)
	}
	if owner := nodes[0].openDocs(); owner != 1 || nodes[1].openDocs() != 0 || nodes[2].openDocs() != 0 {
		t.Fatalf("open documents per node: %d %d %d, want the first node only", nodes[0].openDocs(), nodes[1].openDocs(), nodes[2].openDocs())
	}
	// What an operator sees: the owner lists the document and its lease
	// epoch, the others forward a connection each.
	if got := clusterHealth(t, nodes[0]); len(got) != 1 || got[0].Doc != "shared" || got[0].Epoch == 0 {
		t.Fatalf("owner's /healthz lists %+v, want the document with its epoch", got)
	}
	if got := clusterHealth(t, nodes[1]); len(got) != 0 {
		t.Fatalf("a forwarding node's /healthz lists %+v as owned", got)
	}
	for i, want := range []string{"sqlsync_leases_held 1", "sqlsync_connections_forwarded 1", "sqlsync_connections_forwarded 1"} {
		if m := metricsText(t, nodes[i]); !strings.Contains(m, "\n"+want+"\n") {
			t.Fatalf("node %d's /metrics lacks %q", i, want)
		}
	}
	for _, d := range docs {
		waitFor(t, "every item on every replica", func() bool {
			return queryString(t, d, `SELECT count(*) FROM items`) == "[[3]]"
		})
	}

	start := time.Now()
	if err := nodes[0].Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, d := range docs[1:] {
		mutate(t, d, "add", testmutator.Args{ID: fmt.Sprintf("after%d", i), Title: "after the hand-off"})
	}
	for _, d := range docs[1:] {
		waitSynced(t, d)
	}
	t.Logf("graceful hand-off: both replicas synced %v after the owner closed", time.Since(start))
	if n := nodes[1].openDocs() + nodes[2].openDocs(); n != 1 {
		t.Fatalf("after the hand-off %d nodes hold the document, want 1", n)
	}
	for _, d := range docs[1:] {
		waitFor(t, "every item on both replicas", func() bool {
			return queryString(t, d, `SELECT count(*), count(DISTINCT id) FROM items`) == "[[5 5]]"
		})
	}
}

// TestClientMovesToAnotherNode: a replica given two coordinators of a
// cluster (client.Options.URL and URLs) loses the first, the document's
// owner: it connects to the second, which takes the document over, and
// its pending mutations go through there.
func TestClientMovesToAnotherNode(t *testing.T) {
	nodes := clusterNodes(t, 2, time.Second, todoMutator)
	d := openClient(t, nodes[0], "moving", clientOptions{others: nodes[1:]})
	mutate(t, d, "add", testmutator.Args{ID: "before", Title: "x"})
	waitSynced(t, d)
	if got := d.Status().URL; got != nodes[0].url {
		t.Fatalf("status URL %q, want the first node's", got)
	}
	if err := nodes[0].Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mutate(t, d, "add", testmutator.Args{ID: "after", Title: "x"})
	waitSynced(t, d)
	if got := d.Status().URL; got != nodes[1].url {
		t.Fatalf("status URL %q after the first node closed, want the second's", got)
	}
	if got := queryString(t, d, `SELECT group_concat(id) FROM (SELECT id FROM items ORDER BY id)`); got != "[[after,before]]" {
		t.Fatalf("items %s", got)
	}
}

// owned is a document /healthz says a node owns.
type owned struct {
	Doc   string
	Epoch uint64
	LSN   uint64
}

// clusterHealth returns the documents ts's /healthz says it owns.
func clusterHealth(t *testing.T, ts *testServer) []owned {
	t.Helper()
	var h struct {
		Cluster struct {
			Node  string
			Owned []owned
		}
	}
	_, body := httpGet(t, ts, "/healthz")
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	if h.Cluster.Node == "" {
		t.Fatal("/healthz names no cluster node")
	}
	return h.Cluster.Owned
}

// metricsText returns ts's /metrics.
func metricsText(t *testing.T, ts *testServer) string {
	t.Helper()
	_, body := httpGet(t, ts, "/metrics")
	return string(body)
}

// httpGet fetches path from ts and returns the response and its body.
func httpGet(t *testing.T, ts *testServer, path string) (*http.Response, []byte) {
	t.Helper()
	return servertest.Get(t, "http://"+ts.addr+path)
}

// TestClusterStreamsAndPresence: a cluster's forwarding node passes on
// what the owner speaks beyond diffs. A replica connected through a node
// that does not own the document gets a large first diff streamed by the
// owner through the forward, and presence goes both ways between it and a
// replica on the owner.
func TestClusterStreamsAndPresence(t *testing.T) {
	nodes := clusterNodes(t, 2, time.Second, func(string) engine.Mutator { return testmutator.SQL{} })
	owner := openClient(t, nodes[0], "big", clientOptions{mutator: testmutator.SQL{}, presence: true})
	waitSynced(t, owner)
	if _, err := owner.Mutate(context.Background(), "exec", testmutator.SQLArgs{SQL: `CREATE TABLE big(b BLOB);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
		INSERT INTO big SELECT randomblob(3500) FROM n`}.Encode()); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, owner)
	finished := func() float64 { return nodes[0].counterWith(t, "sqlsync_streams_total", "event", "finished") }
	// The writer's own first diff after its insert is large too; the
	// counter moves a moment after the replica has it.
	waitFor(t, "the writer's own stream to be counted", func() bool { return finished() >= 1 })
	before := finished()

	far := openClient(t, nodes[1], "big", clientOptions{mutator: testmutator.SQL{}, presence: true, stateDir: t.TempDir()})
	waitFor(t, "the forwarded replica's download", func() bool {
		rows, err := far.Query(context.Background(), `SELECT count(*) FROM big`)
		return err == nil && fmt.Sprint(rows.Values) == "[[3000]]"
	})
	if nodes[1].openDocs() != 0 || !strings.Contains(metricsText(t, nodes[1]), "\nsqlsync_connections_forwarded 1\n") {
		t.Fatal("the second node does not forward the replica")
	}
	if got := finished() - before; got != 1 {
		t.Fatalf("the owner finished %v streams for the forwarded replica, want 1", got)
	}

	if err := owner.Presence().Set(map[string]string{"name": "near"}); err != nil {
		t.Fatal(err)
	}
	if err := far.Presence().Set(map[string]string{"name": "far"}); err != nil {
		t.Fatal(err)
	}
	sees := func(d *client.Doc, name string) func() bool {
		return func() bool {
			for _, p := range d.Peers() {
				if strings.Contains(string(p.State), `"`+name+`"`) {
					return true
				}
			}
			return false
		}
	}
	waitFor(t, "the owner's replica to see the forwarded one's presence", sees(owner, "far"))
	waitFor(t, "the forwarded replica to see the owner's", sees(far, "near"))
	waitConverged(t, nodes[0], "big", owner, far)
}
