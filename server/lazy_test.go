package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// lazyDoc starts a coordinator whose document "doc" has table big
// (lazySchema) with rows 1..n, and returns it with a whole replica,
// synced, that wrote them.
func lazyDoc(t *testing.T, n int) (*testServer, *client.Doc) {
	t.Helper()
	ts := startServer(t, Config{Mutator: func(string) engine.Mutator { return testmutator.SQL{} }})
	w := openClient(t, ts, "doc", clientOptions{mutator: testmutator.SQL{}})
	lazyExec(t, w, lazySchema)
	for done := 0; done < n; done += 4000 {
		lazyExec(t, w, fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO big(id, k, body) SELECT i, i * 7919 %% 1000003, randomblob(%d) FROM n`, done+1, min(done+4000, n), 1000))
	}
	waitSynced(t, w)
	return ts, w
}

// lazySchema is internal/bigdoc's table (that package imports this one).
const lazySchema = `CREATE TABLE big(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX big_k ON big(k)`

func lazyExec(t *testing.T, d *client.Doc, sql string) {
	t.Helper()
	if _, err := d.Mutate(context.Background(), "exec", testmutator.SQLArgs{SQL: sql}.Encode()); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func lazyStats(t *testing.T, d *client.Doc) client.LazyStats {
	t.Helper()
	st, ok := d.LazyStats()
	if !ok {
		t.Fatal("the replica is not lazy")
	}
	if st.CachedBytes > st.CacheBytes {
		t.Fatalf("the cache holds %d bytes, over its bound of %d", st.CachedBytes, st.CacheBytes)
	}
	return st
}

// TestLazyReplica: a replica opened lazily on a document of ~4800 pages
// answers an indexed point query with under 1% of the pages fetched; its
// cache stays within its bound through a seeded mix of queries whose
// results equal a whole replica's; another client's write to a page it
// holds reaches it by diff (no fetch); its own mutations work; offline it
// answers from the pages it holds and fails clearly, recording nothing,
// for pages it lacks.
func TestLazyReplica(t *testing.T) {
	const rows = 16000
	ts, w := lazyDoc(t, rows)
	const cache = 1 << 20
	lz := openClient(t, ts, "doc", clientOptions{mutator: testmutator.SQL{}, lazyCache: cache})
	waitSynced(t, lz)
	pages := w.Engine().Database().Store().PageCount()

	k := 1234 * 7919 % 1000003
	q := `SELECT id, length(body) FROM big WHERE k = ?`
	if got, want := queryString(t, lz, q, k), "[[1234 1000]]"; got != want {
		t.Fatalf("point query: %s, want %s", got, want)
	}
	st := lazyStats(t, lz)
	t.Logf("point query on %d pages: %d fetches, %d pages", pages, st.Fetches, st.PagesFetched)
	if st.PagesFetched*100 > int(pages) {
		t.Fatalf("a point query fetched %d of %d pages, over 1%%", st.PagesFetched, pages)
	}

	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	for i := range 60 {
		var sql string
		var args []any
		switch i % 4 {
		case 0:
			sql, args = `SELECT id, hex(substr(body, 1, 8)) FROM big WHERE k = ?`, []any{rng.IntN(rows) * 7919 % 1000003}
		case 1:
			a := 1 + rng.IntN(rows)
			sql, args = `SELECT count(*), sum(k), hex(substr(max(body), 1, 4)) FROM big WHERE id BETWEEN ? AND ?`, []any{a, a + rng.IntN(500)}
		case 2:
			sql, args = `SELECT id FROM big WHERE k BETWEEN ? AND ? ORDER BY k LIMIT 20`, []any{rng.IntN(1000003), 1000003}
		default:
			sql = `SELECT count(*), max(k), min(k) FROM big`
		}
		if got, want := queryString(t, lz, sql, args...), queryString(t, w, sql, args...); got != want {
			t.Fatalf("query %d (%s %v): lazy %s, whole %s", i, sql, args, got, want)
		}
		lazyStats(t, lz)
	}
	st = lazyStats(t, lz)
	t.Logf("after the query mix: %+v", st)
	if st.Evicted == 0 || st.Prefetched == 0 {
		t.Fatalf("the mix neither evicted nor prefetched: %+v", st)
	}

	// Another client's write to a page the lazy replica holds comes in
	// its diff: reading it again fetches nothing. (By rowid: the table's
	// interior pages stay cached, and its leaf is the page written.)
	byID := `SELECT length(body) FROM big WHERE id = 1234`
	queryString(t, lz, byID)
	lazyExec(t, w, `UPDATE big SET body = zeroblob(900) WHERE id = 1234`)
	waitSynced(t, w)
	waitFor(t, "the lazy replica catches up", func() bool { return lz.Status().LSN == w.Status().LSN })
	// (The rebase read the clients table, which the mix may have evicted:
	// count from here.)
	queryString(t, lz, `SELECT 1`)
	before := lazyStats(t, lz).Fetches
	if got, want := queryString(t, lz, byID), "[[900]]"; got != want {
		t.Fatalf("after another client's write: %s, want %s", got, want)
	}
	if after := lazyStats(t, lz).Fetches; after != before {
		t.Fatalf("reading the changed row fetched %d times: the diff did not carry its page", after-before)
	}

	// The lazy replica mutates: the coordinator and the whole replica
	// see it.
	lazyExec(t, lz, `INSERT INTO big(id, k, body) VALUES (100001, 7, x'01')`)
	waitSynced(t, lz)
	waitFor(t, "the lazy replica's mutation reaches the whole one", func() bool { return queryString(t, w, `SELECT count(*) FROM big WHERE id = 100001`) == "[[1]]" })

	// Offline: held pages answer, others fail clearly.
	lz.SetOnline(false)
	waitFor(t, "the lazy replica goes offline", func() bool { return lz.Status().State == client.Offline })
	if got, want := queryString(t, lz, byID), "[[900]]"; got != want {
		t.Fatalf("offline, a held row: %s, want %s", got, want)
	}
	far := 15999 * 7919 % 1000003
	if _, err := lz.Query(context.Background(), q, far); !errors.Is(err, vfs.ErrOffline) {
		t.Fatalf("offline, a row on pages not held: %v, want vfs.ErrOffline", err)
	}
	pending := lz.Status().Pending
	_, err := lz.Mutate(context.Background(), "exec", testmutator.SQLArgs{SQL: fmt.Sprintf(`UPDATE big SET body = x'02' WHERE k = %d`, far)}.Encode())
	if !errors.Is(err, vfs.ErrOffline) {
		t.Fatalf("offline, a mutation on pages not held: %v, want vfs.ErrOffline", err)
	}
	if got := lz.Status().Pending; got != pending {
		t.Fatalf("the failed mutation was recorded: %d pending, want %d", got, pending)
	}
	lz.SetOnline(true)
	waitSynced(t, lz)
	if got, want := queryString(t, lz, q, far), "[[15999 1000]]"; got != want {
		t.Fatalf("back online, the far row: %s, want %s", got, want)
	}
	if got := ts.counterWith(t, "sqlsync_lazy_pages_total", "outcome", "sent"); got < float64(lazyStats(t, lz).PagesFetched) {
		t.Fatalf("the coordinator counts %v pages sent, the replica received %d", got, lazyStats(t, lz).PagesFetched)
	}
}

// TestLazyReplicaUnderWrites: while another client rewrites rows as fast
// as it can, a lazy replica with a small cache answers point queries
// without an error (a page that changed after its snapshot is fetched
// again once the diff is in: the coordinator's count of stale pages says
// how often), and once both are synced its answers equal the whole
// replica's.
func TestLazyReplicaUnderWrites(t *testing.T) {
	const rows = 8000
	ts, w := lazyDoc(t, rows)
	lz := openClient(t, ts, "doc", clientOptions{mutator: testmutator.SQL{}, lazyCache: 256 << 10})
	waitSynced(t, lz)
	rng := rand.New(rand.NewPCG(testSeed(t), 1))
	ctx, cancel := context.WithCancel(context.Background())
	writes := make(chan error, 1)
	go func() {
		r := rand.New(rand.NewPCG(rng.Uint64(), 2))
		for ctx.Err() == nil {
			sql := fmt.Sprintf(`UPDATE big SET body = randomblob(%d) WHERE id BETWEEN %d AND %d`, 900+r.IntN(100), 1+r.IntN(rows), rows)
			if _, err := w.Mutate(ctx, "exec", testmutator.SQLArgs{SQL: sql + ` AND id % 97 = 0`}.Encode()); err != nil && ctx.Err() == nil {
				writes <- err
				return
			}
		}
		writes <- nil
	}()
	q := `SELECT id, length(body) FROM big WHERE k = ?`
	for range 300 {
		id := 1 + rng.IntN(rows)
		rows, err := lz.Query(context.Background(), q, id*7919%1000003)
		if err != nil {
			cancel()
			t.Fatalf("point query for id %d during writes: %v", id, err)
		}
		if len(rows.Values) != 1 || fmt.Sprint(rows.Values[0][0]) != fmt.Sprint(id) {
			cancel()
			t.Fatalf("point query for id %d during writes: %v", id, rows.Values)
		}
	}
	cancel()
	if err := <-writes; err != nil {
		t.Fatal(err)
	}
	waitSynced(t, w)
	waitFor(t, "the lazy replica catches up", func() bool { return lz.Status().LSN == w.Status().LSN })
	sum := `SELECT count(*), sum(length(body)), hex(substr(max(body), 1, 8)) FROM big WHERE id BETWEEN 1000 AND 3000`
	if got, want := queryString(t, lz, sum), queryString(t, w, sum); got != want {
		t.Fatalf("after the writes: lazy %s, whole %s", got, want)
	}
	t.Logf("pages sent %v, stale %v; replica %+v", ts.counterWith(t, "sqlsync_lazy_pages_total", "outcome", "sent"),
		ts.counterWith(t, "sqlsync_lazy_pages_total", "outcome", "stale"), lazyStats(t, lz))
}

// TestLazyProtocol checks the coordinator's side of the lazy protocol on
// raw connections: the first diff carries page 1 and no other page; a
// page request is answered with the pages, which later diffs then carry
// when they change; pages changed since the request's LSN come back stale
// with the document's LSN; and the refusals (no lazy capability, an LSN
// the connection was never sent, too many requests waiting).
func TestLazyProtocol(t *testing.T) {
	ts, w := lazyDoc(t, 2000)
	hello := func(id string, caps ...string) protocol.Frame {
		return protocol.Frame{Hello: &protocol.Hello{Version: protocol.Version, DocID: "doc", ClientID: id, Capabilities: caps}}
	}
	nextDiff := func(c *servertest.RawConn) *protocol.Diff {
		t.Helper()
		for {
			if f := c.Next(); f.Diff != nil {
				return f.Diff
			}
		}
	}
	nextReply := func(c *servertest.RawConn) *protocol.PageReply {
		t.Helper()
		for {
			if f := c.Next(); f.PageReply != nil {
				return f.PageReply
			}
		}
	}

	c := dialRaw(t, ts)
	c.Send(hello("lazy-raw", protocol.CapLazy))
	if wel := c.ExpectWelcome(); !protocol.HasCapability(wel.Capabilities, protocol.CapLazy) {
		t.Fatalf("welcome grants %v, not lazy", wel.Capabilities)
	}
	d := nextDiff(c)
	if d.From != 0 || d.PageCount < 500 || len(d.Pages) != 1 || d.Pages[0].No != 1 || d.More {
		t.Fatalf("first lazy diff: from %d to %d, %d pages of %d (first %v)", d.From, d.To, len(d.Pages), d.PageCount, d.Pages[:min(1, len(d.Pages))])
	}
	at := d.To
	var whole []byte
	ts.coordinator(t, "doc", func(co *engine.Coordinator) { whole, _ = co.Database().Bytes() })
	want := []uint32{2, 3, 400}
	c.Send(protocol.Frame{PageRequest: &protocol.PageRequest{ID: 7, LSN: at, Pages: want}})
	r := nextReply(c)
	if r.ID != 7 || len(r.Stale) != 0 || len(r.Pages) != len(want) {
		t.Fatalf("reply: id %d, %d pages, stale %v", r.ID, len(r.Pages), r.Stale)
	}
	for i, p := range r.Pages {
		if p.No != want[i] || !bytes.Equal(p.Data, whole[(p.No-1)*protocol.PageSize:p.No*protocol.PageSize]) {
			t.Fatalf("reply page %d is not the coordinator's page %d", p.No, want[i])
		}
	}

	// A change to held page 3 (the table's root, say) and to others: the
	// next diff carries the held ones only.
	lazyExec(t, w, `UPDATE big SET body = zeroblob(10) WHERE id % 50 = 0`)
	waitSynced(t, w)
	d = nextDiff(c)
	var changed []uint32
	ts.coordinator(t, "doc", func(co *engine.Coordinator) { changed = co.Database().Store().ChangedSince(at) })
	for _, p := range d.Pages {
		if p.No != 1 && !slices.Contains(want, p.No) {
			t.Fatalf("the diff carries page %d, which the replica does not hold", p.No)
		}
	}
	if len(changed) <= len(d.Pages) {
		t.Fatalf("%d pages changed and the diff carries %d: nothing was left out", len(changed), len(d.Pages))
	}
	// Asking as of the old LSN: the pages changed since are stale.
	stalePage := changed[len(changed)-1]
	c.Send(protocol.Frame{PageRequest: &protocol.PageRequest{ID: 8, LSN: at, Pages: []uint32{stalePage}}})
	if r := nextReply(c); len(r.Pages) != 0 || !slices.Equal(r.Stale, []uint32{stalePage}) || r.LSN != d.To {
		t.Fatalf("request at the old LSN %d: %d pages, stale %v at LSN %d, want page %d stale at %d", at, len(r.Pages), r.Stale, r.LSN, stalePage, d.To)
	}

	// Refusals.
	full := dialRaw(t, ts)
	full.Send(hello("not-lazy"))
	full.ExpectWelcome()
	full.Send(protocol.Frame{PageRequest: &protocol.PageRequest{ID: 1, Pages: []uint32{1}}})
	full.ExpectClose(protocol.CodeBadRequest, "got page_request")

	ahead := dialRaw(t, ts)
	ahead.Send(hello("lazy-ahead", protocol.CapLazy))
	ahead.ExpectWelcome()
	ahead.Send(protocol.Frame{PageRequest: &protocol.PageRequest{ID: 1, LSN: d.To + 5, Pages: []uint32{1}}})
	ahead.ExpectClose(protocol.CodeBadRequest, "page request at LSN")

	flood := dialRaw(t, ts)
	flood.Send(hello("lazy-flood", protocol.CapLazy))
	flood.ExpectWelcome()
	nos := make([]uint32, protocol.MaxPagesPerRequest)
	for i := range nos {
		nos[i] = uint32(i + 1)
	}
	// The writer may drain some: send until the queue overflows.
	for i := range 64 * maxPageRequests {
		b, err := protocol.Encode(protocol.Frame{PageRequest: &protocol.PageRequest{ID: uint64(i + 1), LSN: 0, Pages: nos}})
		if err != nil {
			t.Fatal(err)
		}
		if flood.WS.WriteMessage(websocket.BinaryMessage, b) != nil {
			break // closed: the Close frame says why
		}
	}
	flood.ExpectClose(protocol.CodeLimit, "page requests waiting")
}

// eventLoopSQL is testmutator.SQL as if it ran on the browser's
// WebAssembly engine, where a read inside a mutator call cannot wait for
// the network (engine.EventLoopMutator).
type eventLoopSQL struct{ testmutator.SQL }

func (eventLoopSQL) InEventLoop() bool { return true }

// TestLazyReplicaEventLoopMutator: a lazy replica whose mutator must not
// wait inside its calls still runs mutations on pages it lacks: each
// missing page fails the call at once, is fetched outside it, and the
// mutation runs again, until it has every page it reads; pending
// mutations replayed after a rebase do the same.
func TestLazyReplicaEventLoopMutator(t *testing.T) {
	const rows = 8000
	ts, w := lazyDoc(t, rows)
	lz := openClient(t, ts, "doc", clientOptions{mutator: eventLoopSQL{}, lazyCache: 1 << 20})
	waitSynced(t, lz)
	before := lazyStats(t, lz).Fetches
	for _, id := range []int{17, 4321, 7999} {
		lazyExec(t, lz, fmt.Sprintf(`UPDATE big SET body = x'0304' WHERE k = %d`, id*7919%1000003))
	}
	if got := queryString(t, lz, `SELECT id, hex(body) FROM big WHERE id IN (17, 4321, 7999) ORDER BY id`); got != "[[17 0304] [4321 0304] [7999 0304]]" {
		t.Fatalf("the lazy replica's own mutations: %s", got)
	}
	st := lazyStats(t, lz)
	_, reruns := lz.Engine().Reruns()
	if st.Fetches-before < 6 || reruns < 6 {
		t.Fatalf("the mutations fetched %d times and ran again %d times: their pages were not fetched between attempts", st.Fetches-before, reruns)
	}
	waitSynced(t, lz)
	waitFor(t, "the whole replica sees the lazy one's mutations", func() bool {
		return queryString(t, w, `SELECT count(*) FROM big WHERE hex(body) = '0304'`) == "[[3]]"
	})
	// Offline, a mutation's pending replay over another client's change
	// needs pages it lacks: back online, the rebase replays it.
	lz.SetOnline(false)
	waitFor(t, "the lazy replica goes offline", func() bool { return lz.Status().State == client.Offline })
	lazyExec(t, lz, `UPDATE big SET body = x'05' WHERE id = 4321`)
	lazyExec(t, w, `UPDATE big SET body = x'06' WHERE id BETWEEN 4000 AND 4600`)
	waitSynced(t, w)
	lz.SetOnline(true)
	waitSynced(t, lz)
	if got := queryString(t, lz, `SELECT hex(body) FROM big WHERE id IN (4320, 4321) ORDER BY id`); got != "[[06] [05]]" {
		t.Fatalf("after the rebase: %s, want the other client's 06 and the replica's own 05 over it", got)
	}
	if got := lz.LocalFailures(); len(got) != 0 {
		t.Fatalf("local failures: %+v", got)
	}
}
