// Package report holds the benchmark suite's results: one Record per
// scenario figure, its baseline measured in the same run, the ratio between
// them and whether the aim is met. It reads and writes the JSON file the
// suite produces (bench/results/latest.json) and renders it as a Markdown
// table. It does no measuring itself.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// FormatVersion is the version of the JSON layout written by Save.
const FormatVersion = 1

// Status values of a Record.
const (
	StatusMeasured    = "measured"
	StatusNotMeasured = "not measured yet"
	StatusError       = "error"
)

// Kinds of Stat.
const (
	KindDist  = "dist"  // a distribution of samples: P50, P95, P99
	KindValue = "value" // one figure: a rate, a byte count, a size
)

// Stat is one measured figure: either a distribution of samples (latency)
// or a single value (a rate, bytes). Unit says what the numbers count.
type Stat struct {
	Kind string  `json:"kind"`
	Unit string  `json:"unit"`
	N    int     `json:"n,omitempty"`
	P50  float64 `json:"p50,omitempty"`
	P95  float64 `json:"p95,omitempty"`
	P99  float64 `json:"p99,omitempty"`
	Mean float64 `json:"mean,omitempty"`
	Max  float64 `json:"max,omitempty"`
	// Value is the figure of a KindValue stat.
	Value float64 `json:"value"`
	// Quantiles, for a distribution, holds its 0th, 1st, ..., 100th
	// percentiles, enough to draw it.
	Quantiles []float64 `json:"quantiles,omitempty"`
}

// Of returns the figure of s that field names: "p50", "p95", "p99", "mean"
// or "value".
func (s Stat) Of(field string) float64 {
	switch field {
	case "p50":
		return s.P50
	case "p95":
		return s.P95
	case "p99":
		return s.P99
	case "mean":
		return s.Mean
	}
	return s.Value
}

// Headline is the figure of s a one-line summary shows: the median of a
// distribution, else the value.
func (s Stat) Headline() float64 {
	if s.Kind == KindDist {
		return s.P50
	}
	return s.Value
}

// Named is a Stat with a name: a baseline or a secondary figure.
type Named struct {
	Name string `json:"name"`
	Stat
}

// Aim is the target a figure should meet. Every bound that is set must hold.
type Aim struct {
	// Text states the aim as the issue does, e.g. "≤ 1.5× baseline".
	Text string `json:"text"`
	// MaxRatio and MinRatio bound Record.Ratio (0: unbounded).
	MaxRatio float64 `json:"max_ratio,omitempty"`
	MinRatio float64 `json:"min_ratio,omitempty"`
	// MaxValue and MinValue bound the figure's field AimOf (0: unbounded).
	MaxValue float64 `json:"max_value,omitempty"`
	MinValue float64 `json:"min_value,omitempty"`
	// AimOf names the field of the figure the value bounds apply to
	// ("p50", "value", ...); empty means the headline.
	AimOf string `json:"aim_of,omitempty"`
}

// Record is one row of the results: a scenario's figure under some
// parameters, with its baseline measured in the same run.
type Record struct {
	// ID is short and stable across runs, e.g. "1.go" or "6.k100".
	ID string `json:"id"`
	// Scenario is the scenario's number in bench/README.md (1..8).
	Scenario int `json:"scenario"`
	// Name says what was measured, for the table.
	Name   string         `json:"name"`
	Params map[string]any `json:"params,omitempty"`
	// Samples is the number of measurements behind Figure.
	Samples  int    `json:"samples"`
	Figure   Stat   `json:"figure"`
	Baseline *Named `json:"baseline,omitempty"`
	// Ratio is Figure/Baseline, both taken at field RatioOf.
	Ratio   float64 `json:"ratio,omitempty"`
	RatioOf string  `json:"ratio_of,omitempty"`
	Aim     *Aim    `json:"aim,omitempty"`
	// Met says whether the aim is met; nil when there is no aim or nothing
	// was measured.
	Met *bool `json:"met,omitempty"`
	// Status is StatusMeasured, StatusNotMeasured or StatusError.
	Status string `json:"status"`
	// Also holds secondary figures: other baselines, the same figure under
	// another setting, sizes behind a ratio.
	Also []Named `json:"also,omitempty"`
	// CarriedOver, when set, says the figure was not measured in this run
	// but taken from an earlier one: "2026-11-24", or "unknown date".
	CarriedOver string `json:"carried_over,omitempty"`
	// Note explains the figure: what dominates its cost, caveats.
	Note string `json:"note,omitempty"`
}

// Finish computes r's ratio (of field ratioOf) and whether its aim is met.
func (r *Record) Finish(ratioOf string) {
	if r.Status == "" {
		r.Status = StatusMeasured
	}
	if r.Status != StatusMeasured {
		return
	}
	if r.Baseline != nil && ratioOf != "" {
		if b := r.Baseline.Of(ratioOf); b != 0 {
			r.Ratio, r.RatioOf = r.Figure.Of(ratioOf)/b, ratioOf
		}
	}
	if r.Aim == nil {
		return
	}
	met := true
	a := r.Aim
	if a.MaxRatio > 0 && !(r.RatioOf != "" && r.Ratio <= a.MaxRatio) {
		met = false
	}
	if a.MinRatio > 0 && !(r.RatioOf != "" && r.Ratio >= a.MinRatio) {
		met = false
	}
	v := r.Figure.Headline()
	if a.AimOf != "" {
		v = r.Figure.Of(a.AimOf)
	}
	if a.MaxValue > 0 && v > a.MaxValue {
		met = false
	}
	if a.MinValue > 0 && v < a.MinValue {
		met = false
	}
	r.Met = &met
}

// Env describes the machine and run the results come from.
type Env struct {
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	// ScratchDir is where the scenarios kept their files, and FSType the
	// file system it is on (fsync costs differ wildly between them).
	ScratchDir string `json:"scratch_dir"`
	FSType     string `json:"fs_type,omitempty"`
	// Fsync is the latency of appending 4 KiB to a file and fsyncing it
	// in ScratchDir, measured at the start of the run: the floor of every
	// durable commit, and on virtual disks a noisy one.
	Fsync *Stat `json:"fsync,omitempty"`
	// LoadStart and LoadEnd are /proc/loadavg at the start and the end of
	// the run: other work on the machine skews absolute figures (the
	// ratios hold better, their baselines being measured alongside).
	LoadStart string `json:"load_start,omitempty"`
	LoadEnd   string `json:"load_end,omitempty"`
	Args      string `json:"args,omitempty"`
}

// File is the whole results file.
type File struct {
	Version int       `json:"version"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Env     Env       `json:"env"`
	Records []Record  `json:"records"`
}

// Save writes f as indented JSON to name, atomically (through name.tmp).
func Save(name string, f *File) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	return nil
}

// Load reads a results file written by Save.
func Load(name string) (*File, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("load results: %w", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("load results %s: %w", name, err)
	}
	if f.Version != FormatVersion {
		return nil, fmt.Errorf("load results %s: format version %d, want %d", name, f.Version, FormatVersion)
	}
	return &f, nil
}

// MergeBrowser replaces the records of f for the scenarios that the
// browser results in name hold (scenario 8, written by the Playwright run)
// with those records. A missing file changes nothing and is not an error.
// Records of a browser run that started before f's run were not measured
// in it: their note says so, with the date they were measured.
func MergeBrowser(f *File, name string) (merged bool, err error) {
	b, err := Load(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	scenarios := map[int]bool{}
	for _, r := range b.Records {
		scenarios[r.Scenario] = true
	}
	var out []Record
	for _, r := range f.Records {
		if !scenarios[r.Scenario] {
			out = append(out, r)
		}
	}
	carried := b.Started.IsZero() || b.Started.Before(f.Started)
	for _, r := range b.Records {
		if r.Status == "" {
			r.Status = StatusMeasured
		}
		if carried {
			r.CarriedOver = "unknown date"
			if !b.Started.IsZero() {
				r.CarriedOver = b.Started.UTC().Format("2006-01-02")
			}
		}
		if r.Met == nil {
			r.Finish(r.RatioOf)
		}
		out = append(out, r)
	}
	f.Records = out
	return true, nil
}
