// Package lazyprobe opens a lazy replica (client.Options.Lazy) of a
// document filled by internal/bigdoc and times what a person waits for:
// the open to the first row of an indexed point query, a mix of random
// point queries, and a range scan larger than the replica's cache, with
// the pages each fetched and the process's memory. Command
// bench/cmd/sqlsync-lazy runs it as a process of its own, so that its
// memory is a client's alone; benchmark scenario 13 (lazy) runs that
// command against a `sqlsync serve` process.
package lazyprobe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
)

// PointQuery is the indexed point query: one row of big by its k.
const PointQuery = `SELECT id, length(body) FROM big WHERE k = ?`

// ScanQuery reads the rows of big with ids in a range.
const ScanQuery = `SELECT count(*), sum(length(body)) FROM big WHERE id BETWEEN ? AND ?`

// kMod is internal/bigdoc's modulus: row id has k = id*7919 mod kMod.
const kMod = 1000003

// Config says what to open and what to run.
type Config struct {
	URL        string // the coordinator's sync endpoint
	Doc        string // the document (table big, internal/bigdoc)
	Rows       int64  // rows in big: ids 1..Rows
	BodyBytes  int64  // the length of each row's body
	CacheBytes int64  // client.Options.CacheBytes
	Queries    int    // point queries in the mix after the first
	ScanRows   int64  // rows of the range scan; 0: no scan
	Seed       uint64 // picks the ids
	// Exec is when the parent started this process, by the wall clock;
	// zero leaves Result.ExecToFirstRow unmeasured.
	Exec time.Time
	// Timeout bounds the whole probe.
	Timeout time.Duration
}

// Counts are lazy-replica counts over a phase (client.LazyStats).
type Counts struct {
	Fetches      int `json:"fetches"`       // page requests: round trips to the coordinator
	PagesFetched int `json:"pages_fetched"` // pages received
	Prefetched   int `json:"prefetched"`    // of them, siblings not asked for yet
	Stale        int `json:"stale"`         // misses of pages changed since the replica's LSN
	Evicted      int `json:"evicted"`       // pages dropped to stay within the bound
}

func counts(after, before client.LazyStats) Counts {
	return Counts{
		Fetches:      after.Fetches - before.Fetches,
		PagesFetched: after.PagesFetched - before.PagesFetched,
		Prefetched:   after.Prefetched - before.Prefetched,
		Stale:        after.Stale - before.Stale,
		Evicted:      after.Evicted - before.Evicted,
	}
}

// Result is what a probe measured; durations in milliseconds, memory in
// bytes.
type Result struct {
	// ExecToFirstRow is from the parent's exec to the first row (0 if
	// Config.Exec was zero).
	ExecToFirstRow float64 `json:"exec_to_first_row_ms"`
	// OpenToFirstRow is from client.Open to the first row of the point
	// query: Open, the connection and Welcome (Synced), the query.
	OpenToFirstRow float64 `json:"open_to_first_row_ms"`
	OpenReturned   float64 `json:"open_returned_ms"` // client.Open returned
	Synced         float64 `json:"synced_ms"`        // WaitSynced returned
	// Open counts the fetches before the first query (Open, Welcome);
	// Point those of the first point query.
	Open    Counts `json:"open"`
	Point   Counts `json:"point"`
	PointID int64  `json:"point_id"`
	// Mix is the duration of each point query of the mix, MixCounts what
	// they fetched in all, MixCached the cache's bytes after them.
	Mix       []float64 `json:"mix_ms"`
	MixCounts Counts    `json:"mix_counts"`
	MixCached int64     `json:"mix_cached_bytes"`
	// Scan is the range scan: its duration, rows, counts and the cache's
	// bytes after it (0s with no scan).
	ScanMS     float64 `json:"scan_ms"`
	ScanRows   int64   `json:"scan_rows"`
	ScanCounts Counts  `json:"scan_counts"`
	ScanCached int64   `json:"scan_cached_bytes"`
	// MaxCached is the most bytes the cache held after any statement;
	// CacheBytes its bound; DocPages the document's pages.
	MaxCached  int64 `json:"max_cached_bytes"`
	CacheBytes int64 `json:"cache_bytes"`
	DocPages   int64 `json:"doc_pages"`
	// RSSBefore is VmRSS just before Open, with the peak reset to it
	// (PeakNote says why not, if not); PeakAfterPoint, PeakAfterMix and
	// PeakAfterScan are VmHWM after each phase.
	RSSBefore      int64  `json:"rss_before"`
	PeakAfterPoint int64  `json:"peak_after_point"`
	PeakAfterMix   int64  `json:"peak_after_mix"`
	PeakAfterScan  int64  `json:"peak_after_scan"`
	PeakNote       string `json:"peak_note,omitempty"`
	// HeapBefore and HeapAfter are the Go heap in use (after a GC) before
	// Open and after the last phase, with the replica open.
	HeapBefore int64 `json:"heap_before"`
	HeapAfter  int64 `json:"heap_after"`
}

// Run opens a lazy replica of cfg.Doc at cfg.URL and measures it; the
// replica keeps its state in memory and is closed at the end.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if cfg.Rows <= 0 || cfg.URL == "" || cfg.Doc == "" {
		return res, errors.New("lazy probe: needs a URL, a document and its rows")
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1a2b))
	pick := func() (id, k int64) {
		id = 1 + rng.Int64N(cfg.Rows)
		return id, id * 7919 % kMod
	}
	var track trackCache

	// The memory before: a heap collected and returned, the peak reset.
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapBefore = int64(ms.HeapInuse)
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		res.PeakNote = fmt.Sprintf("/proc/self/clear_refs could not be written (%v): the peaks count from the process's start", err)
	}
	if res.RSSBefore, err = procSelf("VmRSS"); err != nil {
		return res, err
	}

	t0 := time.Now()
	doc, err := client.Open(ctx, client.Options{
		URL: cfg.URL, DocID: cfg.Doc, Lazy: true, CacheBytes: cfg.CacheBytes,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return res, fmt.Errorf("lazy probe: %w", err)
	}
	defer func() {
		if cerr := doc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("lazy probe: close: %w", cerr)
		}
	}()
	res.OpenReturned = msSince(t0)
	if err := doc.WaitSynced(ctx); err != nil {
		return res, fmt.Errorf("lazy probe: %w", err)
	}
	res.Synced = msSince(t0)
	st0 := stats(doc)
	res.CacheBytes = st0.CacheBytes
	id, k := pick()
	if err := point(ctx, doc, cfg, id, k); err != nil {
		return res, err
	}
	res.OpenToFirstRow = msSince(t0)
	if !cfg.Exec.IsZero() {
		res.ExecToFirstRow = float64(time.Since(cfg.Exec)) / float64(time.Millisecond)
	}
	res.PointID = id
	st1 := stats(doc)
	track.see(st1)
	res.Open, res.Point = counts(st0, client.LazyStats{}), counts(st1, st0)
	if res.PeakAfterPoint, err = procSelf("VmHWM"); err != nil {
		return res, err
	}

	for range cfg.Queries {
		id, k := pick()
		t := time.Now()
		if err := point(ctx, doc, cfg, id, k); err != nil {
			return res, err
		}
		res.Mix = append(res.Mix, msSince(t))
		track.see(stats(doc))
	}
	st2 := stats(doc)
	res.MixCounts, res.MixCached = counts(st2, st1), st2.CachedBytes
	if res.PeakAfterMix, err = procSelf("VmHWM"); err != nil {
		return res, err
	}

	res.PeakAfterScan = res.PeakAfterMix
	if cfg.ScanRows > 0 {
		n := min(cfg.ScanRows, cfg.Rows)
		lo := 1 + rng.Int64N(cfg.Rows-n+1)
		t := time.Now()
		rows, err := doc.Query(ctx, ScanQuery, lo, lo+n-1)
		if err != nil {
			return res, fmt.Errorf("lazy probe: scan of %d rows: %w", n, err)
		}
		res.ScanMS = msSince(t)
		if got, want := fmt.Sprint(rows.Values), fmt.Sprintf("[[%d %d]]", n, n*cfg.BodyBytes); cfg.BodyBytes > 0 && got != want {
			return res, fmt.Errorf("lazy probe: scan of ids %d..%d: %s, want %s", lo, lo+n-1, got, want)
		}
		st3 := stats(doc)
		track.see(st3)
		res.ScanRows, res.ScanCounts, res.ScanCached = n, counts(st3, st2), st3.CachedBytes
		if res.PeakAfterScan, err = procSelf("VmHWM"); err != nil {
			return res, err
		}
	}
	res.MaxCached = track.max

	if rows, err := doc.Query(ctx, `PRAGMA page_count`); err == nil && len(rows.Values) == 1 {
		res.DocPages, _ = rows.Values[0][0].(int64)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.HeapAfter = int64(ms.HeapInuse)
	return res, nil
}

// point runs PointQuery for k and checks that row id is among its rows
// (ids k apart by kMod share k), with a body of cfg.BodyBytes.
func point(ctx context.Context, doc *client.Doc, cfg Config, id, k int64) error {
	rows, err := doc.Query(ctx, PointQuery, k)
	if err != nil {
		return fmt.Errorf("lazy probe: point query k = %d: %w", k, err)
	}
	for _, r := range rows.Values {
		if len(r) == 2 && r[0] == id && (cfg.BodyBytes == 0 || r[1] == cfg.BodyBytes) {
			return nil
		}
	}
	return fmt.Errorf("lazy probe: point query k = %d: %v, want the row of id %d", k, rows.Values, id)
}

func stats(doc *client.Doc) client.LazyStats {
	st, _ := doc.LazyStats()
	return st
}

// trackCache keeps the most bytes the cache held.
type trackCache struct{ max int64 }

func (t *trackCache) see(st client.LazyStats) { t.max = max(t.max, st.CachedBytes) }

func msSince(t time.Time) float64 { return float64(time.Since(t)) / float64(time.Millisecond) }

// procSelf returns field (VmRSS, VmHWM) of this process, in bytes.
func procSelf(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("lazy probe: memory: %w", err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("lazy probe: memory: no %s in /proc/self/status", field)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10, nil
}
