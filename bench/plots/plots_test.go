package plots

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sqlsync-go/sqlsync/bench/report"
)

func TestDraw(t *testing.T) {
	dist := func(vs ...float64) report.Stat { return report.Dist("ms", vs) }
	measured := func(r report.Record) report.Record { r.Status = report.StatusMeasured; return r }
	f := &report.File{Version: report.FormatVersion, Records: []report.Record{
		measured(report.Record{ID: "1.go", Scenario: 1, Params: map[string]any{"mutator": "go"}, Figure: dist(0.2, 0.3, 1),
			Baseline: &report.Named{Name: "plain", Stat: dist(0.1, 0.2, 0.9)}}),
		measured(report.Record{ID: "2.idle", Scenario: 2, Figure: dist(1, 2), Baseline: &report.Named{Name: "echo", Stat: dist(0.02, 0.03)}}),
		measured(report.Record{ID: "3.w1", Scenario: 3, Params: map[string]any{"writers": 1.0}, Figure: report.Value("mut/s", 1000),
			Baseline: &report.Named{Name: "plain", Stat: report.Value("mut/s", 3000)}}),
		measured(report.Record{ID: "3.w10", Scenario: 3, Params: map[string]any{"writers": 10.0}, Figure: report.Value("mut/s", 900),
			Baseline: &report.Named{Name: "plain", Stat: report.Value("mut/s", 2500)}}),
		measured(report.Record{ID: "4.mem", Scenario: 4, Params: map[string]any{"documents": 10.0}, Figure: report.Value("MiB/doc", 0.3),
			Aim: &report.Aim{MaxValue: 2}}),
		measured(report.Record{ID: "5.insert", Scenario: 5, Figure: report.Dist("B", []float64{400, 500}),
			Baseline: &report.Named{Name: "pages", Stat: report.Dist("B", []float64{16384})}}),
		measured(report.Record{ID: "6.k1", Scenario: 6, Params: map[string]any{"pending": 1.0}, Figure: dist(0.04), Baseline: &report.Named{Stat: dist(0.02)}}),
		measured(report.Record{ID: "6.k10", Scenario: 6, Params: map[string]any{"pending": 10.0}, Figure: dist(0.1), Baseline: &report.Named{Stat: dist(0.07)}}),
		measured(report.Record{ID: "7.bytes", Scenario: 7, Params: map[string]any{"commits_behind": 100.0}, Figure: report.Value("B", 3e6),
			Baseline: &report.Named{Stat: report.Value("B", 1e7)}}),
	}}
	dir := t.TempDir()
	files, err := Draw(f, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(files), 7; got != want {
		t.Fatalf("drew %d plots, want %d: %v", got, want, files)
	}
	for _, name := range files {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() == 0 || filepath.Ext(name) != ".png" {
			t.Errorf("%s: %d bytes", name, info.Size())
		}
	}
	// No records, no plots.
	if files, err := Draw(&report.File{}, t.TempDir()); err != nil || len(files) != 0 {
		t.Errorf("empty results: %v, %v", files, err)
	}
}
