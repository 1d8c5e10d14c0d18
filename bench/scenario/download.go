package scenario

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/internal/bigdoc"
)

// DownloadConfig tunes scenario 12.
type DownloadConfig struct {
	// Sizes lists the documents' sizes in MiB, comma-separated, smallest
	// first. A streamed download needs 2048 changed pages (8 MiB).
	Sizes string
	// SmallRuns is the number of first syncs timed of each size up to
	// 64 MiB; larger sizes are timed once.
	SmallRuns int
	// TinyMiB is the size of the document whose first sync is the client
	// memory baseline.
	TinyMiB int
	// Duration bounds the whole scenario; it replaces -scenario-timeout
	// when it is longer (a 1 GiB document takes minutes to fill, copy and
	// download). A size that does not finish in time is an error record.
	Duration time.Duration
}

func (c *DownloadConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Sizes, "download.sizes", c.Sizes, "scenario 12: document sizes in MiB, comma-separated")
	fs.IntVar(&c.SmallRuns, "download.small-runs", c.SmallRuns, "scenario 12: first syncs timed of each size up to 64 MiB (larger sizes: one)")
	fs.IntVar(&c.TinyMiB, "download.tiny", c.TinyMiB, "scenario 12: size in MiB of the document whose first sync is the client memory baseline")
	fs.DurationVar(&c.Duration, "download.duration", c.Duration, "scenario 12: upper bound on the scenario (replaces -scenario-timeout when longer)")
}

// downloadQuery is what the first syncs ask: it reads every row of big.
const downloadQuery = `SELECT count(*) AS n FROM big`

// downloadMemAim is the aim on each process's peak RSS growth, in MiB.
const downloadMemAim = 64

// runDownload is scenario 12: the first sync of a large document by a new
// replica, as a user meets it: `sqlsync query --state D`, where D holds
// only the mutator module (compiled by a command on a tiny document), a
// process, against a `sqlsync serve` process on loopback whose store
// holds a document of each size (bigdoc.Fill, filled before serve starts).
// The coordinator streams the diff in frames read from its store, the
// replica stages each durably and applies them at the end. Timed from exec
// to exit; the floor is a plain copy of the coordinator's store files
// (data and log) to a file in a fresh directory with one fsync. Memory:
// the client's peak RSS against the same command on a tiny document, and
// the coordinator's peak RSS growth during the download.
//
// Run with scenario 13 (lazy), it also measures lazy opens of each
// document, on the same coordinator, after the first syncs (see runLazy).
func runDownload(ctx context.Context, e *env) ([]report.Record, error) {
	return runLargeDocs(ctx, e, true, e.also["lazy"])
}

// runLargeDocs fills and serves the documents of scenario 12 and measures
// their first syncs; with download it returns scenario 12's records, with
// lazy it measures scenario 13's lazy opens too and returns their records.
func runLargeDocs(ctx context.Context, e *env, download, lazy bool) (recs []report.Record, err error) {
	cfg := e.cfg.Download
	sizes, err := parseInts(cfg.Sizes)
	if err != nil {
		return nil, fmt.Errorf("download sizes: %w", err)
	}
	dir, err := e.subdir("download")
	if err != nil {
		return nil, err
	}
	bin, module, _, childEnv, err := cliSetup(ctx, e, dir) // -cli.binary, scenario 10's
	if err != nil {
		return nil, err
	}
	d := &downloader{ctx: ctx, bin: bin, env: childEnv, module: module, tiny: max(cfg.TinyMiB, 1)}
	if lazy {
		if d.lazy, err = newLazyRunner(ctx, e, dir, childEnv); err != nil {
			return nil, err
		}
	}
	for _, size := range sizes {
		runs := 1
		if size <= 64 {
			runs = max(cfg.SmallRuns, 1)
		}
		dl, lz, err := d.size(filepath.Join(dir, fmt.Sprintf("mib%d", size)), size, runs)
		if download {
			recs = append(recs, dl...)
		}
		recs = append(recs, lz...)
		if err != nil {
			return recs, fmt.Errorf("%d MiB document: %w", size, err)
		}
	}
	return recs, nil
}

// downloader runs the first syncs of scenario 12.
type downloader struct {
	ctx    context.Context
	bin    string
	env    []string
	module string
	tiny   int // MiB
	// lazy, if set, measures scenario 13's lazy opens of each document
	// after its first syncs.
	lazy *lazyRunner
	// selfRSS is the largest RSS of this process when it started a
	// query, a floor under every client Maxrss (see query); selfNote says
	// why it is not, if it is not.
	selfRSS  int64
	selfNote string
}

// syncRun is one timed first sync.
type syncRun struct {
	took        time.Duration
	floor       time.Duration
	clientPeak  int64 // bytes
	tinyTook    time.Duration
	tinyPeak    int64 // the same command on the tiny document
	coordBefore int64 // the coordinator's VmHWM just reset (or VmRSS) before the download
	coordPeak   int64 // its VmHWM after it
	streamed    bool  // the client printed a download's end
}

// size measures the first syncs of a document of size MiB, working in
// dir, which it removes, and returns their records; with d.lazy it then
// measures the lazy opens of the same document and returns their records
// too.
func (d *downloader) size(dir string, size, runs int) (recs, lazyRecs []report.Record, err error) {
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	data := filepath.Join(dir, "data")
	t0 := time.Now()
	rows, docBytes, err := bigdoc.FillDocument(data, "big", int64(size)<<20)
	if err != nil {
		return nil, nil, err
	}
	fill := time.Since(t0)
	tinyRows, _, err := bigdoc.FillDocument(data, "tiny", int64(d.tiny)<<20)
	if err != nil {
		return nil, nil, err
	}

	url, stop, err := startServe(d.ctx, d.bin, d.env, data, d.module)
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	pid, err := servePID(data)
	if err != nil {
		return nil, nil, err
	}

	// The coordinator compiles the mutator module for the first document
	// it opens, which a running coordinator has long done: a first query
	// of the tiny document, not timed, pays for it.
	if _, _, _, err = d.query(url, "tiny", filepath.Join(dir, "state-warm"), tinyRows); err != nil {
		return nil, nil, err
	}

	clearNote := ""
	var runsDone []syncRun
	for i := range runs {
		var r syncRun
		// The floor and the baseline first, so that each download and its
		// baselines see the machine alike. A new state directory gets the
		// mutator module and its compiled code from a first command on the
		// tiny document (not timed: compiling peaks at about 110 MiB, which
		// would hide the download's memory); the baseline of the client's
		// memory and fixed costs is the same command again, and then the
		// download of the big document in that directory.
		if r.floor, err = copyFloor(filepath.Join(data, "docs", "big"), filepath.Join(dir, fmt.Sprintf("floor-%d", i))); err != nil {
			return nil, nil, err
		}
		state := filepath.Join(dir, fmt.Sprintf("state-%d", i))
		if _, _, _, err = d.query(url, "tiny", state, tinyRows); err != nil {
			return nil, nil, err
		}
		if r.tinyTook, r.tinyPeak, _, err = d.query(url, "tiny", state, tinyRows); err != nil {
			return nil, nil, err
		}
		// The coordinator's peak from here on: writing 5 to clear_refs
		// resets VmHWM to VmRSS. Where the kernel refuses, VmHWM is the
		// peak since serve started, which can only count more.
		field := "VmHWM"
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			field = "VmRSS"
			if clearNote == "" {
				clearNote = fmt.Sprintf("; clear_refs could not be written (%v), so the coordinator's growth is VmHWM since it started minus VmRSS before the download", err)
			}
		}
		if r.coordBefore, err = procStatus(pid, field); err != nil {
			return nil, nil, err
		}
		if r.took, r.clientPeak, r.streamed, err = d.query(url, "big", state, rows); err != nil {
			return nil, nil, err
		}
		if r.coordPeak, err = procStatus(pid, "VmHWM"); err != nil {
			return nil, nil, err
		}
		runsDone = append(runsDone, r)
		if err := os.RemoveAll(state); err != nil {
			return nil, nil, fmt.Errorf("remove state directory: %w", err)
		}
	}

	// Each size's figures: the median times, the largest growths.
	var took, floors, tinyTimes []float64
	w := runsDone[0] // the run whose client grew most
	coordGrowth := w.coordPeak - w.coordBefore
	streamed := true
	for _, r := range runsDone {
		took = append(took, r.took.Seconds())
		floors = append(floors, r.floor.Seconds())
		tinyTimes = append(tinyTimes, r.tinyTook.Seconds())
		if r.clientPeak-r.tinyPeak > w.clientPeak-w.tinyPeak {
			w = r
		}
		coordGrowth = max(coordGrowth, r.coordPeak-r.coordBefore)
		streamed = streamed && r.streamed
	}
	clientPeak, tinyPeak := w.clientPeak, w.tinyPeak
	clientGrowth := clientPeak - tinyPeak
	tinyTook := median(tinyTimes)
	dl := median(took) - tinyTook
	inMiB := func(b int64) float64 { return float64(b) / mib }
	params := map[string]any{
		"doc_bytes": docBytes, "rows": rows, "row_body_bytes": bigdoc.RowBytes, "runs": len(runsDone),
		"coordinator": "sqlsync serve on 127.0.0.1", "mutator": "demo-todo/mutator (wasm)",
		"command": "sqlsync query --url U --doc big --state <new dir> --timeout 10m '" + downloadQuery + "'",
	}
	id := fmt.Sprintf("12.%d", size)
	note := fmt.Sprintf("%d rows; the time includes process start and the open of the replica, its mutator module already compiled into the state directory by an untimed command on the tiny document (the same command on the %d MiB document, which downloads nothing more, took %.2f s; also splits the time); the floor reads the coordinator's data and log files, already in the page cache after the fill, and writes one file with one fsync at the end, while the replica fsyncs every staged 1 MiB frame",
		rows, d.tiny, tinyTook)
	if !streamed {
		note += "; the client printed no end of a streamed download"
	}
	memAlso := []report.Named{
		{Name: "client peak RSS growth over the tiny document's (the aim)", Stat: report.Value("MiB", inMiB(clientGrowth))},
		{Name: "coordinator peak RSS growth during the download (VmHWM after - VmRSS at the reset before; the aim)", Stat: report.Value("MiB", inMiB(coordGrowth))},
		{Name: "client peak RSS (Maxrss)", Stat: report.Value("MiB", inMiB(clientPeak))},
		{Name: fmt.Sprintf("client peak RSS, same command on a %d MiB document", d.tiny), Stat: report.Value("MiB", inMiB(tinyPeak))},
	}

	r := report.Record{
		ID: id, Scenario: 12,
		Name:    fmt.Sprintf("first sync of a %d MiB document: sqlsync query --state, a new replica (exec to exit)", size),
		Params:  params,
		Samples: len(took),
		Figure:  report.Value("s", median(took)),
		Baseline: &report.Named{
			Name: "floor: copy of the coordinator's store files (data, log) to a new file, one fsync",
			Stat: report.Value("s", median(floors)),
		},
		Also: append([]report.Named{
			{Name: fmt.Sprintf("same command on the %d MiB document, synced already (process start, replica open)", d.tiny), Stat: report.Value("s", tinyTook)},
			{Name: "the download alone: first sync minus that command", Stat: report.Value("s", dl)},
			{Name: "the download alone over the floor", Stat: report.Value("×", dl/median(floors))},
			{Name: "fill of the coordinator's store (bigdoc.Fill, before serve starts; not part of the figure)", Stat: report.Value("s", fill.Seconds())},
		}, memAlso...),
		Note: note,
	}
	if len(took) > 1 {
		r.Also = append(r.Also,
			report.Named{Name: "every run", Stat: report.Dist("s", took)},
			report.Named{Name: "every run's floor", Stat: report.Dist("s", floors)})
	}
	r.Finish("value")
	recs = append(recs, r)

	masked := ""
	if min(tinyPeak, clientPeak) <= d.selfRSS {
		masked = "; a client's Maxrss is no more than this process's RSS when it started it, so it may be this process's and the growth is not measured"
	}
	m := report.Record{
		ID: id + ".mem", Scenario: 12,
		Name:    fmt.Sprintf("peak RSS growth during the first sync of a %d MiB document, the larger of client and coordinator", size),
		Params:  params,
		Samples: len(took),
		Figure:  report.Value("MiB", inMiB(max(clientGrowth, coordGrowth))),
		Baseline: &report.Named{
			Name: "the document's size (a download held in memory)",
			Stat: report.Value("MiB", inMiB(docBytes)),
		},
		Aim:  &report.Aim{Text: fmt.Sprintf("client and coordinator RSS growth each < %d MiB", downloadMemAim), MaxValue: downloadMemAim},
		Also: memAlso,
		Note: fmt.Sprintf("client: Maxrss of the query process minus that of the same command on the %d MiB document, synced already, in the same state directory just before it (of the run where that grew most), this process's own peak reset before each (its RSS then, at most %.1f MiB, is a floor under a child's Maxrss)%s; coordinator: VmHWM after the download minus VmRSS before it (VmHWM just after resetting it through /proc/PID/clear_refs)%s",
			d.tiny, inMiB(d.selfRSS), d.selfNote+masked, clearNote),
	}
	m.Finish("value")
	recs = append(recs, m)
	if d.lazy == nil {
		return recs, nil, nil
	}
	whole := firstSync{took: secs(median(took)), alone: secs(dl), runs: len(runsDone)}
	lazyRecs, err = d.lazy.size(url, pid, size, rows, docBytes, whole)
	return recs, lazyRecs, err
}

// query runs `sqlsync query --state state` on doc, checks that it counted
// rows rows, and returns how long it took, its peak RSS in bytes and
// whether it printed the end of a streamed download.
func (d *downloader) query(url, doc, state string, rows int64) (took time.Duration, peak int64, streamed bool, err error) {
	args := []string{"query", "--url", url, "--doc", doc, "--state", state, "--timeout", "10m", downloadQuery}
	// The child's Maxrss counts this process's peak too: Go starts it
	// with vfork, and exec keeps the larger of the old memory's peak (this
	// process's) and the new one's. So reset this process's peak to its
	// current RSS, made small, first; else a 1 GiB fill here would hide
	// the client's peak.
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil && d.selfNote == "" {
		d.selfNote = fmt.Sprintf("; /proc/self/clear_refs could not be written (%v): the client's Maxrss counts the benchmark process's own peak, and may hide the client's", err)
	}
	if self, err := procStatus(os.Getpid(), "VmRSS"); err == nil {
		d.selfRSS = max(d.selfRSS, self)
	}
	cmd := exec.CommandContext(d.ctx, d.bin, args...)
	cmd.Env = d.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	t0 := time.Now()
	err = cmd.Run()
	took = time.Since(t0)
	if err != nil {
		return 0, 0, false, fmt.Errorf("sqlsync %s: %w: %s", strings.Join(args, " "), err, lastLines(errOut.String(), 5))
	}
	if want := fmt.Sprintf(`"n":%d`, rows); !strings.Contains(out.String(), want) {
		return 0, 0, false, fmt.Errorf("sqlsync query of %s printed %q, want %s", doc, strings.TrimSpace(out.String()), want)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		peak = ru.Maxrss << 10 // KiB on Linux
	}
	streamed = strings.Contains(errOut.String(), "sqlsync: downloaded "+doc+":")
	return took, peak, streamed, nil
}

// copyFloor copies the store files (data, log) of the store in from into a
// new file in the new directory to, fsyncs it once, and returns how long
// that took; it removes to afterwards.
func copyFloor(from, to string) (took time.Duration, err error) {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(to)) }()
	buf := make([]byte, 1<<20)
	t0 := time.Now()
	out, err := os.Create(filepath.Join(to, "copy"))
	if err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	defer out.Close()
	for _, name := range []string{"data", "log"} {
		in, err := os.Open(filepath.Join(from, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("floor: %w", err)
		}
		_, err = io.CopyBuffer(out, in, buf)
		in.Close()
		if err != nil {
			return 0, fmt.Errorf("floor: copy %s: %w", name, err)
		}
	}
	if err := out.Sync(); err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	if err := out.Close(); err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	return time.Since(t0), nil
}

// servePID finds the `sqlsync serve` child of this process that serves
// the data directory data (startServe does not say).
func servePID(data string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("find the coordinator's process: %w", err)
	}
	self := os.Getpid()
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ')'.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(self) {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if slices.Contains(args, "serve") && slices.Contains(args, data) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("find the coordinator's process: no child of this process serves %s", data)
}

// procStatus returns field (VmRSS, VmHWM) of a live process, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("coordinator memory: %w", err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("coordinator memory: no %s in /proc/%d/status", field, pid)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10, nil
}

// median returns the nearest-rank median of xs, which is not empty.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return report.Percentile(s, 50)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
