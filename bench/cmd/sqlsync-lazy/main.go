// Command sqlsync-lazy opens a lazy replica of a document filled by
// internal/bigdoc (bench/cmd/sqlsync-fill) and prints, as JSON, how long
// its first point query took from the open, a mix of point queries and a
// range scan, with the pages each fetched and its memory
// (bench/lazyprobe):
//
//	sqlsync-lazy -url ws://127.0.0.1:8080/v1/sync -doc big -rows 67104 -cache-mib 16
//
// Benchmark scenario 13 (bench/README.md) runs it, a process per open.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sqlsync-go/sqlsync/bench/lazyprobe"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sqlsync-lazy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg lazyprobe.Config
	fs.StringVar(&cfg.URL, "url", "", "the coordinator's sync `endpoint` (ws://host:port/v1/sync)")
	fs.StringVar(&cfg.Doc, "doc", "big", "the document `ID`")
	fs.Int64Var(&cfg.Rows, "rows", 0, "rows in table big (ids 1..rows)")
	fs.Int64Var(&cfg.BodyBytes, "body", 1000, "bytes of each row's body (internal/bigdoc.RowBytes), checked (0: not checked)")
	cacheMiB := fs.Float64("cache-mib", 16, "the replica's cache bound in MiB (client.Options.CacheBytes)")
	fs.IntVar(&cfg.Queries, "queries", 100, "point queries in the mix after the first")
	fs.Int64Var(&cfg.ScanRows, "scan-rows", 0, "rows of the range scan after the mix (0: none)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "picks the rows queried")
	execNS := fs.Int64("exec-unix-ns", 0, "when the parent started this process (Unix ns), to time exec to first row")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "upper bound on the whole probe")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.URL == "" || cfg.Rows <= 0 || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "sqlsync-lazy: needs -url and a positive -rows, and no arguments")
		return 2
	}
	cfg.CacheBytes = int64(*cacheMiB * (1 << 20))
	if *execNS != 0 {
		cfg.Exec = time.Unix(0, *execNS)
	}
	res, err := lazyprobe.Run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(stderr, "sqlsync-lazy:", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "sqlsync-lazy:", err)
		return 1
	}
	return 0
}
