package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/engine"
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
