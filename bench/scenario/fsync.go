package scenario

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sqlsync-go/sqlsync/bench/report"
)

// FsyncLatency measures appending 4 KiB to a file in dir and fsyncing it,
// n times or for at most d: the floor under every durable commit of the
// run, recorded with the results because virtual disks vary so much.
func FsyncLatency(ctx context.Context, dir string, n int, d time.Duration) (report.Stat, error) {
	f, err := os.CreateTemp(dir, "sqlsync-bench-fsync-")
	if err != nil {
		return report.Stat{}, fmt.Errorf("fsync probe: %w", err)
	}
	name := f.Name()
	defer os.Remove(name)
	defer f.Close()
	buf := make([]byte, 4096)
	var ds []time.Duration
	for dl, i := newDeadline(n, d), 0; dl.more(ctx, i); i++ {
		start := time.Now()
		if _, err := f.WriteAt(buf, int64(i)*int64(len(buf))); err != nil {
			return report.Stat{}, fmt.Errorf("fsync probe: %w", err)
		}
		if err := f.Sync(); err != nil {
			return report.Stat{}, fmt.Errorf("fsync probe: %w", err)
		}
		ds = append(ds, time.Since(start))
	}
	if len(ds) == 0 {
		return report.Stat{}, fmt.Errorf("fsync probe %s: no samples", filepath.Base(name))
	}
	return report.Durations(ds), nil
}

// FsyncThroughput measures files writers, each appending 4 KiB to a file of
// its own in dir and fsyncing it, over and over for d: the disk's rate of
// durable appends when many documents commit at once, the bound of
// scenario 4's load phase. It returns appends per second.
func FsyncThroughput(ctx context.Context, dir string, files int, d time.Duration) (float64, error) {
	tmp, err := os.MkdirTemp(dir, "sqlsync-bench-fsyncs-")
	if err != nil {
		return 0, fmt.Errorf("fsync throughput: %w", err)
	}
	defer os.RemoveAll(tmp)
	var fs []*os.File
	defer func() {
		for _, f := range fs {
			f.Close()
		}
	}()
	for i := range files {
		f, err := os.Create(filepath.Join(tmp, fmt.Sprintf("f%05d", i)))
		if err != nil {
			return 0, fmt.Errorf("fsync throughput: %w", err)
		}
		fs = append(fs, f)
	}
	counts := make([]int64, files)
	errs := make(chan error, files)
	start := time.Now()
	until := start.Add(d)
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for n := int64(0); time.Now().Before(until) && ctx.Err() == nil; n++ {
				if _, err := f.WriteAt(buf, n*int64(len(buf))); err != nil {
					errs <- err
					return
				}
				if err := f.Sync(); err != nil {
					errs <- err
					return
				}
				counts[i]++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("fsync throughput: %w", err)
	}
	var total int64
	for _, c := range counts {
		total += c
	}
	return float64(total) / elapsed.Seconds(), nil
}
