package scenario

import (
	"context"
	"flag"
	"fmt"
	"math"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs/memdb"
	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// RebaseConfig tunes scenario 6.
type RebaseConfig struct {
	Pending  string        // pending mutation counts, comma-separated
	Samples  int           // rebases per count
	Duration time.Duration // upper bound per count
	Rows     int           // items in the document first
}

func (c *RebaseConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Pending, "rebase.pending", c.Pending, "scenario 6: pending mutation counts, comma-separated")
	fs.IntVar(&c.Samples, "rebase.samples", c.Samples, "scenario 6: rebases per count")
	fs.DurationVar(&c.Duration, "rebase.duration", c.Duration, "scenario 6: time bound per count")
	fs.IntVar(&c.Rows, "rebase.rows", c.Rows, "scenario 6: items in the document first")
}

// runRebase is scenario 6: the time engine.Client.Rebase takes to apply a
// small diff (one insert by another client) under k pending mutations it
// must replay, against replaying the same k mutations through the same
// mutator on a fresh connection to a plain in-memory copy of the new
// snapshot (memdb). Both sides are in memory, so this is CPU alone.
func runRebase(ctx context.Context, e *env) ([]report.Record, error) {
	ks, err := parseInts(e.cfg.Rebase.Pending)
	if err != nil {
		return nil, fmt.Errorf("rebase pending: %w", err)
	}
	pool, err := e.mutators()
	if err != nil {
		return nil, err
	}
	var recs []report.Record
	for _, k := range ks {
		rec, err := e.rebaseOne(ctx, pool, k)
		if err != nil {
			return recs, fmt.Errorf("%d pending: %w", k, err)
		}
		recs = append(recs, rec)
	}
	if n := len(recs); n >= 2 {
		a, b := recs[n-2], recs[n-1]
		ka, kb := float64(ks[n-2]), float64(ks[n-1])
		exp := math.Log(b.Figure.P50/a.Figure.P50) / math.Log(kb/ka)
		bexp := math.Log(b.Baseline.P50/a.Baseline.P50) / math.Log(kb/ka)
		lin := report.Record{
			ID: "6.linear", Scenario: 6,
			Name:     fmt.Sprintf("rebase growth exponent, %d → %d pending (1 = linear)", ks[n-2], ks[n-1]),
			Params:   map[string]any{"from": ks[n-2], "to": ks[n-1], "of": "p50"},
			Samples:  a.Samples + b.Samples,
			Figure:   report.Value("exponent", exp),
			Baseline: &report.Named{Name: "replay on a fresh connection", Stat: report.Value("exponent", bexp)},
			Aim:      &report.Aim{Text: "linear (exponent ≤ 1.1)", MaxValue: 1.1},
		}
		lin.Finish("")
		recs = append(recs, lin)
	}
	return recs, nil
}

func (e *env) rebaseOne(ctx context.Context, pool *mutatorPool, k int) (report.Record, error) {
	cfg := e.cfg.Rebase
	var rec report.Record
	mc, err := pool.get(ctx)
	if err != nil {
		return rec, err
	}
	coord, err := engine.OpenCoordinator(ctx, memstore.New(), mc, engine.CoordinatorOptions{})
	if err != nil {
		return rec, err
	}
	defer coord.Close()
	seed := engine.Mutation{ClientID: "seed", Seq: 1, Name: "bulk", Args: testmutator.Args{Prefix: "seed-", N: cfg.Rows}.Encode()}
	if _, err := coord.Apply(ctx, []engine.Mutation{seed}); err != nil {
		return rec, err
	}
	mx, err := pool.get(ctx)
	if err != nil {
		return rec, err
	}
	x, err := engine.OpenClient(ctx, memstore.New(), pendinglog.NewMemory("x"), mx)
	if err != nil {
		return rec, err
	}
	defer x.Close()
	d, err := coord.Diff(0)
	if err != nil {
		return rec, err
	}
	if err := x.Rebase(ctx, d); err != nil {
		return rec, err
	}
	for i := range k {
		r := row{id: fmt.Sprintf("x-%06d", i), title: fmt.Sprintf("pending todo %d", i), pos: float64(cfg.Rows + i + 1)}
		if _, err := x.Mutate(ctx, "add", r.args()); err != nil {
			return rec, err
		}
	}
	mr, err := pool.get(ctx)
	if err != nil {
		return rec, err
	}
	// check verifies the replica after each rebase: the document's rows,
	// the other client's and the k pending ones. Its read transaction also
	// makes SQLite re-check its page cache, as a live query would (see
	// keepLive).
	check := func(others int) error {
		rows, err := x.Query(`SELECT count(*) FROM items`)
		if err != nil {
			return err
		}
		if got, want := rows.Values[0][0].(int64), int64(cfg.Rows+others+k); got != want {
			return fmt.Errorf("replica has %d items after rebase, want %d", got, want)
		}
		return nil
	}
	if err := check(0); err != nil {
		return rec, err
	}

	var rebase, replay []time.Duration
	for dl, i := newDeadline(cfg.Samples, cfg.Duration), 0; dl.more(ctx, i); i++ {
		// Another client's insert makes the small diff.
		y := engine.Mutation{ClientID: "y", Seq: uint64(i + 1), Name: "add", Args: row{id: fmt.Sprintf("y-%06d", i), title: "from another client", pos: float64(i+1) + 0.5}.args()}
		if _, err := coord.Apply(ctx, []engine.Mutation{y}); err != nil {
			return rec, err
		}
		d, err := coord.Diff(x.LSN())
		if err != nil {
			return rec, err
		}
		start := time.Now()
		if err := x.Rebase(ctx, d); err != nil {
			return rec, err
		}
		rebase = append(rebase, time.Since(start))
		if n := x.PendingCount(); n != k {
			return rec, fmt.Errorf("%d pending after rebase, want %d", n, k)
		}
		if err := check(i + 1); err != nil {
			return rec, err
		}

		t, err := replayFresh(ctx, coord, mr, x.Pending(), fmt.Sprintf("sqlsync-bench-rebase-%d-%d", k, i))
		if err != nil {
			return rec, err
		}
		replay = append(replay, t)
	}
	rec = report.Record{
		ID: fmt.Sprintf("6.k%d", k), Scenario: 6,
		Name: fmt.Sprintf("rebase on a one-insert diff with %d pending", k),
		Params: map[string]any{"mutator": pool.impl.Name, "pending": k, "rows": cfg.Rows,
			"stores": "memstore snapshot, in-memory pending log",
			"baseline": "memdb copy of the new snapshot, fresh connection (open not timed), " +
				"BEGIN; the same mutations through the same mutator; COMMIT"},
		Samples:  len(rebase),
		Figure:   report.Durations(rebase),
		Baseline: &report.Named{Name: "replay on a fresh connection", Stat: report.Durations(replay)},
		Aim:      &report.Aim{Text: "≤ 1.2× (p50)", MaxRatio: 1.2},
	}
	rec.Finish("p50")
	rec.Also = []report.Named{{Name: "rebase time per pending mutation (p50)", Stat: report.Value("µs", rec.Figure.P50*1000/float64(k))}}
	return rec, nil
}

// replayFresh copies the coordinator's database into the memdb database
// name (shared, so opened as /name), opens a fresh connection to it and times replaying pending through m in one
// transaction.
func replayFresh(ctx context.Context, coord *engine.Coordinator, m engine.Mutator, pending []engine.Mutation, name string) (time.Duration, error) {
	data, err := coord.Database().Bytes()
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	memdb.Create(name, data)
	defer memdb.Delete(name)
	conn, err := sqlite3.Open("file:/" + name + "?vfs=memdb")
	if err != nil {
		return 0, fmt.Errorf("replay: open: %w", err)
	}
	defer conn.Close()
	// Load the schema before timing, as the replica's connection has it,
	// and check that the copy holds the document. Only the schema: the
	// replica's page cache is cold after a rebase, so this one is too.
	if err := conn.Exec(`SELECT count(*) FROM sqlite_schema WHERE name = 'items'`); err != nil {
		return 0, fmt.Errorf("replay: copy of the snapshot: %w", err)
	}
	start := time.Now()
	if err := conn.Exec(`BEGIN IMMEDIATE`); err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	for _, p := range pending {
		if err := m.Mutate(ctx, conn, p.Name, p.Args); err != nil {
			conn.Exec(`ROLLBACK`)
			return 0, fmt.Errorf("replay %s: %w", p.ID(), err)
		}
	}
	if err := conn.Exec(`COMMIT`); err != nil {
		return 0, fmt.Errorf("replay: commit: %w", err)
	}
	return time.Since(start), nil
}
