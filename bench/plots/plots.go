// Package plots draws the benchmark results as small PNGs with
// gonum.org/v1/plot: latency distributions per scenario, throughput against
// the number of writers, and bytes per mutation against the page baseline.
// It reads only a report.File, so the plots can be redrawn from any results
// file without measuring again.
package plots

import (
	"errors"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/sqlsync-go/sqlsync/bench/report"
)

// Size of every plot: small, so the PNGs stay light in the repository.
const (
	width  = 5 * vg.Inch
	height = 3.2 * vg.Inch
)

// palette holds the series colours: sqlsync first, baselines after.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // orange
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, // purple
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}, // brown
}

// Draw writes every plot the records of f allow into dir and returns the
// files written. A plot whose records are missing is skipped.
func Draw(f *report.File, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	type drawer struct {
		name string
		draw func(*report.File) (*plot.Plot, error)
	}
	var out []string
	var errs []error
	for _, d := range []drawer{
		{"local-latency.png", localLatency},
		{"propagation-latency.png", propagationLatency},
		{"throughput.png", throughput},
		{"memory.png", memory},
		{"wire-bytes.png", wireBytes},
		{"rebase.png", rebase},
		{"catchup.png", catchup},
	} {
		p, err := d.draw(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("plot %s: %w", d.name, err))
			continue
		}
		if p == nil {
			continue
		}
		name := filepath.Join(dir, d.name)
		if err := p.Save(width, height, name); err != nil {
			errs = append(errs, fmt.Errorf("plot %s: %w", d.name, err))
			continue
		}
		out = append(out, name)
	}
	return out, errors.Join(errs...)
}

// measured returns f's measured records of scenario n.
func measured(f *report.File, n int) []report.Record {
	var out []report.Record
	for _, r := range f.Records {
		if r.Scenario == n && r.Status == report.StatusMeasured {
			out = append(out, r)
		}
	}
	return out
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	p.Add(plotter.NewGrid())
	return p
}

// addCDF adds the distribution s as a line of latency (x) against
// percentile (y).
func addCDF(p *plot.Plot, name string, s report.Stat, i int, dashed bool) error {
	if len(s.Quantiles) == 0 {
		return nil
	}
	xys := make(plotter.XYs, 0, len(s.Quantiles))
	for q, v := range s.Quantiles {
		if v > 0 {
			xys = append(xys, plotter.XY{X: v, Y: float64(q)})
		}
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color = palette[i%len(palette)]
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
	}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func logX(p *plot.Plot) {
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
}

// cdfLegend puts the legend of a distribution plot in its bottom right
// corner, after widening the latency axis so that the corner is empty.
func cdfLegend(p *plot.Plot) {
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.YOffs = vg.Points(8)
	p.Legend.TextStyle.Font.Size = vg.Points(7)
	if p.X.Max > 0 {
		p.X.Max *= 100
	}
}

func localLatency(f *report.File) (*plot.Plot, error) {
	recs := measured(f, 1)
	if len(recs) == 0 {
		return nil, nil
	}
	p := newPlot("1. local durable one-row insert", "latency (ms, log)", "percentile")
	logX(p)
	defer cdfLegend(p)
	i := 0
	for _, r := range recs {
		if err := addCDF(p, "sqlsync, "+str(r.Params["mutator"])+" mutator", r.Figure, i, false); err != nil {
			return nil, err
		}
		i++
	}
	if b := recs[0].Baseline; b != nil {
		if err := addCDF(p, b.Name, b.Stat, i, true); err != nil {
			return nil, err
		}
		i++
	}
	for _, a := range recs[0].Also {
		if a.Kind == report.KindDist {
			if err := addCDF(p, a.Name, a.Stat, i, true); err != nil {
				return nil, err
			}
			i++
		}
	}
	return p, nil
}

func propagationLatency(f *report.File) (*plot.Plot, error) {
	recs := measured(f, 2)
	if len(recs) == 0 {
		return nil, nil
	}
	p := newPlot("2. propagation A.Mutate → B subscription", "latency (ms, log)", "percentile")
	logX(p)
	defer cdfLegend(p)
	for i, r := range recs {
		if err := addCDF(p, r.ID, r.Figure, i, false); err != nil {
			return nil, err
		}
		if b := r.Baseline; b != nil {
			if err := addCDF(p, r.ID+": echo RTT", b.Stat, i, true); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func throughput(f *report.File) (*plot.Plot, error) {
	var ours, plain plotter.XYs
	var e2e []report.Record
	for _, r := range measured(f, 3) {
		w, ok := num(r.Params["writers"])
		if !ok {
			e2e = append(e2e, r)
			continue
		}
		ours = append(ours, plotter.XY{X: w, Y: r.Figure.Value})
		if r.Baseline != nil {
			plain = append(plain, plotter.XY{X: w, Y: r.Baseline.Value})
		}
	}
	if len(ours) == 0 {
		return nil, nil
	}
	p := newPlot("3. durable mutations/s, one document", "writers", "mutations/s")
	p.Legend.Left = false
	for i, s := range []struct {
		name string
		xys  plotter.XYs
	}{{"coordinator Apply (group commit)", ours}, {"plain SQLite, same grouping", plain}} {
		if len(s.xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return nil, err
		}
		l.Color, pts.Color = palette[i], palette[i]
		l.Width = vg.Points(1.5)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	for _, r := range e2e {
		c, _ := num(r.Params["clients"])
		pts, err := plotter.NewScatter(plotter.XYs{{X: c, Y: r.Figure.Value}})
		if err != nil {
			return nil, err
		}
		pts.Color = palette[3]
		pts.Shape = draw.BoxGlyph{}
		pts.Radius = vg.Points(3)
		p.Add(pts)
		p.Legend.Add("end to end through the server (clients)", pts)
	}
	if err := hline(p, 50000, "aim 50,000/s", palette[2]); err != nil {
		return nil, err
	}
	p.Y.Min = 0
	return p, nil
}

// hline adds a dashed horizontal line at y across the plotted x range.
func hline(p *plot.Plot, y float64, name string, c color.Color) error {
	xmin, xmax := p.X.Min, p.X.Max
	l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: y}, {X: xmax, Y: y}})
	if err != nil {
		return err
	}
	l.Color = c
	l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func memory(f *report.File) (*plot.Plot, error) {
	var rec *report.Record
	for _, r := range measured(f, 4) {
		if r.ID == "4.mem" {
			rec = &r
		}
	}
	if rec == nil {
		return nil, nil
	}
	names := []string{"RSS"}
	vals := plotter.Values{rec.Figure.Value}
	for _, a := range rec.Also {
		if a.Unit == "MiB/doc" {
			names = append(names, shorten(a.Name))
			vals = append(vals, a.Value)
		}
	}
	p := newPlot(fmt.Sprintf("4. memory per open document (%s docs)", str(rec.Params["documents"])), "", "MiB per document")
	if err := bars(p, names, []series{{"measured", vals}}); err != nil {
		return nil, err
	}
	if rec.Aim != nil && rec.Aim.MaxValue > 0 {
		if err := hline(p, rec.Aim.MaxValue, "aim", palette[3]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// shorten makes an Also name fit under a bar.
func shorten(s string) string {
	s = strings.ReplaceAll(s, "HeapInuse", "heap")
	s = strings.ReplaceAll(s, " per idle doc", "")
	s = strings.ReplaceAll(s, " per doc after the load phase", ", loaded")
	return s
}

func wireBytes(f *report.File) (*plot.Plot, error) {
	recs := measured(f, 5)
	if len(recs) == 0 {
		return nil, nil
	}
	var names []string
	var wire, frame, pages, aim plotter.Values
	for _, r := range recs {
		if r.Baseline == nil {
			continue
		}
		names = append(names, strings.TrimPrefix(r.ID, "5."))
		wire = append(wire, r.Figure.Mean)
		frame = append(frame, alsoMean(r, "diff frames before deflate"))
		pages = append(pages, r.Baseline.Mean)
		aim = append(aim, r.Baseline.Mean/8)
	}
	p := newPlot("5. bytes received per mutation (mean)", "", "bytes")
	p.Legend.Left = true
	err := bars(p, names, []series{
		{"on the wire (deflate, XOR deltas)", wire},
		{"diff frame before deflate", frame},
		{"changed pages × 4096", pages},
		{"aim: 1/8 of the pages", aim},
	})
	return p, err
}

func alsoMean(r report.Record, prefix string) float64 {
	for _, a := range r.Also {
		if strings.HasPrefix(a.Name, prefix) {
			return a.Mean
		}
	}
	return 0
}

func alsoValue(r report.Record, prefix string) float64 {
	for _, a := range r.Also {
		if strings.HasPrefix(a.Name, prefix) {
			return a.Value
		}
	}
	return 0
}

func rebase(f *report.File) (*plot.Plot, error) {
	var ours, base, ours99, base99 plotter.XYs
	for _, r := range measured(f, 6) {
		k, ok := num(r.Params["pending"])
		if !ok || r.Baseline == nil {
			continue
		}
		ours = append(ours, plotter.XY{X: k, Y: r.Figure.P50})
		ours99 = append(ours99, plotter.XY{X: k, Y: r.Figure.P99})
		base = append(base, plotter.XY{X: k, Y: r.Baseline.P50})
		base99 = append(base99, plotter.XY{X: k, Y: r.Baseline.P99})
	}
	if len(ours) == 0 {
		return nil, nil
	}
	p := newPlot("6. rebase time against pending mutations", "pending mutations (log)", "ms (log)")
	logX(p)
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	for _, s := range []struct {
		name   string
		xys    plotter.XYs
		c      int
		dashed bool
	}{
		{"Client.Rebase p50", ours, 0, false},
		{"Client.Rebase p99", ours99, 0, true},
		{"replay on a fresh connection p50", base, 1, false},
		{"replay on a fresh connection p99", base99, 1, true},
	} {
		l, pts, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return nil, err
		}
		l.Color, pts.Color = palette[s.c], palette[s.c]
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	return p, nil
}

func catchup(f *report.File) (*plot.Plot, error) {
	var rec *report.Record
	for _, r := range measured(f, 7) {
		if r.ID == "7.bytes" {
			rec = &r
		}
	}
	if rec == nil || rec.Baseline == nil {
		return nil, nil
	}
	names := []string{"catch-up", "changed pages", "file, deflate", "whole file", "fresh sync"}
	vals := plotter.Values{
		rec.Figure.Value / (1 << 20),
		rec.Baseline.Value / (1 << 20),
		alsoValue(*rec, "whole file over") / (1 << 20),
		alsoValue(*rec, "whole file") / (1 << 20),
		alsoValue(*rec, "fresh replica") / (1 << 20),
	}
	p := newPlot(fmt.Sprintf("7. catch-up, %s commits behind", str(rec.Params["commits_behind"])), "", "MiB")
	err := bars(p, names, []series{{"bytes", vals}})
	return p, err
}

type series struct {
	name string
	vals plotter.Values
}

// bars draws grouped bars: one group per name, one bar per series, each
// labelled with its value.
func bars(p *plot.Plot, names []string, ss []series) error {
	w := vg.Points(min(30, 64/float64(max(len(ss), 1))))
	var top float64
	for i, s := range ss {
		if len(s.vals) == 0 {
			continue
		}
		b, err := plotter.NewBarChart(s.vals, w)
		if err != nil {
			return err
		}
		b.Color = palette[i%len(palette)]
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(ss)-1)/2)
		p.Add(b)
		var at plotter.XYLabels
		for x, v := range s.vals {
			at.XYs = append(at.XYs, plotter.XY{X: float64(x), Y: v})
			at.Labels = append(at.Labels, report.Num(v))
		}
		labels, err := plotter.NewLabels(at)
		if err != nil {
			return err
		}
		for j := range labels.TextStyle {
			labels.TextStyle[j].Font.Size = vg.Points(6)
			labels.TextStyle[j].XAlign = draw.XCenter
		}
		labels.Offset = vg.Point{X: b.Offset, Y: vg.Points(2)}
		p.Add(labels)
		if len(ss) > 1 {
			p.Legend.Add(s.name, b)
		}
		for _, v := range s.vals {
			top = max(top, v)
		}
	}
	p.NominalX(names...)
	p.Y.Min = 0
	p.Y.Max = top * 1.25
	p.Legend.Left = false
	return nil
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return report.Num(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// num reads a number from a JSON-decoded parameter.
func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}
