package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore/jetstoretest"
)

// TestServeOnJetStream: with --nats, a coordinator keeps the documents'
// pages in JetStream, not in its data directory. Killed with SIGKILL, it is
// replaced by a coordinator on another, empty data directory that serves
// every acknowledged mutation; writing goes on there.
func TestServeOnJetStream(t *testing.T) {
	url := jetstoretest.Listen(t)
	first := startServe(t, freeAddr(t), t.TempDir(), "--nats", url)
	for _, id := range []string{"1", "2", "3"} {
		runOK(t, "mutate", "--url", first.url(), "--doc", "groceries.list", "add", `{"id":"`+id+`","title":"item `+id+`"}`)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done

	second := startServe(t, freeAddr(t), t.TempDir(), "--nats", url)
	// Given both, the CLI passes over the dead one.
	runOK(t, "mutate", "--url", first.url()+","+second.url(), "--doc", "groceries.list", "add", `{"id":"4","title":"item 4"}`)
	out := runOK(t, "query", "--url", second.url(), "--doc", "groceries.list", "SELECT id FROM items ORDER BY id")
	if want := `[{"id":"1"},{"id":"2"},{"id":"3"},{"id":"4"}]`; strings.TrimSpace(out) != want {
		t.Fatalf("after the first coordinator was killed, the second serves %s, want %s", out, want)
	}
}

// TestClusterOwnerKilled: three coordinators share one JetStream; a
// replica on each writes to one document while the owner (the first node)
// is killed with SIGKILL mid-stream. The replicas on the other two nodes,
// forwarded to the owner until then, reconnect to their nodes, and the
// dead node's replica, which was given a second coordinator
// (client.Options.URLs), moves there; once the dead owner's lease runs out
// one node takes the document over from the journal and every pending
// mutation goes through. Every mutation of every replica is in the
// document exactly once, and so is every one a replica saw acknowledged.
func TestClusterOwnerKilled(t *testing.T) {
	url := jetstoretest.Listen(t)
	var nodes []*serveProc
	for range 3 {
		nodes = append(nodes, startServe(t, freeAddr(t), t.TempDir(), "--nats", url, "--lease-ttl", "1s"))
	}
	const doc, perReplica = "shared", 60
	var replicas []*client.Doc
	for i, n := range nodes {
		opts := client.Options{StateDir: t.TempDir(), MinBackoff: 20 * time.Millisecond}
		if i == 0 {
			opts.URLs = []string{"ws://" + nodes[1].addr + server.SyncPath}
		}
		d := openReplica(t, n.url(), doc, opts)
		servertest.WaitSynced(t, d) // the first replica's node takes the lease
		replicas = append(replicas, d)
	}
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for r, d := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perReplica {
				if i == perReplica/3 && r == 0 {
					if err := nodes[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Error(err)
					}
					close(killed)
				}
				a := testmutator.Args{ID: fmt.Sprintf("r%d-%03d", r, i), Title: "item"}
				if _, err := d.Mutate(context.Background(), "add", a.Encode()); err != nil {
					t.Errorf("replica %d: %v", r, err)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	<-killed
	start := time.Now()
	// What the dead node's replica saw acknowledged before it moved:
	// every mutation it made that was no longer pending.
	pending := map[string]bool{}
	for _, m := range replicas[0].Engine().Pending() {
		var a testmutator.Args
		json.Unmarshal(m.Args, &a)
		pending[a.ID] = true
	}
	for _, d := range replicas {
		servertest.WaitSynced(t, d)
	}
	t.Logf("the three replicas synced %v after their last write", time.Since(start))
	want := map[string]bool{}
	for r := range replicas {
		for i := range perReplica {
			want[fmt.Sprintf("r%d-%03d", r, i)] = true
		}
	}
	check := openReplica(t, nodes[1].url(), doc, client.Options{})
	servertest.WaitSynced(t, check)
	rows, err := check.Query(context.Background(), `SELECT id, count(*) FROM items GROUP BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, row := range rows.Values {
		id, n := row[0].(string), row[1].(int64)
		if n != 1 {
			t.Errorf("item %s is in the document %d times", id, n)
		}
		got[id] = true
	}
	for id := range want {
		if !got[id] {
			t.Errorf("acknowledged mutation %s is missing", id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d items, want %d", len(got), len(want))
	}
	t.Logf("%d mutations, %d of them pending on the dead node's replica when it was killed, %d items", len(want), len(pending), len(got))
}

// TestClusterSplitBrain: the owner is paused (SIGSTOP) past its lease. The
// other coordinator drops the client it forwarded there (the owner stopped
// answering its pings), takes the document over when the client comes
// back, and commits. The old owner, resumed, still believes it owns the
// document, and its own client's mutation, sent while it was paused, is
// waiting for it: its commit (or its lease renewal, whichever comes first)
// is refused, it steps down, and it forwards its client to the new owner.
// Nothing diverges: every mutation is in the document once.
func TestClusterSplitBrain(t *testing.T) {
	url := jetstoretest.Listen(t)
	old := startServe(t, freeAddr(t), t.TempDir(), "--nats", url, "--lease-ttl", "500ms")
	next := startServe(t, freeAddr(t), t.TempDir(), "--nats", url, "--lease-ttl", "500ms")
	ra := openReplica(t, old.url(), "doc", client.Options{StateDir: t.TempDir(), MinBackoff: 20 * time.Millisecond})
	servertest.WaitSynced(t, ra) // old owns the document
	rb := openReplica(t, next.url(), "doc", client.Options{StateDir: t.TempDir(), MinBackoff: 20 * time.Millisecond})
	add := func(d *client.Doc, id string) {
		t.Helper()
		if _, err := d.Mutate(context.Background(), "add", testmutator.Args{ID: id, Title: id}.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	add(ra, "a1")
	add(rb, "b1")
	servertest.WaitSynced(t, ra)
	servertest.WaitSynced(t, rb)

	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	add(ra, "a2") // waits in the paused owner's socket
	add(rb, "b2")
	servertest.WaitSynced(t, rb) // through next, once it has taken over
	if err := old.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	add(rb, "b3")
	servertest.WaitSynced(t, ra)
	servertest.WaitSynced(t, rb)
	for _, d := range []*client.Doc{ra, rb} {
		servertest.WaitFor(t, "both replicas at the same LSN", func() bool { return ra.Status().LSN == rb.Status().LSN })
		rows, err := d.Query(context.Background(), `SELECT group_concat(id) FROM (SELECT id FROM items ORDER BY id)`)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(rows.Values); got != "[[a1,a2,b1,b2,b3]]" {
			t.Fatalf("items %s, want a1 a2 b1 b2 b3 once each", got)
		}
	}
	for _, line := range strings.Split(old.stderr.String(), "\n") {
		if strings.Contains(line, "stepping down") {
			t.Logf("old owner: %s", line)
		}
	}
	if !strings.Contains(old.stderr.String(), "stepping down") {
		t.Fatalf("the old owner did not step down:\n%s", old.stderr)
	}
}

// TestEmbeddedCluster: three sqlsync processes, each running an embedded
// NATS node (real loopback listeners: nats-server does not cluster a node
// that does not listen), form one JetStream cluster with the commits kept
// in three copies, and nothing else is installed. A replica on each node
// writes to one document; the document's owner is killed with SIGKILL, its
// NATS node with it; the other two elect new JetStream leaders, one takes
// the document over, and every mutation of the two surviving replicas is
// applied once.
func TestEmbeddedCluster(t *testing.T) {
	var routes, listens []string
	for range 3 {
		routes = append(routes, "nats://"+freeAddr(t))
		listens = append(listens, freeAddr(t))
	}
	var nodes []*serveProc
	for i := range 3 {
		nodes = append(nodes, launchServe(t, freeAddr(t), t.TempDir(),
			"--nats-embed", t.TempDir(), "--nats-listen", listens[i], "--log-level", "debug", "--nats-replicas", "3", "--lease-ttl", "1s",
			"--cluster-name", "sqlsync-test", "--cluster-listen", strings.TrimPrefix(routes[i], "nats://"),
			"--routes", strings.Join(routes, ",")))
	}
	formed := time.Now()
	for _, n := range nodes {
		n.waitHealthy(t, 90*time.Second) // the JetStream cluster forms first
	}
	t.Logf("three nodes serving %v after they started", time.Since(formed))
	var replicas []*client.Doc
	for i, n := range nodes {
		d := openReplica(t, n.url(), "doc", client.Options{StateDir: t.TempDir(), MinBackoff: 50 * time.Millisecond})
		if _, err := d.Mutate(context.Background(), "add", testmutator.Args{ID: fmt.Sprint("before-", i), Title: "x"}.Encode()); err != nil {
			t.Fatal(err)
		}
		servertest.WaitSynced(t, d)
		replicas = append(replicas, d)
	}
	if err := nodes[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i, d := range replicas[1:] {
		if _, err := d.Mutate(context.Background(), "add", testmutator.Args{ID: fmt.Sprint("after-", i), Title: "x"}.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() { // the survivors' goroutines, for the log
			for _, n := range nodes[1:] {
				n.cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-n.done:
				case <-time.After(5 * time.Second):
				}
			}
		}
	})
	for _, d := range replicas[1:] {
		servertest.WaitSynced(t, d)
	}
	t.Logf("owner and its NATS node killed: the surviving replicas synced after %v", time.Since(start))
	// Synced means a replica's own writes are applied; the other
	// survivor's may reach it a moment later.
	const want = "[[after-0,after-1,before-0,before-1,before-2]]"
	for _, d := range replicas[1:] {
		deadline := time.Now().Add(servertest.Timeout)
		for {
			rows, err := d.Query(context.Background(), `SELECT group_concat(id) FROM (SELECT id FROM items ORDER BY id)`)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprint(rows.Values)
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("items %s", got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
