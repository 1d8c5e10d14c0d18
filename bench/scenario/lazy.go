package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sqlsync-go/sqlsync/bench/lazyprobe"
	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/internal/bigdoc"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// LazyConfig tunes scenario 13, which runs on scenario 12's documents
// (Download.Sizes).
type LazyConfig struct {
	// Runs is the number of lazy opens timed of each size, each a new
	// process with a new replica.
	Runs int
	// CacheMiB is the replica's cache bound (client.Options.CacheBytes).
	CacheMiB int
	// Queries is the number of random point queries in the mix after the
	// first one.
	Queries int
	// ScanMiB is the size, in MiB of the document, of the range scan
	// after the mix (more than the cache, to press on its bound); 0: no
	// scan.
	ScanMiB int
	// Binary is the sqlsync-lazy command (bench/cmd/sqlsync-lazy); empty
	// builds it with the go command.
	Binary string
}

func (c *LazyConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.Runs, "lazy.runs", c.Runs, "scenario 13: lazy opens timed of each size, a process each")
	fs.IntVar(&c.CacheMiB, "lazy.cache", c.CacheMiB, "scenario 13: the lazy replica's cache bound in MiB")
	fs.IntVar(&c.Queries, "lazy.queries", c.Queries, "scenario 13: random point queries in the mix after the first")
	fs.IntVar(&c.ScanMiB, "lazy.scan", c.ScanMiB, "scenario 13: MiB of rows the range scan after the mix reads (0: none)")
	fs.StringVar(&c.Binary, "lazy.binary", c.Binary, "scenario 13: the sqlsync-lazy `command` (default: build ./bench/cmd/sqlsync-lazy)")
}

// lazyPackage is the Go package of the lazy replica's probe command.
const lazyPackage = "github.com/sqlsync-go/sqlsync/bench/cmd/sqlsync-lazy"

// runLazy is scenario 13: a lazy replica's open of a large document (the
// documents of scenario 12, filled the same way and served by a `sqlsync
// serve` process), measured beside the whole replica's first sync of the
// same document in the same run. Run with scenario 12 it adds nothing:
// scenario 12's run measures it on its own documents, so that they are
// filled once. Alone, it fills and serves them itself and times the first
// syncs it compares with, but records only its own rows.
func runLazy(ctx context.Context, e *env) ([]report.Record, error) {
	if e.also["download"] {
		return nil, nil
	}
	return runLargeDocs(ctx, e, false, true)
}

// firstSync is what scenario 12 measured of a document's first sync,
// that scenario 13 compares with.
type firstSync struct {
	took  time.Duration // median, exec to exit
	alone time.Duration // took minus the same command on the synced tiny document
	runs  int
}

// secs converts seconds to a Duration.
func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// lazyRunner runs the lazy opens of scenario 13, each a process of
// bench/cmd/sqlsync-lazy.
type lazyRunner struct {
	ctx context.Context
	bin string
	env []string
	cfg LazyConfig
}

// newLazyRunner builds the probe command into dir (or takes
// -lazy.binary).
func newLazyRunner(ctx context.Context, e *env, dir string, childEnv []string) (*lazyRunner, error) {
	cfg := e.cfg.Lazy
	bin := cfg.Binary
	if bin == "" {
		bin = filepath.Join(dir, "sqlsync-lazy")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, lazyPackage)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %w\n%s", lazyPackage, err, msg)
		}
	}
	return &lazyRunner{ctx: ctx, bin: bin, env: childEnv, cfg: cfg}, nil
}

// lazyRun is one lazy open, as the probe and this process saw it.
type lazyRun struct {
	lazyprobe.Result
	coordGrowth int64 // the coordinator's peak RSS growth during it
}

// size measures the lazy opens of the document "big" of size MiB, with
// rows rows in docBytes bytes, served at url by the coordinator process
// pid, and returns scenario 13's records; whole is the first sync of the
// same document in the same run.
func (l *lazyRunner) size(url string, pid, size int, rows, docBytes int64, whole firstSync) ([]report.Record, error) {
	syncURL := "ws" + strings.TrimPrefix(url, "http") + server.SyncPath
	cacheBytes := int64(max(l.cfg.CacheMiB, 1)) << 20
	scanRows := int64(0)
	if l.cfg.ScanMiB > 0 {
		scanRows = max(int64(l.cfg.ScanMiB)<<20*rows/docBytes, 1)
	}
	var runs []lazyRun
	clearNote := ""
	for i := range max(l.cfg.Runs, 1) {
		field := "VmHWM"
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			field = "VmRSS"
			clearNote = fmt.Sprintf("; clear_refs could not be written (%v), so the coordinator's growth is VmHWM since it started minus VmRSS before", err)
		}
		before, err := procStatus(pid, field)
		if err != nil {
			return nil, err
		}
		res, err := l.probe(syncURL, rows, cacheBytes, scanRows, uint64(size)<<16|uint64(i))
		if err != nil {
			return nil, fmt.Errorf("lazy open %d: %w", i+1, err)
		}
		peak, err := procStatus(pid, "VmHWM")
		if err != nil {
			return nil, err
		}
		runs = append(runs, lazyRun{Result: res, coordGrowth: peak - before})
	}
	return lazyRecords(size, rows, docBytes, cacheBytes, runs, whole, clearNote), nil
}

// probe runs one sqlsync-lazy process and decodes what it printed.
func (l *lazyRunner) probe(url string, rows, cacheBytes, scanRows int64, seed uint64) (lazyprobe.Result, error) {
	args := []string{"-url", url, "-doc", "big", "-rows", strconv.FormatInt(rows, 10),
		"-body", strconv.Itoa(bigdoc.RowBytes), "-cache-mib", strconv.FormatFloat(float64(cacheBytes)/mib, 'f', -1, 64),
		"-queries", strconv.Itoa(l.cfg.Queries), "-scan-rows", strconv.FormatInt(scanRows, 10),
		"-seed", strconv.FormatUint(seed, 10)}
	var out, errOut bytes.Buffer
	t0 := time.Now()
	cmd := exec.CommandContext(l.ctx, l.bin, append(args, "-exec-unix-ns", strconv.FormatInt(t0.UnixNano(), 10))...)
	cmd.Env = l.env
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return lazyprobe.Result{}, fmt.Errorf("sqlsync-lazy %s: %w: %s", strings.Join(args, " "), err, lastLines(errOut.String(), 5))
	}
	var res lazyprobe.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return lazyprobe.Result{}, fmt.Errorf("sqlsync-lazy printed %q: %w", lastLines(out.String(), 2), err)
	}
	return res, nil
}

// lazyRecords makes scenario 13's records of one size from its runs.
func lazyRecords(size int, rows, docBytes, cacheBytes int64, runs []lazyRun, whole firstSync, clearNote string) []report.Record {
	col := func(f func(r lazyRun) float64) []float64 {
		out := make([]float64, len(runs))
		for i, r := range runs {
			out[i] = f(r)
		}
		return out
	}
	med := func(f func(r lazyRun) float64) float64 { return median(col(f)) }
	largest := func(f func(r lazyRun) float64) float64 { return slices.Max(col(f)) }
	inMiB := func(b int64) float64 { return float64(b) / mib }
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

	open := col(func(r lazyRun) float64 { return r.OpenToFirstRow })
	openMed := median(open)
	execMed := med(func(r lazyRun) float64 { return r.ExecToFirstRow })
	docPages := runs[0].DocPages
	if docPages == 0 {
		docPages = docBytes / vfs.PageSize
	}
	pointPages := med(func(r lazyRun) float64 { return float64(r.Point.PagesFetched) })
	params := map[string]any{
		"doc_bytes": docBytes, "doc_pages": docPages, "rows": rows, "runs": len(runs),
		"cache_bytes": cacheBytes, "queries": len(runs[0].Mix), "scan_rows": runs[0].ScanRows,
		"coordinator": "sqlsync serve on 127.0.0.1", "replica": "client.Open(Lazy, CacheBytes), state in memory, a process of bench/cmd/sqlsync-lazy per open",
		"point_query": lazyprobe.PointQuery, "scan_query": lazyprobe.ScanQuery,
	}
	id := fmt.Sprintf("13.%d", size)
	wholeName := fmt.Sprintf("whole replica's first sync, same run (12.%d: sqlsync query --state, exec to exit, median of %d)", size, whole.runs)

	t := report.Record{
		ID: id, Scenario: 13,
		Name:    fmt.Sprintf("lazy open of a %d MiB document to the first row of an indexed point query (client.Open to the row)", size),
		Params:  params,
		Samples: len(runs),
		Figure:  report.Value("ms", openMed),
		Baseline: &report.Named{
			Name: wholeName,
			Stat: report.Value("ms", ms(whole.took)),
		},
		Also: []report.Named{
			{Name: "exec of the probe process to the first row (from exec, as the first sync is timed)", Stat: report.Value("ms", execMed)},
			{Name: "exec to the first row over the whole first sync", Stat: report.Value("×", execMed/ms(whole.took))},
			{Name: "the whole download alone (12's first sync minus the same command on the synced tiny document)", Stat: report.Value("ms", ms(whole.alone))},
			{Name: "open to the first row over the download alone", Stat: report.Value("×", openMed/ms(whole.alone))},
			{Name: "client.Open returned", Stat: report.Value("ms", med(func(r lazyRun) float64 { return r.OpenReturned }))},
			{Name: "connected and welcomed (WaitSynced returned)", Stat: report.Value("ms", med(func(r lazyRun) float64 { return r.Synced }))},
			{Name: "page requests (round trips) of the point query", Stat: report.Value("requests", med(func(r lazyRun) float64 { return float64(r.Point.Fetches) }))},
			{Name: "pages fetched by the point query", Stat: report.Value("pages", pointPages)},
			{Name: "pages fetched before it (open, welcome)", Stat: report.Value("pages", med(func(r lazyRun) float64 { return float64(r.Open.PagesFetched) }))},
			{Name: "pages fetched by the open and the point query, of the document's", Stat: report.Value("%", 100*(pointPages+med(func(r lazyRun) float64 { return float64(r.Open.PagesFetched) }))/float64(docPages))},
			{Name: "every run, client.Open to the first row", Stat: report.Dist("ms", open)},
		},
		Note: fmt.Sprintf("%d rows in %d pages; each run a new process (bench/cmd/sqlsync-lazy) opening a new lazy replica (state in memory, no pages) with a %.0f MiB cache, against the coordinator that served the first syncs just before (its store files in the page cache); the point query is for a random id's k (k = id*7919 mod 1000003), its row checked; the figure is the nearest-rank median of the runs, and starts at client.Open, after the process has started (the first sync's time starts at exec: `also` has the probe's exec to first row too)",
			rows, docPages, inMiB(cacheBytes)),
	}
	t.Finish("value")

	var mix []float64
	for _, r := range runs {
		mix = append(mix, r.Mix...)
	}
	perRun := func(p float64) func(r lazyRun) float64 {
		return func(r lazyRun) float64 {
			s := slices.Clone(r.Mix)
			slices.Sort(s)
			return report.Percentile(s, p)
		}
	}
	mixPages := med(func(r lazyRun) float64 { return float64(r.MixCounts.PagesFetched) })
	m := report.Record{
		ID: id + ".mix", Scenario: 13,
		Name:    fmt.Sprintf("%d random point queries after the first, same lazy replica, %d MiB document (per query, every run)", len(runs[0].Mix), size),
		Params:  params,
		Samples: len(mix),
		Figure:  report.Dist("ms", mix),
		Also: []report.Named{
			{Name: "median of the runs' p50", Stat: report.Value("ms", med(perRun(50)))},
			{Name: "median of the runs' p95", Stat: report.Value("ms", med(perRun(95)))},
			{Name: "pages fetched by the mix, in all (median of the runs)", Stat: report.Value("pages", mixPages)},
			{Name: "page requests (round trips) of the mix, in all", Stat: report.Value("requests", med(func(r lazyRun) float64 { return float64(r.MixCounts.Fetches) }))},
			{Name: "pages fetched per query", Stat: report.Value("pages", mixPages/float64(max(len(runs[0].Mix), 1)))},
			{Name: "bytes the cache held after the mix", Stat: report.Value("MiB", med(func(r lazyRun) float64 { return inMiB(r.MixCached) }))},
		},
		Note: "each query for a random id's k, its row checked, after the first point query of the same run; a query whose pages are all held fetches nothing",
	}
	m.Finish("")

	over := ""
	if maxCached := largest(func(r lazyRun) float64 { return float64(r.MaxCached) }); maxCached > float64(cacheBytes) {
		over = fmt.Sprintf("; THE CACHE HELD %.2f MiB, OVER ITS BOUND", maxCached/mib)
	}
	peakNote := ""
	if runs[0].PeakNote != "" {
		peakNote = "; " + runs[0].PeakNote
	}
	mem := report.Record{
		ID: id + ".mem", Scenario: 13,
		Name:    fmt.Sprintf("lazy replica's peak RSS growth, %d MiB document: open, point queries, then a range scan of %.0f MiB of rows", size, inMiB(runs[0].ScanRows*docBytes/rows)),
		Params:  params,
		Samples: len(runs),
		Figure:  report.Value("MiB", largest(func(r lazyRun) float64 { return inMiB(r.PeakAfterScan - r.RSSBefore) })),
		Baseline: &report.Named{
			Name: "the cache bound (client.Options.CacheBytes)",
			Stat: report.Value("MiB", inMiB(cacheBytes)),
		},
		Also: []report.Named{
			{Name: "peak RSS growth through the point queries only (before the scan)", Stat: report.Value("MiB", largest(func(r lazyRun) float64 { return inMiB(r.PeakAfterMix - r.RSSBefore) }))},
			{Name: "most bytes the cache held after any statement", Stat: report.Value("MiB", largest(func(r lazyRun) float64 { return inMiB(r.MaxCached) }))},
			{Name: "Go heap in use after the scan (after a GC) minus before the open", Stat: report.Value("MiB", largest(func(r lazyRun) float64 { return inMiB(r.HeapAfter - r.HeapBefore) }))},
			{Name: "RSS before the open", Stat: report.Value("MiB", med(func(r lazyRun) float64 { return inMiB(r.RSSBefore) }))},
			{Name: "range scan time", Stat: report.Value("ms", med(func(r lazyRun) float64 { return r.ScanMS }))},
			{Name: "pages fetched by the scan", Stat: report.Value("pages", med(func(r lazyRun) float64 { return float64(r.ScanCounts.PagesFetched) }))},
			{Name: "of them prefetched (siblings)", Stat: report.Value("pages", med(func(r lazyRun) float64 { return float64(r.ScanCounts.Prefetched) }))},
			{Name: "page requests (round trips) of the scan", Stat: report.Value("requests", med(func(r lazyRun) float64 { return float64(r.ScanCounts.Fetches) }))},
			{Name: "pages evicted by the scan", Stat: report.Value("pages", med(func(r lazyRun) float64 { return float64(r.ScanCounts.Evicted) }))},
			{Name: "coordinator peak RSS growth during a lazy open (largest)", Stat: report.Value("MiB", largest(func(r lazyRun) float64 { return inMiB(r.coordGrowth) }))},
		},
		Note: fmt.Sprintf("the probe process's VmHWM after the scan minus its VmRSS just before client.Open, its peak reset there through /proc/self/clear_refs (largest of the runs)%s; the cache holds page bytes on the Go heap, which the collector lets grow to about twice what is live%s; coordinator: VmHWM after the probe minus VmRSS before it, reset through clear_refs%s",
			peakNote, over, clearNote),
	}
	mem.Finish("value")
	return []report.Record{t, m, mem}
}
