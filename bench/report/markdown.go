package report

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteMarkdown writes f's records as a Markdown table: one row per record,
// with the figure, the baseline, the ratio, the aim and whether it is met.
func WriteMarkdown(w io.Writer, f *File) error {
	var b strings.Builder
	b.WriteString("| # | scenario | figure | baseline (same run) | ratio | aim | met |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range f.Records {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n",
			r.ID, cell(r.Name), cell(figureCell(r)), cell(baselineCell(r)), ratioCell(r), cell(aimCell(r)), metCell(r))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func figureCell(r Record) string {
	switch r.Status {
	case StatusMeasured:
		if r.CarriedOver != "" {
			return FormatStat(r.Figure) + " (carried over: measured " + r.CarriedOver + ", not in this run)"
		}
		return FormatStat(r.Figure)
	case StatusError:
		return "error: " + r.Note
	}
	return r.Status
}

func baselineCell(r Record) string {
	if r.Baseline == nil || r.Status != StatusMeasured {
		return "—"
	}
	return r.Baseline.Name + ": " + FormatStat(r.Baseline.Stat)
}

func ratioCell(r Record) string {
	if r.RatioOf == "" || r.Status != StatusMeasured {
		return "—"
	}
	return fmt.Sprintf("%s× (%s)", Num(r.Ratio), r.RatioOf)
}

func aimCell(r Record) string {
	if r.Aim == nil {
		return "report"
	}
	return r.Aim.Text
}

func metCell(r Record) string {
	switch {
	case r.Met == nil:
		return "—"
	case *r.Met:
		return "yes"
	}
	return "**NO**"
}

// FormatStat renders s compactly: "p50 1.2 / p95 2 / p99 3.4 ms" or
// "52,300 mut/s".
func FormatStat(s Stat) string {
	if s.Kind == KindDist {
		if s.P95 == 0 && s.P50 != 0 { // a figure recorded without it
			return fmt.Sprintf("p50 %s / p99 %s %s", Num(s.P50), Num(s.P99), s.Unit)
		}
		return fmt.Sprintf("p50 %s / p95 %s / p99 %s %s", Num(s.P50), Num(s.P95), Num(s.P99), s.Unit)
	}
	return Num(s.Value) + " " + s.Unit
}

// Num formats v with three significant digits, and thousands separators
// from 10,000 on.
func Num(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 10000:
		return thousands(int64(math.Round(v)))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return trimZeros(strconv.FormatFloat(v, 'f', 1, 64))
	case a >= 1:
		return trimZeros(strconv.FormatFloat(v, 'f', 2, 64))
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// trimZeros drops the trailing zeros of a decimal fraction.
func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// WriteEnv writes one Markdown paragraph saying where f was measured: the
// machine, the scratch file system and its fsync latency.
func WriteEnv(w io.Writer, f *File) error {
	e := f.Env
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs (GOMAXPROCS %d)", f.Started.Format("2006-01-02 15:04 MST"), e.GOOS, e.GOARCH, e.CPUs, e.GOMAXPROCS)
	if e.CPUModel != "" {
		fmt.Fprintf(&b, " (%s)", e.CPUModel)
	}
	fmt.Fprintf(&b, ", %s, scratch files on %s", e.GoVersion, orUnknown(e.FSType))
	if e.Fsync != nil {
		fmt.Fprintf(&b, " where a 4 KiB append + fsync takes %s", FormatStat(*e.Fsync))
	}
	fmt.Fprintf(&b, "; the run took %.0f s", f.Seconds)
	if e.LoadStart != "" {
		fmt.Fprintf(&b, ", load average %s at its start and %s at its end", e.LoadStart, orUnknown(e.LoadEnd))
	}
	b.WriteString(".\n\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown file system"
	}
	return s
}
