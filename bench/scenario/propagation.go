package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/vfs/fsync"
)

// PropConfig tunes scenario 2.
type PropConfig struct {
	Samples      int           // probes per phase (idle, busy)
	Duration     time.Duration // upper bound per phase
	Writers      int           // busy writers in the busy phase
	WriterRate   float64       // mutations per second of each busy writer
	State        string        // "file": replicas keep their state on disk; "mem": in memory
	EchoPerProbe int           // WebSocket echo round trips measured after each probe, for the baseline
}

func (c *PropConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.Samples, "prop.samples", c.Samples, "scenario 2: probes per phase")
	fs.DurationVar(&c.Duration, "prop.duration", c.Duration, "scenario 2: time bound per phase")
	fs.IntVar(&c.Writers, "prop.writers", c.Writers, "scenario 2: busy writers")
	fs.Float64Var(&c.WriterRate, "prop.writer-rate", c.WriterRate, "scenario 2: mutations/s of each busy writer")
	fs.StringVar(&c.State, "prop.state", c.State, "scenario 2: replica state, file or mem")
	fs.IntVar(&c.EchoPerProbe, "prop.echo-per-probe", c.EchoPerProbe, "scenario 2: echo round trips after each probe, for the baseline")
}

// probeQuery counts the probe items; an index range on the primary key
// keeps it cheap however many other items the busy writers add.
const probeQuery = `SELECT count(*) FROM items WHERE id >= 'probe-' AND id < 'probe.'`

// runPropagation is scenario 2: the time from Mutate on replica A to the
// firing of a subscription on replica B, both connected over WebSocket on
// loopback to one coordinator, idle and with busy writers; against the
// round trip of one small WebSocket message, measured between the probes
// of each phase so that it sees the same load.
func runPropagation(ctx context.Context, e *env) (recs []report.Record, err error) {
	cfg := e.cfg.Prop
	// The baseline: the round trip of a push-sized binary message.
	msg, err := protocol.Encode(protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{
		{Seq: 1, Name: "add", Args: row{id: "probe-0000001", title: "probe", pos: 1}.args()},
	}}})
	if err != nil {
		return nil, fmt.Errorf("encode echo message: %w", err)
	}
	echo, err := newEchoClient(ctx, msg)
	if err != nil {
		return nil, err
	}
	defer echo.Close()
	baseline := func(ds []time.Duration) *report.Named {
		return &report.Named{Name: fmt.Sprintf("WebSocket echo RTT (%d B, deflate)", len(msg)), Stat: report.Durations(ds)}
	}

	coord, err := e.startCoordinator(ctx, "server", server.Config{})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, coord.Close()) }()

	open := func(name string) (*client.Doc, error) {
		opts := client.Options{URL: coord.URL, DocID: "prop"}
		if cfg.State == "file" {
			opts.StateDir = filepath.Join(e.dir, "replica-"+name)
		}
		return e.openLive(ctx, coord.pool, opts)
	}
	a, err := open("a")
	if err != nil {
		return nil, err
	}
	defer a.Close()
	b, err := open("b")
	if err != nil {
		return nil, err
	}
	defer b.Close()

	counts := make(chan int64, 4096)
	stop := b.Subscribe(probeQuery, nil, func(r engine.Rows, err error) {
		if err == nil && len(r.Values) == 1 {
			if n, ok := r.Values[0][0].(int64); ok {
				select {
				case counts <- n:
				default:
				}
			}
		}
	})
	defer stop()

	var probes int64
	var syncs []float64 // fsyncs in the process from each probe's Mutate to B seeing it
	probe := func(n int) (out, echoes []time.Duration, err error) {
		syncs = syncs[:0]
		for dl, i := newDeadline(n, cfg.Duration), 0; dl.more(ctx, i); i++ {
			probes++
			want := probes
			start, synced := time.Now(), fsync.Files()
			if _, err := a.Mutate(ctx, "add", row{id: fmt.Sprintf("probe-%07d", want), title: "probe", pos: float64(want)}.args()); err != nil {
				return out, echoes, fmt.Errorf("probe %d: %w", want, err)
			}
			timeout := time.After(10 * time.Second)
		wait:
			for {
				select {
				case got := <-counts:
					if got >= want {
						break wait
					}
				case <-timeout:
					return out, echoes, fmt.Errorf("probe %d: B did not see it within 10 s", want)
				case <-ctx.Done():
					return out, echoes, ctx.Err()
				}
			}
			out = append(out, time.Since(start))
			syncs = append(syncs, float64(fsync.Files()-synced))
			if err := waitSynced(ctx, a, 10*time.Second); err != nil {
				return out, echoes, err
			}
			if echoes, err = echo.rtts(echoes, cfg.EchoPerProbe); err != nil {
				return out, echoes, err
			}
			time.Sleep(time.Millisecond)
		}
		return out, echoes, nil
	}
	if _, _, err := probe(20); err != nil { // warm-up
		return nil, err
	}
	idle, idleEcho, err := probe(cfg.Samples)
	if err != nil {
		return nil, err
	}
	state := "replicas on disk (filestore + pending log, fsync)"
	if cfg.State != "file" {
		state = "replicas in memory"
	}
	// The fsyncs on the path, and the latency in fsyncs' worth, with the
	// fsync measured here and now.
	fs, err := FsyncLatency(ctx, e.dir, 200, 5*time.Second)
	if err != nil {
		return nil, err
	}
	idleStat := report.Durations(idle)
	pathSyncs := report.Dist("fsyncs", syncs)
	rec := report.Record{
		ID: "2.idle", Scenario: 2,
		Name: "propagation A.Mutate → B subscription, idle",
		Params: map[string]any{"mutator": coord.pool.impl.Name, "replicas": state,
			"coordinator": "server.New on filestore (fsync per commit)", "transport": "WebSocket on 127.0.0.1, permessage-deflate"},
		Samples:  len(idle),
		Figure:   report.Durations(idle),
		Baseline: baseline(idleEcho),
		Aim:      &report.Aim{Text: "p50 ≤ 2 ms", MaxValue: 2, AimOf: "p50"},
		Also: []report.Named{
			{Name: "fsyncs in the process from Mutate to B seeing it", Stat: pathSyncs},
			{Name: "4 KiB append + fsync, measured here", Stat: fs},
			{Name: "p50 in fsyncs' worth (p50 ÷ fsync p50)", Stat: report.Value("fsyncs", idleStat.P50/fs.P50)},
		},
	}
	rec.Finish("p50")
	recs = append(recs, rec)

	// Busy: writers mutate at a steady rate each while the probes run.
	busyCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var written atomic.Int64
	writerErr := make(chan error, cfg.Writers)
	for w := range cfg.Writers {
		doc, err := open(fmt.Sprintf("w%02d", w))
		if err != nil {
			cancel()
			wg.Wait()
			return recs, err
		}
		defer doc.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.WriterRate))
			defer tick.Stop()
			limit := int(cfg.WriterRate*(2*cfg.Duration.Seconds()+10)) + 1
			for i := 0; i < limit; i++ {
				select {
				case <-tick.C:
				case <-busyCtx.Done():
					return
				}
				r := row{id: fmt.Sprintf("w%02d-%07d", w, i), title: "busy writer item", pos: float64(i+1) + float64(w)/100}
				if _, err := doc.Mutate(busyCtx, "add", r.args()); err != nil {
					if busyCtx.Err() == nil {
						writerErr <- err
					}
					return
				}
				written.Add(1)
			}
		}()
	}
	time.Sleep(time.Second) // let the writers reach their pace
	startWritten, start := written.Load(), time.Now()
	busy, busyEcho, err := probe(cfg.Samples)
	achieved := float64(written.Load()-startWritten) / time.Since(start).Seconds()
	cancel()
	wg.Wait()
	close(writerErr)
	if err != nil {
		return recs, err
	}
	if err := <-writerErr; err != nil {
		return recs, fmt.Errorf("busy writer: %w", err)
	}
	rec = report.Record{
		ID: "2.busy", Scenario: 2,
		Name: fmt.Sprintf("propagation A.Mutate → B subscription, %d busy writers", cfg.Writers),
		Params: map[string]any{"mutator": coord.pool.impl.Name, "replicas": state, "writers": cfg.Writers,
			"writer_rate_per_s": cfg.WriterRate},
		Samples:  len(busy),
		Figure:   report.Durations(busy),
		Baseline: baseline(busyEcho),
		Also:     []report.Named{{Name: "busy writers' achieved rate", Stat: report.Value("mut/s", achieved)}},
	}
	rec.Finish("p50")
	recs = append(recs, rec)
	return recs, nil
}
