package scenario

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/bench/report"
)

// tinyConfig shrinks every scenario to a few samples, to check that the
// suite runs, not to measure anything.
func tinyConfig(t *testing.T) Config {
	c := DefaultConfig()
	c.Dir = t.TempDir()
	c.Mutator = "go"
	c.LocalMutators = "go"
	c.ScenarioTimeout = 2 * time.Minute
	c.Local = LocalConfig{Samples: 20, Warmup: 2, Duration: 5 * time.Second}
	c.Prop = PropConfig{Samples: 5, Duration: 5 * time.Second, Writers: 2, WriterRate: 20, State: "file", EchoPerProbe: 2}
	c.Throughput = ThroughputConfig{Writers: "1,2", Duration: 200 * time.Millisecond, MaxMutations: 2000, Push: 4,
		MaxBatch: 100, Mutators: "none", E2EClients: 2, E2EDuration: 300 * time.Millisecond, E2EWindow: 16}
	c.Docs = DocsConfig{N: 5, SeedMutations: 2, Duration: 200 * time.Millisecond, MaxMutations: 100}
	c.Wire = WireConfig{Samples: 5, Rows: 50, BigRows: 5, RowBytes: 256, Duration: 5 * time.Second}
	c.Rebase = RebaseConfig{Pending: "1,10", Samples: 3, Duration: 5 * time.Second, Rows: 50}
	c.Catchup = CatchupConfig{DocBytes: 256 << 10, Commits: 50, Runs: 1, Duration: 10 * time.Second}
	c.Cluster = ClusterConfig{Samples: 5, Runs: 1, LeaseTTL: 300 * time.Millisecond, Duration: 5 * time.Second}
	c.CLI = CLIConfig{ColdRuns: 1, Runs: 2, Duration: 10 * time.Second}
	c.Presence = PresenceSpamConfig{Samples: 20, Rounds: 2, Spammers: 1, Duration: 10 * time.Second}
	c.Download = DownloadConfig{Sizes: "9", SmallRuns: 1, TinyMiB: 1, Duration: time.Minute} // 9 MiB: a streamed diff
	c.Lazy = LazyConfig{Runs: 1, CacheMiB: 1, Queries: 10, ScanMiB: 2}
	return c
}

func TestScenariosRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every scenario (about 10 s)")
	}
	cfg := tinyConfig(t)
	for _, s := range All {
		// Scenario 13 (lazy) runs with 12 (download), on its documents,
		// as in a whole run: alone it would fill and serve them again.
		if s.Key == "lazy" {
			continue
		}
		run := []Scenario{s}
		nums := map[int]int{s.Num: 0}
		if s.Key == "download" {
			lazy, err := Select("lazy")
			if err != nil {
				t.Fatal(err)
			}
			run = append(run, lazy...)
			nums[lazy[0].Num] = 0
		}
		t.Run(s.Key, func(t *testing.T) {
			recs := Run(context.Background(), cfg, run, &testWriter{t})
			if len(recs) == 0 {
				t.Fatal("no records")
			}
			for _, r := range recs {
				if _, ok := nums[r.Scenario]; !ok {
					t.Errorf("record %s: scenario %d, want one of %v", r.ID, r.Scenario, nums)
				}
				nums[r.Scenario]++
				want := report.StatusMeasured
				if s.Key == "browser" {
					if _, err := os.Stat(BrowserResults); err == nil {
						continue // merged from the browser run instead
					}
					want = report.StatusNotMeasured
				}
				if r.Status != want {
					t.Errorf("record %s: status %q (%s), want %q", r.ID, r.Status, r.Note, want)
				}
				// A memory growth (12.*.mem, 13.*.mem) may well be zero.
				if r.Status == report.StatusMeasured && r.Figure.Headline() == 0 && r.Figure.Unit != "exponent" && !strings.HasSuffix(r.ID, ".mem") {
					t.Errorf("record %s: figure is zero", r.ID)
				}
			}
			for n, c := range nums {
				if c == 0 {
					t.Errorf("scenario %d: no records", n)
				}
			}
		})
	}
}

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		keys string
		want int
	}{{"", len(All)}, {"all", len(All)}, {"local,3", 2}, {"wire", 1}, {"cluster", 1}, {"cli", 1}, {"download", 1}, {"lazy", 1}, {"download,lazy", 2}} {
		got, err := Select(tc.keys)
		if err != nil {
			t.Fatalf("Select(%q): %v", tc.keys, err)
		}
		if len(got) != tc.want {
			t.Errorf("Select(%q) = %d scenarios, want %d", tc.keys, len(got), tc.want)
		}
	}
	if _, err := Select("nope"); err == nil {
		t.Error("Select(nope) succeeded")
	}
}

func TestFsyncLatency(t *testing.T) {
	s, err := FsyncLatency(context.Background(), t.TempDir(), 10, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 10 || s.P50 <= 0 {
		t.Errorf("got %+v, want 10 positive samples", s)
	}
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
