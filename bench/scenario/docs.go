package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync/atomic"
	"time"

	osfs "github.com/hack-pad/hackpadfs/os"
	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/vfs/filestore"
)

// DocsConfig tunes scenario 4.
type DocsConfig struct {
	N             int           // documents held open
	SeedMutations int           // mutations each document gets when opened
	Duration      time.Duration // length of the load phase
	MaxMutations  int           // upper bound of the load phase
}

func (c *DocsConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.N, "docs.n", c.N, "scenario 4: documents held open")
	fs.IntVar(&c.SeedMutations, "docs.seed", c.SeedMutations, "scenario 4: mutations per document when opened")
	fs.DurationVar(&c.Duration, "docs.duration", c.Duration, "scenario 4: length of the load phase")
	fs.IntVar(&c.MaxMutations, "docs.max", c.MaxMutations, "scenario 4: mutation bound of the load phase")
}

// openDoc is one coordinator document held open as the server holds it: a
// filestore, an engine coordinator and a writer goroutine waiting for work.
type openDoc struct {
	store *filestore.Store
	coord *engine.Coordinator
	done  chan struct{}
}

// mib is a mebibyte.
const mib = 1 << 20

// runDocs is scenario 4: the memory each open, idle document costs with
// 1,000 of them open, and the mutations per second all of them take
// together when each has one writer committing one mutation at a time.
func runDocs(ctx context.Context, e *env) (recs []report.Record, err error) {
	cfg := e.cfg.Docs
	pool, err := e.mutators()
	if err != nil {
		return nil, err
	}
	root, err := e.subdir("docs")
	if err != nil {
		return nil, err
	}
	fsys, err := osfs.NewFS().Sub(toFSPath(root))
	if err != nil {
		return nil, fmt.Errorf("docs directory: %w", err)
	}
	base, err := measureMemory()
	if err != nil {
		return nil, err
	}

	start := make(chan struct{})
	quit := make(chan struct{})
	var (
		docs     []*openDoc
		applied  atomic.Int64
		budget   atomic.Int64
		loadErr  = make(chan error, 1)
		until    time.Time
		untilSet = make(chan struct{})
	)
	budget.Store(int64(cfg.MaxMutations))
	defer func() {
		close(quit)
		var errs []error
		for _, d := range docs {
			<-d.done
			errs = append(errs, d.coord.Close(), d.store.Close())
		}
		err = errors.Join(err, errors.Join(errs...))
	}()
	openStart := time.Now()
	for i := 0; i < cfg.N; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := pool.get(ctx)
		if err != nil {
			return nil, err
		}
		store, err := filestore.Open(fsys, fmt.Sprintf("d%05d", i))
		if err != nil {
			return nil, fmt.Errorf("open document %d: %w", i, err)
		}
		coord, err := engine.OpenCoordinator(ctx, store, m, engine.CoordinatorOptions{})
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("open document %d: %w", i, err)
		}
		d := &openDoc{store: store, coord: coord, done: make(chan struct{})}
		docs = append(docs, d)
		seed := make([]engine.Mutation, cfg.SeedMutations)
		for j := range seed {
			seed[j] = engine.Mutation{ClientID: "seed", Seq: uint64(j + 1), Name: "add",
				Args: row{id: fmt.Sprintf("seed-%04d", j), title: fmt.Sprintf("todo %d", j), pos: float64(j + 1)}.args()}
		}
		if _, err := coord.Apply(ctx, seed); err != nil {
			return nil, fmt.Errorf("seed document %d: %w", i, err)
		}
		go func() {
			defer close(d.done)
			select {
			case <-start:
			case <-quit:
				return
			}
			<-untilSet
			for seq := uint64(1); time.Now().Before(until) && budget.Add(-1) >= 0; seq++ {
				select {
				case <-quit:
					return
				default:
				}
				m := engine.Mutation{ClientID: "load", Seq: seq, Name: "add",
					Args: row{id: fmt.Sprintf("load-%07d", seq), title: fmt.Sprintf("todo %d", seq), pos: float64(cfg.SeedMutations) + float64(seq)}.args()}
				if _, err := d.coord.Apply(ctx, []engine.Mutation{m}); err != nil {
					select {
					case loadErr <- err:
					default:
					}
					return
				}
				applied.Add(1)
			}
		}()
	}
	openTime := time.Since(openStart)
	idle, err := measureMemory()
	if err != nil {
		return nil, err
	}
	n := float64(len(docs))
	perDoc := func(a, b uint64) float64 { return (float64(a) - float64(b)) / n / mib }
	idleRSS := perDoc(idle.RSS, base.RSS)

	// Load: every document's writer commits one mutation at a time.
	loadStart := time.Now()
	until = loadStart.Add(cfg.Duration)
	close(untilSet)
	close(start)
	for _, d := range docs {
		<-d.done
	}
	loadTime := time.Since(loadStart)
	select {
	case err := <-loadErr:
		return nil, fmt.Errorf("load phase: %w", err)
	default:
	}
	after, err := measureMemory()
	if err != nil {
		return nil, err
	}
	rate := float64(applied.Load()) / loadTime.Seconds()

	mem := report.Record{
		ID:       "4.mem",
		Scenario: 4,
		Name:     fmt.Sprintf("resident memory per idle open document, %d open", len(docs)),
		Params: map[string]any{"mutator": pool.impl.Name, "documents": len(docs), "seed_mutations": cfg.SeedMutations,
			"per_document": "filestore + engine.Coordinator (one SQLite connection) + a waiting writer goroutine",
			"measure":      "RSS from /proc/self/statm after runtime.GC and debug.FreeOSMemory, delta over the documents"},
		Samples: len(docs),
		Figure:  report.Value("MiB/doc", idleRSS),
		Aim:     &report.Aim{Text: "≤ 2 MiB per idle open doc", MaxValue: 2},
		Also: []report.Named{
			{Name: "HeapInuse per idle doc", Stat: report.Value("MiB/doc", perDoc(idle.HeapInuse, base.HeapInuse))},
			{Name: "Sys per idle doc", Stat: report.Value("MiB/doc", perDoc(idle.Sys, base.Sys))},
			{Name: "RSS per doc after the load phase", Stat: report.Value("MiB/doc", perDoc(after.RSS, base.RSS))},
			{Name: "HeapInuse per doc after the load phase", Stat: report.Value("MiB/doc", perDoc(after.HeapInuse, base.HeapInuse))},
			{Name: "open + seed time per doc", Stat: report.Value("ms", float64(openTime.Milliseconds())/n)},
		},
	}
	mem.Finish("")
	// What bounds the load phase: every commit waits for its fsync, so the
	// disk's rate of concurrent durable appends, measured now.
	fsyncRate, err := FsyncThroughput(ctx, e.dir, len(docs), min(cfg.Duration, 3*time.Second))
	if err != nil {
		return nil, err
	}
	load := report.Record{
		ID:       "4.rate",
		Scenario: 4,
		Name:     fmt.Sprintf("aggregate mutations/s over %d documents, one writer each", len(docs)),
		Params: map[string]any{"mutator": pool.impl.Name, "documents": len(docs), "commit": "one mutation per commit (fsync each)",
			"duration_s": cfg.Duration.Seconds()},
		Samples:  int(applied.Load()),
		Figure:   report.Value("mut/s", rate),
		Baseline: &report.Named{Name: fmt.Sprintf("%d files appended 4 KiB + fsynced at once, one writer each", len(docs)), Stat: report.Value("appends/s", fsyncRate)},
	}
	load.Finish("value")
	return []report.Record{mem, load}, nil
}
