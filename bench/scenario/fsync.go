package scenario

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
