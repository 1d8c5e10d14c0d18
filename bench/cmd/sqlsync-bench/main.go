// Command sqlsync-bench runs sqlsync's benchmark suite (see bench/README.md):
//
//	sqlsync-bench run   [flags]  run the scenarios, write the JSON, print the table
//	sqlsync-bench table [flags]  print the Markdown table of a results file
//	sqlsync-bench plot  [flags]  draw the plots of a results file as PNGs
//
// `make bench` runs `run` and then `plot`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/sqlsync-go/sqlsync/bench/plots"
	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/bench/scenario"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: sqlsync-bench <command> [flags]

commands:
  run    run the scenarios, write the results JSON and print the table
  table  print the Markdown table of a results file
  plot   draw the plots of a results file as PNGs

"sqlsync-bench <command> -h" lists the command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runCmd(ctx, args[1:], stdout, stderr)
	case "table":
		err = tableCmd(args[1:], stdout, stderr)
	case "plot":
		err = plotCmd(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sqlsync-bench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var usageErr usageError
	switch {
	case errors.As(err, &usageErr):
		fmt.Fprintln(stderr, "sqlsync-bench:", err)
		return 2
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "sqlsync-bench:", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "bench/results/latest.json", "results `file` to write")
	browser := fs.String("browser", scenario.BrowserResults, "browser results `file` to merge, if it exists")
	only := fs.String("scenarios", "all", "scenarios to run: keys or numbers, comma-separated")
	merge := fs.Bool("merge", false, "keep the other scenarios' records of an existing results file")
	timeout := fs.Duration("timeout", 14*time.Minute, "upper bound on the whole run")
	cfg := scenario.DefaultConfig()
	cfg.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Sprintf("run takes no arguments, got %q", fs.Args())}
	}
	selected, err := scenario.Select(*only)
	if err != nil {
		return usageError{err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	f := &report.File{Version: report.FormatVersion, Started: time.Now().UTC().Truncate(time.Second), Env: environment(cfg.Dir, args)}
	if *merge {
		old, err := report.Load(*out)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if old != nil {
			f.Records = old.Records
		}
	}
	if st, err := scenario.FsyncLatency(ctx, cfg.Dir, 1000, 10*time.Second); err != nil {
		fmt.Fprintln(stderr, "sqlsync-bench:", err)
	} else {
		f.Env.Fsync = &st
	}
	start := time.Now()
	recs := scenario.Run(ctx, cfg, selected, stderr)
	f.Seconds = time.Since(start).Round(time.Second).Seconds()
	f.Env.LoadEnd = loadAvg()
	f.Records = replace(f.Records, recs, selected)
	if _, err := report.MergeBrowser(f, *browser); err != nil {
		fmt.Fprintln(stderr, "sqlsync-bench: browser results not merged:", err)
	}
	if err := report.Save(*out, f); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s (%d records in %.0fs)\n\n", *out, len(f.Records), f.Seconds)
	if err := report.WriteEnv(stdout, f); err != nil {
		return err
	}
	return report.WriteMarkdown(stdout, f)
}

// replace puts recs in place of the records of the scenarios run, keeping
// the scenarios in order.
func replace(old, recs []report.Record, ran []scenario.Scenario) []report.Record {
	drop := map[int]bool{}
	for _, s := range ran {
		drop[s.Num] = true
	}
	var out []report.Record
	for _, r := range old {
		if !drop[r.Scenario] {
			out = append(out, r)
		}
	}
	out = append(out, recs...)
	// A stable sort by scenario keeps each scenario's own order.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j-1].Scenario > out[j].Scenario; j-- {
			out[j-1], out[j] = out[j], out[j-1]
		}
	}
	return out
}

func tableCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "bench/results/latest.json", "results `file`")
	browser := fs.String("browser", scenario.BrowserResults, "browser results `file` to merge, if it exists")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	f, err := report.Load(*in)
	if err != nil {
		return err
	}
	if _, err := report.MergeBrowser(f, *browser); err != nil {
		return err
	}
	if err := report.WriteEnv(stdout, f); err != nil {
		return err
	}
	return report.WriteMarkdown(stdout, f)
}

func plotCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "bench/results/latest.json", "results `file`")
	dir := fs.String("dir", "bench/results", "`directory` for the PNGs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	f, err := report.Load(*in)
	if err != nil {
		return err
	}
	files, err := plots.Draw(f, *dir)
	for _, name := range files {
		fmt.Fprintln(stdout, "wrote", name)
	}
	return err
}

// environment describes the machine, the scratch directory and the flags.
func environment(dir string, args []string) report.Env {
	env := report.Env{
		GoVersion:  runtime.Version(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		ScratchDir: dir,
		FSType:     fsType(dir),
		Args:       strings.Join(args, " "),
		LoadStart:  loadAvg(),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				env.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return env
}

// loadAvg returns the 1, 5 and 15 minute load averages, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
