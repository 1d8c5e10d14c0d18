package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3/vfs/memdb"
	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/client"
)

// LocalConfig tunes scenario 1.
type LocalConfig struct {
	Samples  int           // measured mutations per mutator
	Warmup   int           // mutations run first and not measured
	Duration time.Duration // upper bound per mutator
}

func (c *LocalConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.Samples, "local.samples", c.Samples, "scenario 1: measured mutations per mutator")
	fs.IntVar(&c.Warmup, "local.warmup", c.Warmup, "scenario 1: unmeasured mutations first")
	fs.DurationVar(&c.Duration, "local.duration", c.Duration, "scenario 1: time bound per mutator")
}

// runLocal is scenario 1: the latency of one durable local mutation (a
// one-row insert through the mutator) on a native client whose state is on
// disk, against the same insert as a plain durable SQLite transaction.
func runLocal(ctx context.Context, e *env) ([]report.Record, error) {
	names := MutatorNames()
	if l := e.cfg.LocalMutators; l != "" && l != "all" {
		names = strings.Split(l, ",")
	}
	var recs []report.Record
	var errs []error
	for _, name := range names {
		impl, err := lookupMutator(strings.TrimSpace(name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rec, err := e.localOne(ctx, impl)
		if err != nil {
			errs = append(errs, fmt.Errorf("mutator %s: %w", impl.Name, err))
			continue
		}
		recs = append(recs, rec)
	}
	return recs, errors.Join(errs...)
}

func (e *env) localOne(ctx context.Context, impl Mutator) (report.Record, error) {
	var rec report.Record
	dir, err := e.subdir("local-" + impl.Name)
	if err != nil {
		return rec, err
	}
	pool := &mutatorPool{impl: impl, cfg: &e.cfg}
	defer pool.close()
	doc, err := e.openReplica(ctx, pool, client.Options{DocID: "local", StateDir: filepath.Join(dir, "client")})
	if err != nil {
		return rec, err
	}
	defer doc.Close()
	wal, err := openPlain(filepath.Join(dir, "plain-wal.db"), "wal")
	if err != nil {
		return rec, err
	}
	defer wal.Close()
	del, err := openPlain(filepath.Join(dir, "plain-delete.db"), "delete")
	if err != nil {
		return rec, err
	}
	defer del.Close()
	// The same pair with nothing durable (a replica in memory, a memdb
	// database) separates the CPU the sync layer adds from fsync waits.
	memDoc, err := e.openReplica(ctx, pool, client.Options{DocID: "local"})
	if err != nil {
		return rec, err
	}
	defer memDoc.Close()
	memName := "sqlsync-bench-local-" + impl.Name
	memdb.Create(memName, nil)
	defer memdb.Delete(memName)
	mem, err := openPlain("file:/"+memName+"?vfs=memdb", "")
	if err != nil {
		return rec, err
	}
	defer mem.Close()

	// Each iteration measures them all one after the other, so that a
	// slow moment of the machine hits them alike.
	var ours, walT, delT, oursMem, memT []time.Duration
	step := func(i int, keep bool) error {
		r := row{id: fmt.Sprintf("item-%07d", i), title: fmt.Sprintf("buy milk, %d bottles", i), pos: float64(i + 1)}
		t0 := time.Now()
		if _, err := doc.Mutate(ctx, "add", r.args()); err != nil {
			return fmt.Errorf("mutate: %w", err)
		}
		t1 := time.Now()
		if err := wal.insertRows([]row{r}); err != nil {
			return fmt.Errorf("plain WAL: %w", err)
		}
		t2 := time.Now()
		if err := del.insertRows([]row{r}); err != nil {
			return fmt.Errorf("plain DELETE: %w", err)
		}
		t3 := time.Now()
		if _, err := memDoc.Mutate(ctx, "add", r.args()); err != nil {
			return fmt.Errorf("mutate in memory: %w", err)
		}
		t4 := time.Now()
		if err := mem.insertRows([]row{r}); err != nil {
			return fmt.Errorf("plain memdb: %w", err)
		}
		t5 := time.Now()
		if keep {
			ours = append(ours, t1.Sub(t0))
			walT = append(walT, t2.Sub(t1))
			delT = append(delT, t3.Sub(t2))
			oursMem = append(oursMem, t4.Sub(t3))
			memT = append(memT, t5.Sub(t4))
		}
		return nil
	}
	for i := range e.cfg.Local.Warmup {
		if err := step(i, false); err != nil {
			return rec, err
		}
	}
	for dl, i := newDeadline(e.cfg.Local.Samples, e.cfg.Local.Duration), 0; dl.more(ctx, i); i++ {
		if err := step(e.cfg.Local.Warmup+i, true); err != nil {
			return rec, err
		}
	}
	if len(ours) == 0 {
		return rec, errors.New("no samples")
	}
	rec = report.Record{
		ID:       "1." + impl.Name,
		Scenario: 1,
		Name:     fmt.Sprintf("local mutate (one-row insert), %s mutator, filestore, durable", impl.Name),
		Params: map[string]any{
			"mutator": impl.Name, "state": "filestore snapshot + pending log on the os FS (one fsync per mutation)",
			"baseline": "plain ncruces SQLite file, journal_mode=WAL, synchronous=FULL, prepared INSERT in BEGIN IMMEDIATE..COMMIT",
			"warmup":   e.cfg.Local.Warmup,
		},
		Samples:  len(ours),
		Figure:   report.Durations(ours),
		Baseline: &report.Named{Name: "plain SQLite WAL sync=FULL", Stat: report.Durations(walT)},
		Aim:      &report.Aim{Text: "≤ 1.5× (p50)", MaxRatio: 1.5},
		Also: []report.Named{
			{Name: "plain SQLite DELETE journal sync=FULL", Stat: report.Durations(delT)},
			{Name: "sqlsync, replica in memory (no fsync)", Stat: report.Durations(oursMem)},
			{Name: "plain SQLite in memory (memdb)", Stat: report.Durations(memT)},
		},
	}
	rec.Finish("p50")
	rec.Also = append(rec.Also,
		report.Named{Name: "ratio at p99", Stat: report.Value("×", rec.Figure.P99/rec.Baseline.P99)},
		report.Named{Name: "ratio to DELETE journal at p50", Stat: report.Value("×", rec.Figure.P50/rec.Also[0].P50)},
		report.Named{Name: "in-memory ratio at p50 (CPU only)", Stat: report.Value("×", rec.Also[1].P50/rec.Also[2].P50)})
	return rec, nil
}
