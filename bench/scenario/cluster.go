package scenario

import (
	"context"
	"flag"
	"fmt"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/internal/natsembed"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore"
)

// ClusterConfig tunes scenario 9.
type ClusterConfig struct {
	Samples  int           // commits timed on each journal
	Runs     int           // failovers timed of each kind
	LeaseTTL time.Duration // the coordinators' lease
	Duration time.Duration // upper bound on the commit phase of each journal
}

func (c *ClusterConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.Samples, "cluster.samples", c.Samples, "scenario 9: commits timed on each journal")
	fs.IntVar(&c.Runs, "cluster.runs", c.Runs, "scenario 9: failovers timed of each kind")
	fs.DurationVar(&c.LeaseTTL, "cluster.lease-ttl", c.LeaseTTL, "scenario 9: the coordinators' lease")
	fs.DurationVar(&c.Duration, "cluster.duration", c.Duration, "scenario 9: time bound of the commit phase on each journal")
}

// runCluster is scenario 9: documents journaled in NATS JetStream (one
// embedded node in this process, every ack fsynced). The commit round trip
// of one replica (Mutate until synced) on JetStream against the local
// filestore, same run; and the time a replica forwarded by one coordinator
// to another (the document's owner) waits for its next mutation to sync
// when the owner shuts down (graceful hand-off: the lease is released) and
// when it crashes (its NATS connection cut first: the lease must run out).
func runCluster(ctx context.Context, e *env) (recs []report.Record, err error) {
	cfg := e.cfg.Cluster
	dir, err := e.subdir("nats")
	if err != nil {
		return nil, err
	}
	ns, err := natsembed.Start(natsembed.Options{Dir: dir})
	if err != nil {
		return nil, err
	}
	defer ns.Shutdown()
	nc, js, err := natsembed.Connect(ns)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	st, err := jetstore.EnsureStream(ctx, js, "SQLSYNC", 1)
	if err != nil {
		return nil, err
	}
	if _, err := server.EnsureLeases(ctx, js, cfg.LeaseTTL, 1); err != nil {
		return nil, err
	}

	commit := func(name string, journal server.Journal) ([]time.Duration, error) {
		coord, err := e.startCoordinator(ctx, "commit-"+name, server.Config{Journal: journal})
		if err != nil {
			return nil, err
		}
		defer coord.Close()
		d, err := e.openReplica(ctx, coord.pool, client.Options{URL: coord.URL, DocID: "commit-" + name})
		if err != nil {
			return nil, err
		}
		defer d.Close()
		var ds []time.Duration
		for dl := newDeadline(cfg.Samples, cfg.Duration); dl.more(ctx, len(ds)); {
			t0 := time.Now()
			if err := mutateSynced(ctx, d, fmt.Sprintf("%s-%05d", name, len(ds))); err != nil {
				return nil, err
			}
			ds = append(ds, time.Since(t0))
		}
		return ds, nil
	}
	onJet, err := commit("jetstream", server.JetStreamJournal(js, st))
	if err != nil {
		return nil, err
	}
	onDisk, err := commit("disk", nil)
	if err != nil {
		return nil, err
	}
	rec := report.Record{
		ID: "9.commit", Scenario: 9,
		Name:     "commit round trip, one replica, documents in JetStream (Mutate until synced)",
		Params:   map[string]any{"nats": "one embedded node, in-process, sync always", "mutator": e.cfg.Mutator},
		Samples:  len(onJet),
		Figure:   report.Durations(onJet),
		Baseline: &report.Named{Name: "the same on the local filestore (fsync per commit)", Stat: report.Durations(onDisk)},
	}
	rec.Finish("p50")
	recs = append(recs, rec)

	for _, crash := range []bool{false, true} {
		var ds []time.Duration
		for run := range cfg.Runs {
			d, err := e.failover(ctx, ns, fmt.Sprintf("failover-%v-%d", crash, run), crash)
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
		}
		rec := report.Record{
			ID: "9.handoff", Scenario: 9,
			Name:    "graceful hand-off: owner shut down, until a forwarded replica's next mutation syncs",
			Params:  map[string]any{"lease_ttl_s": cfg.LeaseTTL.Seconds()},
			Samples: len(ds),
			Figure:  report.Durations(ds),
			Aim:     &report.Aim{Text: "≤ 100 ms", MaxValue: 100, AimOf: "p50"},
		}
		if crash {
			rec.ID, rec.Name = "9.crash", "owner crashed (NATS survives), until a forwarded replica's next mutation syncs"
			rec.Aim = &report.Aim{Text: "≤ 2 s", MaxValue: 2000, AimOf: "p50"}
			rec.Note = "bounded below by the lease TTL: a crashed owner's lease must run out before another node may take the document"
		}
		rec.Finish("")
		recs = append(recs, rec)
	}
	return recs, nil
}

// failover starts two coordinators on ns, each with a NATS connection of
// its own, makes the first own document doc (a replica on it writes first)
// with a replica on the second forwarded to it, stops the first (crash:
// its NATS connection is cut before it closes, so it can neither commit
// nor release its lease) and returns how long the forwarded replica's next
// mutation takes to sync.
func (e *env) failover(ctx context.Context, ns *natsserver.Server, doc string, crash bool) (time.Duration, error) {
	start := func(name string) (*coordinator, *nats.Conn, error) {
		nc, js, err := natsembed.Connect(ns)
		if err != nil {
			return nil, nil, err
		}
		st, err := js.Stream(ctx, "SQLSYNC")
		if err == nil {
			var kv jetstream.KeyValue
			if kv, err = js.KeyValue(ctx, server.LeaseBucket); err == nil {
				var c *coordinator
				c, err = e.startCoordinator(ctx, doc+"-"+name, server.Config{Journal: server.JetStreamJournal(js, st),
					Cluster: &server.Cluster{KV: kv, TTL: e.cfg.Cluster.LeaseTTL}})
				if err == nil {
					return c, nc, nil
				}
			}
		}
		nc.Close()
		return nil, nil, err
	}
	owner, ownerNC, err := start("owner")
	if err != nil {
		return 0, err
	}
	defer ownerNC.Close()
	defer owner.Close()
	other, otherNC, err := start("other")
	if err != nil {
		return 0, err
	}
	defer otherNC.Close()
	defer other.Close()
	first, err := e.openReplica(ctx, owner.pool, client.Options{URL: owner.URL, DocID: doc})
	if err != nil {
		return 0, err
	}
	defer first.Close()
	if err := mutateSynced(ctx, first, "first"); err != nil {
		return 0, err
	}
	forwarded, err := e.openReplica(ctx, other.pool, client.Options{URL: other.URL, DocID: doc,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		return 0, err
	}
	defer forwarded.Close()
	if err := mutateSynced(ctx, forwarded, "forwarded"); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if crash {
		ownerNC.Close()
	}
	if err := owner.Close(); err != nil && !crash {
		return 0, fmt.Errorf("shut the owner down: %w", err)
	}
	if err := mutateSynced(ctx, forwarded, "after"); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// mutateSynced adds item id on d and waits until the coordinator applied it.
func mutateSynced(ctx context.Context, d *client.Doc, id string) error {
	if _, err := d.Mutate(ctx, "add", row{id: id, title: id}.args()); err != nil {
		return fmt.Errorf("mutate %s: %w", id, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.WaitSynced(ctx); err != nil {
		return fmt.Errorf("wait for %s to sync: %w", id, err)
	}
	return nil
}
