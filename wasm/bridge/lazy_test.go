package bridge

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

func init() {
	RegisterMutator("sql", func(context.Context, Config) (engine.Mutator, error) { return testmutator.SQL{}, nil })
}

// TestLazy: a document opened with Lazy answers from pages it fetches,
// within CacheBytes, and reports them as JSON; a whole replica reports
// null; offline, a statement that needs a page it lacks fails with code
// offline; a lazy document over an IndexedDB-like Store and PendingLog, or
// with a negative cacheBytes, is refused with bad_request.
func TestLazy(t *testing.T) {
	url := startCoordinator(t, testmutator.SQL{})
	ctx := context.Background()
	openDoc := func(cfg Config) *Doc {
		t.Helper()
		cfg.URL, cfg.DocID, cfg.Mutator = url, "doc", "sql"
		d, err := Open(ctx, cfg, State{Kind: "memory"}, slog.New(slog.DiscardHandler), func([]byte) {})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	synced := func(d *Doc) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			var st Status
			if err := json.Unmarshal(d.Status(), &st); err != nil {
				t.Fatal(err)
			}
			if st.Synced {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not synced: %+v", st)
			}
		}
	}

	whole := openDoc(Config{})
	sql := `CREATE TABLE big(id INTEGER PRIMARY KEY, body BLOB NOT NULL);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO big SELECT i, randomblob(1000) FROM n`
	if _, err := whole.Mutate(ctx, "exec", testmutator.SQLArgs{SQL: sql}.Encode()); err != nil {
		t.Fatal(err)
	}
	synced(whole)
	if got := string(whole.LazyStats()); got != "null" {
		t.Fatalf("a whole replica's lazy stats: %s, want null", got)
	}

	const cache = 512 << 10
	lazy := openDoc(Config{Lazy: true, CacheBytes: cache})
	synced(lazy)
	q := `SELECT id, length(body) FROM big WHERE id = ?`
	for _, id := range []string{"1", "1000", "2000", "1000"} {
		want, err := whole.Query(ctx, q, []byte("["+id+"]"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := lazy.Query(ctx, q, []byte("["+id+"]"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("row %s: lazy %s, whole %s", id, got, want)
		}
	}
	if _, err := lazy.Query(ctx, `SELECT count(*), sum(length(body)) FROM big`, nil); err != nil {
		t.Fatal(err)
	}
	var st LazyStats
	if err := json.Unmarshal(lazy.LazyStats(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Fetches == 0 || st.PagesFetched == 0 || st.Evicted == 0 || st.CacheBytes != cache || st.CachedBytes > cache || st.CachedPages == 0 {
		t.Fatalf("lazy stats after reading every row within a cache of %d bytes: %+v", cache, st)
	}

	// Offline, a statement that needs pages the replica lacks fails with
	// code offline.
	lazy.SetOnline(false)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var st Status
		if err := json.Unmarshal(lazy.Status(), &st); err != nil {
			t.Fatal(err)
		}
		if st.State == "offline" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s after SetOnline(false)", st.State)
		}
	}
	if _, err := lazy.Query(ctx, `SELECT sum(length(body)) FROM big`, nil); code(err) != "offline" {
		t.Fatalf("offline, a scan of pages not held: %v (code %q), want offline", err, code(err))
	}

	store, log := memstore.New(), pendinglog.NewMemory(pendinglog.NewClientID())
	if _, err := Open(ctx, Config{DocID: "doc", Lazy: true}, State{Store: store, Log: log, Kind: "indexeddb"}, nil, func([]byte) {}); code(err) != "bad_request" {
		t.Fatalf("lazy over a Store and PendingLog: %v (code %q), want bad_request", err, code(err))
	}
	if _, err := Open(ctx, Config{DocID: "doc", Lazy: true, CacheBytes: -1}, State{Kind: "memory"}, nil, func([]byte) {}); code(err) != "bad_request" {
		t.Fatalf("lazy with cacheBytes -1: %v (code %q), want bad_request", err, code(err))
	}
}
