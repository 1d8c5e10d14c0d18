// Package scenario holds the scenarios of the sqlsync benchmark suite
// (bench/README.md describes each): every one measures a figure of sqlsync
// and, in the same process and run, the baseline it is compared with, so
// that the ratio holds on a noisy machine. Each scenario is bounded in
// samples and in time, and its knobs live in [Config].
package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/sqlsync-go/sqlsync/bench/report"
)

// Config holds the knobs of every scenario. DefaultConfig returns modest
// values that keep a whole run to a few minutes on a 2-core machine.
type Config struct {
	// Dir is the scratch directory; each scenario works in a fresh
	// directory under it and removes it afterwards. Put it on the disk
	// under test: a tmpfs makes every fsync free.
	Dir string
	// Mutator names the mutator implementation every scenario runs
	// (see Mutators).
	Mutator string
	// WasmModule is the todo mutator built for WebAssembly (from
	// demo-todo/mutator) that the "wasm" mutator runs; empty builds it.
	WasmModule string
	// LocalMutators lists the mutators scenario 1 measures side by side:
	// names separated by commas, or "all" for every one available.
	LocalMutators string
	// ScenarioTimeout bounds each scenario, whatever its own settings say,
	// but scenarios 12 (download) and 13 (lazy), whose own bound is
	// Download.Duration when that is longer.
	ScenarioTimeout time.Duration
	// CPUProfileDir, if set, receives one CPU profile per scenario,
	// named <key>.cpu.prof.
	CPUProfileDir string
	// LogLevel, if set (debug, info, warn, error), sends the logs of the
	// servers and clients under test to standard error.
	LogLevel string

	Local      LocalConfig
	Prop       PropConfig
	Throughput ThroughputConfig
	Docs       DocsConfig
	Wire       WireConfig
	Rebase     RebaseConfig
	Catchup    CatchupConfig
	Cluster    ClusterConfig
	CLI        CLIConfig
	Presence   PresenceSpamConfig
	Download   DownloadConfig
	Lazy       LazyConfig
}

// DefaultConfig returns the settings of a default run.
func DefaultConfig() Config {
	return Config{
		Dir:             os.TempDir(),
		Mutator:         "go",
		LocalMutators:   "all",
		ScenarioTimeout: 4 * time.Minute,
		Local:           LocalConfig{Samples: 2000, Warmup: 50, Duration: 30 * time.Second},
		Prop: PropConfig{Samples: 500, Duration: 30 * time.Second, Writers: 10, WriterRate: 200,
			State: "file", EchoPerProbe: 10},
		Throughput: ThroughputConfig{Writers: "1,2,5,10", Duration: 4 * time.Second, MaxMutations: 2_000_000,
			Push: 16, MaxBatch: 1000, Mutators: "all", E2EClients: 10, E2EDuration: 5 * time.Second, E2EWindow: 256},
		Docs: DocsConfig{N: 1000, SeedMutations: 10, Duration: 5 * time.Second, MaxMutations: 1_000_000},
		Wire: WireConfig{Samples: 300, Rows: 1000, BigRows: 200, RowBytes: 1024, Duration: 30 * time.Second},
		Rebase: RebaseConfig{Pending: "1,10,100,1000", Samples: 200, Duration: 15 * time.Second,
			Rows: 1000},
		Catchup: CatchupConfig{DocBytes: 10 << 20, Commits: 10_000, Runs: 5, Duration: 90 * time.Second},
		Cluster: ClusterConfig{Samples: 200, Runs: 5, LeaseTTL: time.Second, Duration: 20 * time.Second},
		CLI:     CLIConfig{ColdRuns: 3, Runs: 20, Duration: 60 * time.Second},

		Presence: PresenceSpamConfig{Samples: 400, Rounds: 8, Spammers: 2, Duration: 60 * time.Second},
		Download: DownloadConfig{Sizes: "64,256,1024", SmallRuns: 2, TinyMiB: 1, Duration: 6 * time.Minute},
		Lazy:     LazyConfig{Runs: 5, CacheMiB: 16, Queries: 100, ScanMiB: 32},
	}
}

// Register binds c's fields to flags of fs, with c's values as defaults.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Dir, "dir", c.Dir, "scratch `directory` on the disk under test")
	fs.StringVar(&c.Mutator, "mutator", c.Mutator, "mutator every scenario runs: "+strings.Join(MutatorNames(), ", "))
	fs.StringVar(&c.WasmModule, "wasm-module", c.WasmModule, "the todo mutator as a WebAssembly `file` (default: build demo-todo/mutator)")
	fs.StringVar(&c.LocalMutators, "local.mutators", c.LocalMutators, "mutators scenario 1 compares (comma-separated, or all)")
	fs.DurationVar(&c.ScenarioTimeout, "scenario-timeout", c.ScenarioTimeout, "upper bound on each scenario")
	fs.StringVar(&c.CPUProfileDir, "cpuprofile", c.CPUProfileDir, "write a CPU profile per scenario into this `directory`")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log the servers and clients under test at this `level` to stderr")
	c.Local.register(fs)
	c.Prop.register(fs)
	c.Throughput.register(fs)
	c.Docs.register(fs)
	c.Wire.register(fs)
	c.Rebase.register(fs)
	c.Catchup.register(fs)
	c.Cluster.register(fs)
	c.CLI.register(fs)
	c.Presence.register(fs)
	c.Download.register(fs)
	c.Lazy.register(fs)
}

// Scenario is one benchmark scenario.
type Scenario struct {
	// Num is the scenario's number in bench/README.md.
	Num int
	// Key names it on the command line and in profile file names.
	Key string
	// Title says what it measures, in a few words.
	Title string
	run   func(ctx context.Context, e *env) ([]report.Record, error)
}

// All lists the scenarios in the order a run takes them.
var All = []Scenario{
	{1, "local", "local mutate, native client, file store, durable", runLocal},
	{2, "propagation", "propagation over WebSocket on loopback", runPropagation},
	{3, "throughput", "coordinator throughput, one document", runThroughput},
	{4, "docs", "many documents", runDocs},
	{5, "wire", "bytes on the wire", runWire},
	{6, "rebase", "rebase with pending mutations", runRebase},
	{7, "catchup", "catch-up of a client far behind", runCatchup},
	{8, "browser", "browser (Chromium, Playwright)", runBrowser},
	{9, "cluster", "documents in NATS JetStream: commit, hand-off, failover", runCluster},
	{10, "cli", "the sqlsync command, a process per command: cold, cached, floor", runCLI},
	{11, "presence", "writes beside presence spammers", runPresence},
	{12, "download", "first sync of a large document: sqlsync query --state, a new replica", runDownload},
	{13, "lazy", "lazy open of a large document: a native lazy replica's point queries (with 12: on its documents)", runLazy},
}

// Select returns the scenarios named in keys (comma-separated keys or
// numbers); "" or "all" selects every one.
func Select(keys string) ([]Scenario, error) {
	if keys == "" || keys == "all" {
		return All, nil
	}
	var out []Scenario
	for _, k := range strings.Split(keys, ",") {
		k = strings.TrimSpace(k)
		found := false
		for _, s := range All {
			if s.Key == k || strconv.Itoa(s.Num) == k {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("select scenarios: no scenario %q", k)
		}
	}
	return out, nil
}

// Run runs the scenarios in order and returns their records. A scenario
// that fails yields an error record and the run goes on. Progress lines go
// to progress.
func Run(ctx context.Context, cfg Config, scenarios []Scenario, progress io.Writer) []report.Record {
	var out []report.Record
	keys := map[string]bool{}
	for _, s := range scenarios {
		keys[s.Key] = true
	}
	for _, s := range scenarios {
		if ctx.Err() != nil {
			out = append(out, errorRecord(s, ctx.Err()))
			continue
		}
		start := time.Now()
		fmt.Fprintf(progress, "scenario %d (%s): %s ...\n", s.Num, s.Key, s.Title)
		recs, err := runOne(ctx, cfg, s, keys)
		out = append(out, recs...)
		if err != nil {
			fmt.Fprintf(progress, "scenario %d (%s): error: %v\n", s.Num, s.Key, err)
			out = append(out, errorRecord(s, err))
		}
		fmt.Fprintf(progress, "scenario %d (%s): %d records in %.1fs\n", s.Num, s.Key, len(recs), time.Since(start).Seconds())
	}
	return out
}

func errorRecord(s Scenario, err error) report.Record {
	return report.Record{ID: strconv.Itoa(s.Num), Scenario: s.Num, Name: s.Title, Status: report.StatusError, Note: err.Error()}
}

func runOne(ctx context.Context, cfg Config, s Scenario, keys map[string]bool) (recs []report.Record, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeoutOf(cfg, s))
	defer cancel()
	dir, err := os.MkdirTemp(cfg.Dir, "sqlsync-bench-"+s.Key+"-")
	if err != nil {
		return nil, fmt.Errorf("scenario %s: scratch directory: %w", s.Key, err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	if cfg.CPUProfileDir != "" {
		stop, err := startProfile(filepath.Join(cfg.CPUProfileDir, s.Key+".cpu.prof"))
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	log := slog.New(slog.DiscardHandler)
	if cfg.LogLevel != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
			return nil, fmt.Errorf("log level: %w", err)
		}
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	also := map[string]bool{}
	for k := range keys {
		if k != s.Key {
			also[k] = true
		}
	}
	e := &env{cfg: cfg, dir: dir, log: log, also: also}
	defer func() {
		if e.pool != nil {
			e.pool.close()
		}
	}()
	return s.run(ctx, e)
}

// timeoutOf returns the bound on scenario s: cfg.ScenarioTimeout, or
// for scenarios 12 and 13 their own when that is longer (filling, copying
// and downloading a 1 GiB document takes minutes).
func timeoutOf(cfg Config, s Scenario) time.Duration {
	if s.Key == "download" || s.Key == "lazy" {
		return max(cfg.ScenarioTimeout, cfg.Download.Duration)
	}
	return cfg.ScenarioTimeout
}

func startProfile(name string) (stop func() error, err error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}

// env is what a running scenario works with.
type env struct {
	cfg Config
	dir string // the scenario's scratch directory
	log *slog.Logger
	// also holds the keys of the run's other scenarios: one may measure
	// another's rows on what it has set up (12 does 13's).
	also map[string]bool
	// pool holds the run's mutators, once mutators has made it.
	pool *mutatorPool
}

// subdir returns a new directory under the scenario's scratch directory.
func (e *env) subdir(name string) (string, error) {
	d := filepath.Join(e.dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("scratch directory: %w", err)
	}
	return d, nil
}

// parseInts parses a comma-separated list of positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("parse %q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// deadline is a loop bound in both count and time.
type deadline struct {
	max   int
	until time.Time
}

func newDeadline(max int, d time.Duration) deadline {
	return deadline{max: max, until: time.Now().Add(d)}
}

// more reports whether iteration i may run.
func (d deadline) more(ctx context.Context, i int) bool {
	return i < d.max && time.Now().Before(d.until) && ctx.Err() == nil
}
