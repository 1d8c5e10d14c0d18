package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// writeTodos runs n random todo mutations on d from r: adds of its own items
// (ids prefix-0, prefix-1, ...) and toggles, renames and deletes of any item
// it can see. It returns the ids it added and the seq of its last mutation.
func writeTodos(ctx context.Context, d *client.Doc, r *rand.Rand, prefix string, n int) (added []string, last uint64, err error) {
	for i := range n {
		var name string
		var a testmutator.Args
		rows, err := d.Query(ctx, `SELECT id FROM items ORDER BY id`)
		if err != nil {
			return added, last, err
		}
		switch k := r.IntN(10); {
		case k < 5 || len(rows.Values) == 0:
			name, a = "add", testmutator.Args{ID: fmt.Sprintf("%s-%d", prefix, len(added)), Title: fmt.Sprintf("%s item %d", prefix, i)}
		case k < 7:
			name, a = "toggle", testmutator.Args{ID: rows.Values[r.IntN(len(rows.Values))][0].(string)}
		case k < 9:
			name, a = "rename", testmutator.Args{ID: rows.Values[r.IntN(len(rows.Values))][0].(string), Title: fmt.Sprintf("%s renamed %d", prefix, i)}
		default:
			name, a = "delete", testmutator.Args{ID: rows.Values[r.IntN(len(rows.Values))][0].(string)}
		}
		seq, err := d.Mutate(ctx, name, a.Encode())
		if err != nil {
			if name == "add" {
				return added, last, fmt.Errorf("%s add %s: %w", prefix, a.ID, err)
			}
			continue // e.g. toggling an item deleted here: refused locally
		}
		last = seq
		if name == "add" {
			added = append(added, a.ID)
		}
		if r.IntN(4) == 0 {
			time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
		}
	}
	return added, last, nil
}

// TestThreeWritersConverge has three replicas (two in memory, one on disk)
// write to one document at once; once all are synced they hold the
// coordinator's exact bytes, and every item added is there once.
func TestThreeWritersConverge(t *testing.T) {
	seed := testSeed(t)
	ts := startServer(t, Config{})
	docs := []*client.Doc{
		openClient(t, ts, "shared", clientOptions{}),
		openClient(t, ts, "shared", clientOptions{}),
		openClient(t, ts, "shared", clientOptions{stateDir: t.TempDir()}),
	}
	n := 60
	if testing.Short() {
		n = 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var wg sync.WaitGroup
	added := make([][]string, len(docs))
	last := make([]uint64, len(docs))
	errs := make([]error, len(docs))
	for i, d := range docs {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			added[i], last[i], errs[i] = writeTodos(ctx, d, r, fmt.Sprintf("c%d", i), n)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, ts, "shared", docs...)

	var want []string
	for _, ids := range added {
		want = append(want, ids...)
	}
	slices.Sort(want)
	rows, err := docs[0].Query(ctx, `SELECT id FROM items ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows.Values {
		got = append(got, r[0].(string))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("items: got %v, want %v", got, want)
	}
	for i, d := range docs {
		if got, want := queryString(t, d, `SELECT last_seq FROM `+engine.ClientsTable+` WHERE client_id = ?`, d.ClientID()),
			fmt.Sprintf("[[%d]]", last[i]); got != want {
			t.Fatalf("replica %d: last_seq got %v, want %v", i, got, want)
		}
	}
}

// splitMutator is the todo mutator, except for "fail": on a replica it adds
// the item it names and succeeds, as an optimistic client does; on the
// coordinator it adds the item too and then fails with args.Message, so
// the coordinator must roll the write back.
type splitMutator struct {
	testmutator.Mutator
	coordinator bool
}

func (m splitMutator) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if name != "fail" {
		return m.Mutator.Mutate(ctx, conn, name, args)
	}
	if err := m.Mutator.Mutate(ctx, conn, "add", args); err != nil {
		return err
	}
	if m.coordinator {
		return m.Mutator.Mutate(ctx, conn, "fail", args)
	}
	return nil
}

// TestRejectionReachesOnlySender: the coordinator rejects a mutation; its
// sender gets an Event with the mutator's message, no other replica does,
// the mutation's writes are rolled back everywhere, and the mutations
// around it apply.
func TestRejectionReachesOnlySender(t *testing.T) {
	ts := startServer(t, Config{Mutator: func(string) engine.Mutator { return splitMutator{coordinator: true} }})
	sender := openClient(t, ts, "doc", clientOptions{mutator: splitMutator{}})
	other := openClient(t, ts, "doc", clientOptions{mutator: splitMutator{}})
	events := make(chan *engine.RejectedError, 10)
	sender.Watch(func(e client.Event) {
		if e.Rejected != nil {
			events <- e.Rejected
		}
	})
	var otherGot []*engine.RejectedError
	var otherMu sync.Mutex
	other.Watch(func(e client.Event) {
		if e.Rejected != nil {
			otherMu.Lock()
			otherGot = append(otherGot, e.Rejected)
			otherMu.Unlock()
		}
	})
	waitSynced(t, sender)

	// Offline, so that the three go to the coordinator in one push.
	sender.SetOnline(false)
	mutate(t, sender, "add", testmutator.Args{ID: "before", Title: "before"})
	seq := mutate(t, sender, "fail", testmutator.Args{ID: "ghost", Title: "ghost", Message: "ghosts are not allowed here"})
	mutate(t, sender, "add", testmutator.Args{ID: "after", Title: "after"})
	if got, want := queryString(t, sender, `SELECT id FROM items ORDER BY id`), "[[after] [before] [ghost]]"; got != want {
		t.Fatalf("replica before sync: got %v, want %v", got, want)
	}
	sender.SetOnline(true)

	select {
	case rej := <-events:
		if got, want := rej.Seq, seq; got != want {
			t.Fatalf("rejected seq: got %v, want %v", got, want)
		}
		if got, want := rej.Message, "ghosts are not allowed here"; got != want {
			t.Fatalf("rejection message: got %q, want %q", got, want)
		}
		if got, want := rej.Name, "fail"; got != want {
			t.Fatalf("rejected mutation name: got %q, want %q", got, want)
		}
		if !errors.Is(rej, engine.ErrRejected) {
			t.Fatalf("%v does not match ErrRejected", rej)
		}
	case <-time.After(testTimeout):
		t.Fatal("no rejection event")
	}
	waitConverged(t, ts, "doc", sender, other)
	for _, d := range []*client.Doc{sender, other} {
		if got, want := queryString(t, d, `SELECT id FROM items ORDER BY id`), "[[after] [before]]"; got != want {
			t.Fatalf("after sync: got %v, want %v", got, want)
		}
	}
	select {
	case rej := <-events:
		t.Fatalf("second rejection event: %v", rej)
	default:
	}
	otherMu.Lock()
	defer otherMu.Unlock()
	if len(otherGot) != 0 {
		t.Fatalf("another replica got rejection events: %v", otherGot)
	}
}

// TestQueryRefusesWrites: queries are read-only; statements that write, or
// that would leave the replica's connection in a transaction or change its
// settings, are refused, and the replica goes on working.
func TestQueryRefusesWrites(t *testing.T) {
	ts := startServer(t, Config{})
	d := openClient(t, ts, "doc", clientOptions{})
	mutate(t, d, "add", testmutator.Args{ID: "a", Title: "A"})
	waitSynced(t, d)
	for _, sql := range []string{
		`INSERT INTO items(id, title) VALUES ('x', 'X')`,
		`UPDATE items SET title = 'X'`,
		`DELETE FROM items`,
		`CREATE TABLE t(x)`,
		`DROP TABLE items`,
		`CREATE TEMP TABLE t(x)`,
		`PRAGMA user_version = 99`,
		`BEGIN`,
		`BEGIN IMMEDIATE`,
		`SAVEPOINT s`,
		`PRAGMA query_only = 1`,
		`PRAGMA locking_mode = EXCLUSIVE`,
		`PRAGMA writable_schema = 1`,
		`ATTACH ':memory:' AS other`,
		`SELECT 1; DELETE FROM items`,
	} {
		t.Run(sql, func(t *testing.T) {
			if _, err := d.Query(context.Background(), sql); err == nil {
				t.Fatalf("%s: no error", sql)
			}
			// The replica still takes mutations and syncs them.
			mutate(t, d, "toggle", testmutator.Args{ID: "a"})
			waitSynced(t, d)
		})
	}
	if _, err := d.Query(context.Background(), `DELETE FROM items`); !errors.Is(err, engine.ErrNotReadOnly) {
		t.Fatalf("DELETE: got %v, want ErrNotReadOnly", err)
	}
	for _, sql := range []string{`SELECT count(*) FROM items`, `PRAGMA table_info(items)`, `PRAGMA user_version`, `SELECT * FROM pragma_table_info('items')`, `EXPLAIN SELECT 1`} {
		if _, err := d.Query(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	waitConverged(t, ts, "doc", d)
	if got, want := queryString(t, d, `SELECT id, title FROM items`), "[[a A]]"; got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestManyDocuments syncs many documents at once, each with two replicas,
// and checks each converges to its own content.
func TestManyDocuments(t *testing.T) {
	ts := startServer(t, Config{})
	n := 12
	if testing.Short() {
		n = 4
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	type pair struct{ a, b *client.Doc }
	pairs := make([]pair, n)
	for i := range n {
		id := fmt.Sprintf("doc-%d", i)
		pairs[i] = pair{openClient(t, ts, id, clientOptions{}), openClient(t, ts, id, clientOptions{})}
		for j, d := range []*client.Doc{pairs[i].a, pairs[i].b} {
			wg.Go(func() {
				for k := range 5 {
					a := testmutator.Args{ID: fmt.Sprintf("%s/%d/%d", id, j, k), Title: id}
					if _, err := d.Mutate(context.Background(), "add", a.Encode()); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, p := range pairs {
		id := fmt.Sprintf("doc-%d", i)
		waitConverged(t, ts, id, p.a, p.b)
		if got, want := queryString(t, p.a, `SELECT count(*), min(title), max(title) FROM items`), fmt.Sprintf("[[10 %s %s]]", id, id); got != want {
			t.Fatalf("%s: got %v, want %v", id, got, want)
		}
	}
	if got, want := ts.openDocs(), n; got != want {
		t.Fatalf("open documents: got %v, want %v", got, want)
	}
}

// TestIdleDocumentClosesAndReopens: a document closes once its last client
// has been gone for IdleTimeout, and the next client reopens it from disk.
func TestIdleDocumentClosesAndReopens(t *testing.T) {
	ts := startServer(t, Config{IdleTimeout: 20 * time.Millisecond})
	d := openClient(t, ts, "doc", clientOptions{})
	mutate(t, d, "add", testmutator.Args{ID: "a", Title: "A"})
	waitSynced(t, d)
	lsn := d.Status().LSN
	if got, want := ts.openDocs(), 1; got != want {
		t.Fatalf("open documents: got %v, want %v", got, want)
	}
	time.Sleep(60 * time.Millisecond)
	if got, want := ts.openDocs(), 1; got != want {
		t.Fatalf("open documents with a client connected: got %v, want %v", got, want)
	}
	d.Close()
	waitFor(t, "the idle document to close", func() bool { return ts.openDocs() == 0 })

	e := openClient(t, ts, "doc", clientOptions{})
	waitSynced(t, e)
	if got, want := e.Status().LSN, lsn; got != want {
		t.Fatalf("LSN after reopening: got %v, want %v", got, want)
	}
	if got, want := queryString(t, e, `SELECT id, title FROM items`), "[[a A]]"; got != want {
		t.Fatalf("after reopening: got %v, want %v", got, want)
	}
	mutate(t, e, "add", testmutator.Args{ID: "b", Title: "B"})
	waitConverged(t, ts, "doc", e)
	if got, want := e.Status().LSN, lsn+1; got != want {
		t.Fatalf("LSN after a commit on the reopened document: got %v, want %v", got, want)
	}
}

// TestIdleCloseRacesReopen closes a document while its writer is still
// applying a large push from a client that has left, and reopens it at
// once for another client: no acknowledged mutation may be lost, and the
// document must stay whole.
func TestIdleCloseRacesReopen(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, Config{DataDir: dir, IdleTimeout: time.Millisecond})
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	var acked []string
	for i := range rounds {
		raw := dialRaw(t, ts)
		raw.Send(hello("doc", fmt.Sprintf("raw%d", i)))
		raw.Send(pushFrame(1, "bulk", testmutator.Args{Prefix: fmt.Sprintf("r%d-", i), N: 3000}))
		raw.WS.Close() // gone before the writer has applied the push

		d := openClient(t, ts, "doc", clientOptions{})
		id := fmt.Sprintf("after-%d", i)
		mutate(t, d, "add", testmutator.Args{ID: id, Title: id})
		waitSynced(t, d)
		acked = append(acked, id)
		d.Close()
	}
	waitFor(t, "the idle document to close", func() bool { return ts.openDocs() == 0 })

	// Reopen the data directory in a new server: what was acknowledged is there.
	ts.Close(context.Background())
	ts2 := startServer(t, Config{DataDir: dir})
	d := openClient(t, ts2, "doc", clientOptions{})
	waitConverged(t, ts2, "doc", d)
	for _, id := range acked {
		if got, want := queryString(t, d, `SELECT count(*) FROM items WHERE id = ?`, id), "[[1]]"; got != want {
			t.Fatalf("acknowledged item %s: got %v, want %v", id, got, want)
		}
	}
	if got := queryString(t, d, `SELECT count(*) % 3000 FROM items WHERE id GLOB 'r*'`); got != "[[0]]" {
		t.Fatalf("bulk items partly applied: count %% 3000 = %v", got)
	}
}

// TestSubscribe: a live query fires at once, on local and remote changes
// that alter its rows, and not for changes that leave them as they were.
func TestSubscribe(t *testing.T) {
	ts := startServer(t, Config{})
	local := openClient(t, ts, "doc", clientOptions{})
	remote := openClient(t, ts, "doc", clientOptions{})
	waitSynced(t, local)

	results := make(chan string, 100)
	cancel := local.Subscribe(`SELECT id, title FROM items WHERE id GLOB 'w*' ORDER BY id`, nil, func(rows engine.Rows, err error) {
		if err != nil {
			results <- "error: " + err.Error()
			return
		}
		results <- fmt.Sprint(rows.Values)
	})
	defer cancel()
	next := func(what string) string {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(testTimeout):
			t.Fatalf("no notification for %s", what)
			return ""
		}
	}
	none := func(what string) {
		t.Helper()
		select {
		case r := <-results:
			t.Fatalf("%s: unexpected notification %s", what, r)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if got, want := next("subscribe"), "[]"; got != want {
		t.Fatalf("first result: got %v, want %v", got, want)
	}

	mutate(t, local, "add", testmutator.Args{ID: "w1", Title: "local"})
	if got, want := next("a local add"), "[[w1 local]]"; got != want {
		t.Fatalf("after a local add: got %v, want %v", got, want)
	}
	waitConverged(t, ts, "doc", local, remote)
	none("the local add coming back from the coordinator")

	mutate(t, remote, "add", testmutator.Args{ID: "w2", Title: "remote"})
	if got, want := next("a remote add"), "[[w1 local] [w2 remote]]"; got != want {
		t.Fatalf("after a remote add: got %v, want %v", got, want)
	}

	mutate(t, remote, "add", testmutator.Args{ID: "other", Title: "not watched"})
	mutate(t, remote, "toggle", testmutator.Args{ID: "w1"}) // a column the query does not read
	waitConverged(t, ts, "doc", local, remote)
	none("remote changes outside the query's rows")
	mutate(t, local, "add", testmutator.Args{ID: "x", Title: "not watched"})
	none("a local change outside the query's rows")

	mutate(t, remote, "rename", testmutator.Args{ID: "w1", Title: "renamed"})
	if got, want := next("a remote rename"), "[[w1 renamed] [w2 remote]]"; got != want {
		t.Fatalf("after a remote rename: got %v, want %v", got, want)
	}
	cancel()
	mutate(t, local, "add", testmutator.Args{ID: "w3", Title: "after cancel"})
	none("a change after cancel")
}

// TestClientRestartResumesFromLSN: a replica kept on disk restarts from its
// snapshot's LSN and gets only the pages changed since, not the document;
// mutations it made offline survive the restart and apply once.
func TestClientRestartResumesFromLSN(t *testing.T) {
	ts := startServer(t, Config{})
	state := t.TempDir()
	a := openClient(t, ts, "doc", clientOptions{stateDir: state})
	b := openClient(t, ts, "doc", clientOptions{})
	mutate(t, a, "bulk", testmutator.Args{Prefix: "bulk-", N: 3000})
	waitConverged(t, ts, "doc", a, b)
	before := a.Status().LSN
	id := a.ClientID()
	a.Close()

	// The document moves on while a is away, and a works offline.
	for i := range 3 {
		mutate(t, b, "add", testmutator.Args{ID: fmt.Sprintf("b%d", i), Title: "while a was away"})
	}
	waitSynced(t, b)
	off := openClient(t, ts, "doc", clientOptions{stateDir: state, offline: true})
	mutate(t, off, "add", testmutator.Args{ID: "offline", Title: "made offline"})
	off.Close()

	var wire wireLog
	a = openClient(t, ts, "doc", clientOptions{stateDir: state, dial: wire.Dial})
	if got, want := a.ClientID(), id; got != want {
		t.Fatalf("client ID after restart: got %v, want %v", got, want)
	}
	if got, want := a.Status().Pending, 1; got != want {
		t.Fatalf("pending after restart: got %v, want %v", got, want)
	}
	doc := waitConverged(t, ts, "doc", a, b)
	pageCount := len(doc) / vfs.PageSize

	hellos := wire.Hellos()
	if len(hellos) == 0 {
		t.Fatal("no hello sent")
	}
	if got, want := hellos[0].LSN, before; got != want {
		t.Fatalf("hello LSN after restart: got %v, want %v", got, want)
	}
	diffs := wire.Diffs(0)
	if len(diffs) == 0 {
		t.Fatal("no diff received")
	}
	if got, want := diffs[0].From, before; got != want {
		t.Fatalf("first diff from: got %v, want %v", got, want)
	}
	received := 0
	for _, d := range diffs {
		received += len(d.Pages)
	}
	t.Logf("document of %d pages; after restart the replica received %d pages in %d diffs", pageCount, received, len(diffs))
	if received*4 > pageCount {
		t.Fatalf("received %d pages after restart, of a %d-page document: a full download, not a diff", received, pageCount)
	}
	if got, want := queryString(t, a, `SELECT count(*) FROM items WHERE id = 'offline' OR id GLOB 'b[0-9]'`), "[[4]]"; got != want {
		t.Fatalf("items after restart: got %v, want %v", got, want)
	}
}

// logMutator writes an append-only log: "grow" appends n rows of 1 KiB,
// "append" one short row. It has no index, so a small append touches few
// pages.
type logMutator struct{}

func (logMutator) Migrate(ctx context.Context, conn *sqlite3.Conn) error {
	return conn.Exec(`CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY, body TEXT NOT NULL)`)
}

func (logMutator) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	switch name {
	case "grow":
		n, err := strconv.Atoi(string(args))
		if err != nil {
			return err
		}
		return sqlrows.Exec(conn, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO log(body) SELECT printf('%.1024c', 'x') FROM n`, n)
	case "append":
		return sqlrows.Exec(conn, `INSERT INTO log(body) VALUES (?)`, string(args))
	}
	return fmt.Errorf("unknown mutation %q", name)
}

// TestOneCommitBehindDiffOverWire: a replica one commit behind receives
// exactly the pages that commit changed, not the database.
func TestOneCommitBehindDiffOverWire(t *testing.T) {
	ts := startServer(t, Config{Mutator: func(string) engine.Mutator { return logMutator{} }})
	var wire wireLog
	reader := openClient(t, ts, "log", clientOptions{mutator: logMutator{}, dial: wire.Dial})
	writer := openClient(t, ts, "log", clientOptions{mutator: logMutator{}})
	if _, err := writer.Mutate(context.Background(), "grow", []byte("500")); err != nil {
		t.Fatal(err)
	}
	doc := waitConverged(t, ts, "log", reader, writer)
	lsn := reader.Status().LSN

	before, _ := ts.coordinatorBytes(t, "log")
	since := wire.Len()
	if _, err := writer.Mutate(context.Background(), "append", []byte("small")); err != nil {
		t.Fatal(err)
	}
	after := waitConverged(t, ts, "log", reader, writer)

	// The pages the commit changed: the store's index of the one commit
	// after lsn, which must cover every page whose bytes changed.
	var changed []uint32
	ts.coordinator(t, "log", func(c *engine.Coordinator) {
		if got, want := c.LSN(), lsn+1; got != want {
			t.Fatalf("coordinator LSN: got %v, want %v", got, want)
		}
		changed = c.Database().Store().ChangedSince(lsn)
	})
	for no := uint32(1); int(no)*vfs.PageSize <= len(after); no++ {
		page := after[int(no-1)*vfs.PageSize : int(no)*vfs.PageSize]
		if int(no)*vfs.PageSize > len(before) || !bytes.Equal(page, before[int(no-1)*vfs.PageSize:int(no)*vfs.PageSize]) {
			if !slices.Contains(changed, no) {
				t.Fatalf("page %d changed but is not among the commit's pages %v", no, changed)
			}
		}
	}
	diffs := wire.Diffs(since)
	if got, want := len(diffs), 1; got != want {
		t.Fatalf("diffs for one commit: got %v, want %v", got, want)
	}
	d := diffs[0]
	t.Logf("document of %d pages; the commit changed pages %v; the diff carried %v", len(doc)/vfs.PageSize, changed, d.Pages)
	if d.From != lsn || d.To != lsn+1 {
		t.Fatalf("diff range: got %d..%d, want %d..%d", d.From, d.To, lsn, lsn+1)
	}
	if !slices.Equal(d.Pages, changed) {
		t.Fatalf("diff pages: got %v, want the commit's %v", d.Pages, changed)
	}
	if n := len(d.Pages); n < 1 || n > 3 {
		t.Fatalf("diff of a one-row insert carries %d pages, want 1 to 3", n)
	}
	if got, want := d.PageCount, uint32(len(after)/vfs.PageSize); got != want {
		t.Fatalf("diff page count: got %v, want %v", got, want)
	}
}

// TestShutdownTellsClients: closing the server sends every replica a
// shutdown notice, and the replicas reconnect to a new server on the same
// data directory.
func TestShutdownTellsClients(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, Config{DataDir: dir})
	d := openClient(t, ts, "doc", clientOptions{})
	mutate(t, d, "add", testmutator.Args{ID: "a", Title: "A"})
	waitSynced(t, d)
	// Watch the status events, not Status(): the replica's next dial
	// ("connection refused") soon overwrites LastError.
	saw := make(chan struct{})
	var once sync.Once
	stop := d.Watch(func(e client.Event) {
		if e.Status != nil && e.Status.State != client.Online && strings.Contains(e.Status.LastError, "shutdown") {
			once.Do(func() { close(saw) })
		}
	})
	defer stop()
	if err := ts.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-saw:
	case <-time.After(testTimeout):
		t.Fatalf("the replica never reported the shutdown; status now %+v", d.Status())
	}
}
