package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	osfs "github.com/hack-pad/hackpadfs/os"
	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/vfs/filestore"
)

// ThroughputConfig tunes scenario 3.
type ThroughputConfig struct {
	Writers      string        // writer counts to measure, comma-separated; the last is the headline
	Duration     time.Duration // per writer count
	MaxMutations int           // upper bound per writer count
	Push         int           // mutations per push
	MaxBatch     int           // the coordinator's group commit bound (server.Config.MaxBatch)
	Mutators     string        // other mutators measured at the headline writer count: names, or all
	E2EClients   int           // client replicas of the end-to-end run; 0 skips it
	E2EDuration  time.Duration // measured time of the end-to-end run
	E2EWindow    int           // most pending mutations an end-to-end writer lets pile up
}

func (c *ThroughputConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Writers, "throughput.writers", c.Writers, "scenario 3: writer counts, comma-separated")
	fs.DurationVar(&c.Duration, "throughput.duration", c.Duration, "scenario 3: time per writer count")
	fs.IntVar(&c.MaxMutations, "throughput.max", c.MaxMutations, "scenario 3: mutation bound per writer count")
	fs.IntVar(&c.Push, "throughput.push", c.Push, "scenario 3: mutations per push")
	fs.IntVar(&c.MaxBatch, "throughput.max-batch", c.MaxBatch, "scenario 3: group commit bound")
	fs.StringVar(&c.Mutators, "throughput.mutators", c.Mutators, "scenario 3: other mutators at the last writer count (comma-separated, all, or none)")
	fs.IntVar(&c.E2EClients, "throughput.e2e-clients", c.E2EClients, "scenario 3: client replicas end to end (0: skip)")
	fs.DurationVar(&c.E2EDuration, "throughput.e2e-duration", c.E2EDuration, "scenario 3: measured time end to end")
	fs.IntVar(&c.E2EWindow, "throughput.e2e-window", c.E2EWindow, "scenario 3: most pending mutations per end-to-end writer")
}

// pushQueue is the capacity of the coordinator's inbox, as in
// server/document.go.
const pushQueue = 64

// runThroughput is scenario 3: durable mutations per second through
// engine.Coordinator.Apply on a filestore, with writers pushing into a
// single applier that forms group commits the way the server's document
// loop does; against plain SQLite applying the same inserts with the same
// commit grouping. Then, optionally, the same end to end through the server
// with client replicas.
func runThroughput(ctx context.Context, e *env) ([]report.Record, error) {
	cfg := e.cfg.Throughput
	counts, err := parseInts(cfg.Writers)
	if err != nil {
		return nil, fmt.Errorf("throughput writers: %w", err)
	}
	pool, err := e.mutators()
	if err != nil {
		return nil, err
	}
	var recs []report.Record
	for _, w := range counts {
		rec, err := e.throughputOne(ctx, pool, w, true)
		if err != nil {
			return recs, fmt.Errorf("%d writers: %w", w, err)
		}
		recs = append(recs, rec)
	}
	// The coordinator runs the app's own mutator in production: measure
	// the others at the headline writer count too.
	var errs []error
	for _, name := range otherMutators(cfg.Mutators, pool.impl.Name) {
		impl, err := lookupMutator(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p := &mutatorPool{impl: impl, cfg: &e.cfg}
		w := counts[len(counts)-1]
		rec, err := e.throughputOne(ctx, p, w, false)
		p.close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s mutator, %d writers: %w", name, w, err))
			continue
		}
		recs = append(recs, rec)
	}
	if cfg.E2EClients > 0 {
		rec, err := e.throughputE2E(ctx, pool)
		if err != nil {
			errs = append(errs, fmt.Errorf("end to end: %w", err))
		} else {
			recs = append(recs, rec)
		}
	}
	return recs, errors.Join(errs...)
}

// otherMutators lists the mutators named by list ("all", "none" or names
// separated by commas) other than main.
func otherMutators(list, main string) []string {
	var names []string
	switch list {
	case "", "none":
		return nil
	case "all":
		names = MutatorNames()
	default:
		names = strings.Split(list, ",")
	}
	var out []string
	for _, n := range names {
		if n = strings.TrimSpace(n); n != main && n != "" {
			out = append(out, n)
		}
	}
	return out
}

// openCoordinatorDoc opens an engine coordinator over a filestore in dir of
// the os file system, as the server does.
func openCoordinatorDoc(ctx context.Context, dir string, m engine.Mutator) (*filestore.Store, *engine.Coordinator, error) {
	fsys, err := osfs.NewFS().Sub(toFSPath(filepath.Dir(dir)))
	if err != nil {
		return nil, nil, fmt.Errorf("open document: %w", err)
	}
	store, err := filestore.Open(fsys, filepath.Base(dir))
	if err != nil {
		return nil, nil, fmt.Errorf("open document: %w", err)
	}
	coord, err := engine.OpenCoordinator(ctx, store, m, engine.CoordinatorOptions{})
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("open document: %w", err)
	}
	return store, coord, nil
}

// throughputOne measures writers writers pushing into one coordinator
// document; headline marks the records of the main mutator.
func (e *env) throughputOne(ctx context.Context, pool *mutatorPool, writers int, headline bool) (report.Record, error) {
	cfg := e.cfg.Throughput
	var rec report.Record
	dir, err := e.subdir(fmt.Sprintf("throughput-%s-%d", pool.impl.Name, writers))
	if err != nil {
		return rec, err
	}
	m, err := pool.get(ctx)
	if err != nil {
		return rec, err
	}
	store, coord, err := openCoordinatorDoc(ctx, filepath.Join(dir, "doc"), m)
	if err != nil {
		return rec, err
	}
	defer store.Close()
	defer coord.Close()

	// Writers push into the inbox until told to stop.
	in := make(chan []engine.Mutation, pushQueue)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	perWriter := cfg.MaxMutations/writers + cfg.Push
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("writer%02d", w)
			for seq := 1; seq <= perWriter; {
				push := make([]engine.Mutation, cfg.Push)
				for i := range push {
					r := row{id: fmt.Sprintf("w%02d-%08d", w, seq), title: fmt.Sprintf("todo %d of writer %d", seq, w), pos: float64(seq) + float64(w)/100}
					push[i] = engine.Mutation{ClientID: id, Seq: uint64(seq), Name: "add", Args: r.args()}
					seq++
				}
				select {
				case in <- push:
				case <-stop:
					return
				}
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	plain, err := openPlain(filepath.Join(dir, "plain.db"), "wal")
	if err != nil {
		return rec, err
	}
	defer plain.Close()

	// Rounds alternate the two, so that a busy moment of the machine hits
	// both alike: the coordinator applies what the writers push for a
	// while, then plain SQLite inserts the same rows with the same commit
	// grouping (the writers wait on the full inbox meanwhile).
	var batches [][]engine.Mutation
	var elapsed, pelapsed time.Duration
	applied := 0
	for r := 0; r < throughputRounds && applied < cfg.MaxMutations && ctx.Err() == nil; r++ {
		first := len(batches)
		start := time.Now()
		// The applier: as server/document.go's run loop, take a push,
		// drain whatever else waits up to MaxBatch mutations, apply them
		// as one group commit.
		for dl := newDeadline(cfg.MaxMutations, cfg.Duration/throughputRounds); dl.more(ctx, applied); {
			batch := <-in
		drain:
			for len(batch) < cfg.MaxBatch {
				select {
				case p := <-in:
					batch = append(batch, p...)
				default:
					break drain
				}
			}
			res, err := coord.Apply(ctx, batch)
			if err != nil {
				return rec, err
			}
			if len(res.Applied) != len(batch) {
				return rec, fmt.Errorf("applied %d of %d mutations (%d rejected, %d gaps)", len(res.Applied), len(batch), len(res.Rejected), len(res.Gaps))
			}
			applied += len(batch)
			batches = append(batches, batch)
		}
		elapsed += time.Since(start)

		rows, err := plainRows(batches[first:])
		if err != nil {
			return rec, err
		}
		pstart := time.Now()
		for _, b := range rows {
			if err := plain.insertRows(b); err != nil {
				return rec, err
			}
		}
		pelapsed += time.Since(pstart)
	}
	if applied == 0 {
		return rec, errors.New("nothing applied")
	}
	rate := float64(applied) / elapsed.Seconds()
	prate := float64(applied) / pelapsed.Seconds()

	sizes := make([]float64, len(batches))
	for i, b := range batches {
		sizes[i] = float64(len(b))
	}
	bs := report.Dist("mutations", sizes)
	id, name := fmt.Sprintf("3.w%d", writers), fmt.Sprintf("coordinator Apply, group commit, %d writer%s", writers, plural(writers))
	if !headline {
		id, name = id+"."+pool.impl.Name, name+", "+pool.impl.Name+" mutator"
	}
	rec = report.Record{
		ID:       id,
		Scenario: 3,
		Name:     name,
		Params: map[string]any{"mutator": pool.impl.Name, "writers": writers, "push": cfg.Push, "max_batch": cfg.MaxBatch,
			"store": "filestore on the os FS (fsync per commit)", "inbox": pushQueue,
			"baseline": "plain SQLite WAL sync=FULL, prepared INSERT, same batches",
			"commits":  len(batches), "batch_p50": bs.P50, "batch_mean": bs.Mean},
		Samples:  applied,
		Figure:   report.Value("mut/s", rate),
		Baseline: &report.Named{Name: "plain SQLite, same commit grouping", Stat: report.Value("mut/s", prate)},
		Also:     []report.Named{{Name: "mutations per commit", Stat: bs}},
	}
	if c := counts(e); writers == c[len(c)-1] {
		rec.Aim = &report.Aim{Text: "≥ 0.5× and ≥ 50,000/s", MinRatio: 0.5, MinValue: 50000}
	}
	rec.Finish("value")
	return rec, nil
}

// throughputRounds is how many times a throughput measurement alternates
// between the coordinator and the baseline.
const throughputRounds = 4

// plainRows turns batches of add mutations into the baseline's rows.
func plainRows(batches [][]engine.Mutation) ([][]row, error) {
	out := make([][]row, len(batches))
	for i, b := range batches {
		out[i] = make([]row, len(b))
		for j, m := range b {
			var a addArgs
			if err := json.Unmarshal(m.Args, &a); err != nil {
				return nil, fmt.Errorf("baseline rows: %w", err)
			}
			out[i][j] = row{id: a.ID, title: a.Title, pos: a.Position}
		}
	}
	return out, nil
}

// counts returns the configured writer counts (already validated).
func counts(e *env) []int {
	c, _ := parseInts(e.cfg.Throughput.Writers)
	return c
}

// throughputE2E runs client replicas against a server, each mutating as
// fast as it can while keeping at most E2EWindow mutations pending, and
// measures the mutations the coordinator acknowledged per second.
func (e *env) throughputE2E(ctx context.Context, pool *mutatorPool) (rec report.Record, err error) {
	cfg := e.cfg.Throughput
	// Raise the per-connection rate limit: it is there to stop abuse, and
	// at its default of 2,000/s it, not the engine, would be measured.
	coord, err := e.startCoordinator(ctx, "e2e-server", server.Config{RatePerConn: 1e9, RateBurst: 1 << 30, MaxBatch: cfg.MaxBatch})
	if err != nil {
		return rec, err
	}
	defer func() { err = errors.Join(err, coord.Close()) }()

	docs := make([]*client.Doc, cfg.E2EClients)
	for i := range docs {
		docs[i], err = e.openLive(ctx, pool, client.Options{URL: coord.URL, DocID: "e2e"})
		if err != nil {
			return rec, err
		}
		defer docs[i].Close()
	}
	// acked[i] is the number of writer i's mutations the coordinator has
	// applied: its last seq minus what is still pending.
	mutated := make([]atomic.Int64, len(docs))
	acked := func() int64 {
		var n int64
		for i, d := range docs {
			n += mutated[i].Load() - int64(d.Status().Pending)
		}
		return n
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errc := make(chan error, len(docs))
	limit := int64(cfg.E2EDuration.Seconds()*200_000) + 1
	for i, d := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := int64(0); n < limit && runCtx.Err() == nil; {
				if d.Status().Pending >= cfg.E2EWindow {
					time.Sleep(200 * time.Microsecond)
					continue
				}
				r := row{id: fmt.Sprintf("c%02d-%08d", i, n), title: fmt.Sprintf("todo %d of client %d", n, i), pos: float64(n+1) + float64(i)/100}
				if _, err := d.Mutate(runCtx, "add", r.args()); err != nil {
					if runCtx.Err() == nil {
						errc <- err
					}
					return
				}
				n++
				mutated[i].Add(1)
			}
		}()
	}
	time.Sleep(time.Second) // reach a steady state
	a0, t0 := acked(), time.Now()
	select {
	case <-time.After(cfg.E2EDuration):
	case <-ctx.Done():
	}
	a1, elapsed := acked(), time.Since(t0)
	cancel()
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return rec, err
	}
	rec = report.Record{
		ID:       fmt.Sprintf("3.e2e%d", cfg.E2EClients),
		Scenario: 3,
		Name:     fmt.Sprintf("end to end through the server, %d client replicas", cfg.E2EClients),
		Params: map[string]any{"mutator": pool.impl.Name, "clients": cfg.E2EClients, "window": cfg.E2EWindow,
			"replicas": "in memory, same process as the server", "rate_limit": "raised to 1e9/s",
			"max_batch": cfg.MaxBatch},
		Samples: int(a1 - a0),
		Figure:  report.Value("mut/s", float64(a1-a0)/elapsed.Seconds()),
	}
	rec.Finish("")
	return rec, nil
}

// plural returns "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
