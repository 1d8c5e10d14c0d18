package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDist(t *testing.T) {
	var xs []float64
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	s := Dist("ms", xs)
	for _, tc := range []struct {
		name      string
		got, want float64
	}{{"p50", s.P50, 50}, {"p95", s.P95, 95}, {"p99", s.P99, 99}, {"max", s.Max, 100}, {"mean", s.Mean, 50.5},
		{"q0", s.Quantiles[0], 1}, {"q100", s.Quantiles[100], 100}} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if got := Durations([]time.Duration{2 * time.Millisecond}).P99; got != 2 {
		t.Errorf("Durations: p99 %v, want 2", got)
	}
}

func TestFinish(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fig     Stat
		base    float64
		aim     Aim
		ratioOf string
		met     bool
	}{
		{"max ratio met", Value("ms", 1.4), 1, Aim{MaxRatio: 1.5}, "value", true},
		{"max ratio missed", Value("ms", 1.6), 1, Aim{MaxRatio: 1.5}, "value", false},
		{"min ratio and value", Value("mut/s", 60000), 100000, Aim{MinRatio: 0.5, MinValue: 50000}, "value", true},
		{"min value missed", Value("mut/s", 40000), 50000, Aim{MinRatio: 0.5, MinValue: 50000}, "value", false},
		{"max value of p50", Dist("ms", []float64{1, 2, 3}), 0, Aim{MaxValue: 2, AimOf: "p50"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Record{Figure: tc.fig, Aim: &tc.aim}
			if tc.base != 0 {
				r.Baseline = &Named{Name: "b", Stat: Value(tc.fig.Unit, tc.base)}
			}
			r.Finish(tc.ratioOf)
			if r.Met == nil || *r.Met != tc.met {
				t.Fatalf("met = %v, want %v (ratio %v)", r.Met, tc.met, r.Ratio)
			}
		})
	}
}

func TestSaveLoadMergeMarkdown(t *testing.T) {
	dir := t.TempDir()
	f := &File{Version: FormatVersion, Records: []Record{
		{ID: "1.go", Scenario: 1, Name: "local", Figure: Value("ms", 1), Status: StatusMeasured},
		{ID: "8.cold", Scenario: 8, Name: "browser", Status: StatusNotMeasured},
	}}
	name := filepath.Join(dir, "latest.json")
	if err := Save(name, f); err != nil {
		t.Fatal(err)
	}
	got, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if merged, err := MergeBrowser(got, filepath.Join(dir, "missing.json")); err != nil || merged {
		t.Fatalf("merge of a missing file: %v, %v", merged, err)
	}
	browser := &File{Version: FormatVersion, Records: []Record{{ID: "8.opfs", Scenario: 8, Name: "opfs", Figure: Value("ms", 2)}}}
	if err := Save(filepath.Join(dir, "browser.json"), browser); err != nil {
		t.Fatal(err)
	}
	if merged, err := MergeBrowser(got, filepath.Join(dir, "browser.json")); err != nil || !merged {
		t.Fatalf("merge: %v, %v", merged, err)
	}
	var ids []string
	for _, r := range got.Records {
		ids = append(ids, r.ID)
	}
	if g, w := strings.Join(ids, ","), "1.go,8.opfs"; g != w {
		t.Errorf("records after merge: %s, want %s", g, w)
	}
	var b strings.Builder
	if err := WriteMarkdown(&b, got); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| 8.opfs | opfs | 2 ms (carried over: measured unknown date, not in this run) |") {
		t.Errorf("a browser row from an older file is not marked as carried over:\n%s", b.String())
	}

	// Measured in this run (started after it): no such mark.
	got.Started = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	browser.Started = got.Started.Add(time.Minute)
	if err := Save(filepath.Join(dir, "browser.json"), browser); err != nil {
		t.Fatal(err)
	}
	if _, err := MergeBrowser(got, filepath.Join(dir, "browser.json")); err != nil {
		t.Fatal(err)
	}
	for _, r := range got.Records {
		if r.ID == "8.opfs" && r.CarriedOver != "" {
			t.Errorf("a browser row measured in this run is marked carried over: %q", r.CarriedOver)
		}
	}
	browser.Started = got.Started.Add(-48 * time.Hour)
	if err := Save(filepath.Join(dir, "browser.json"), browser); err != nil {
		t.Fatal(err)
	}
	if _, err := MergeBrowser(got, filepath.Join(dir, "browser.json")); err != nil {
		t.Fatal(err)
	}
	for _, r := range got.Records {
		if r.ID == "8.opfs" && r.CarriedOver != "2026-11-29" {
			t.Errorf("a browser row of an earlier day: carried over %q", r.CarriedOver)
		}
	}
	if _, err := os.Stat(name + ".tmp"); err == nil {
		t.Error("temporary file left behind")
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.01234: "0.0123", 1.5: "1.5", 2: "2", 12.04: "12", 12.34: "12.3", 523.4: "523", 52300: "52,300", 1234567: "1,234,567"} {
		if got := Num(v); got != want {
			t.Errorf("Num(%v) = %q, want %q", v, got, want)
		}
	}
}
