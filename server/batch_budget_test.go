package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// napMutator is the todo mutator plus "nap", which records its ID and its
// writer (Title) in naps, in the order the document applied them. On the
// coordinator (sleep set) a nap first takes N milliseconds, and gives up
// when its context ends; replicas do not wait, so their replays stay fast.
type napMutator struct {
	testmutator.Mutator
	sleep bool
}

func (m napMutator) Migrate(ctx context.Context, conn *sqlite3.Conn) error {
	if err := m.Mutator.Migrate(ctx, conn); err != nil {
		return err
	}
	return conn.Exec(`CREATE TABLE IF NOT EXISTS naps(ord INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT NOT NULL, id TEXT NOT NULL UNIQUE)`)
}

func (m napMutator) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if name != "nap" {
		return m.Mutator.Mutate(ctx, conn, name, args)
	}
	var a testmutator.Args
	if err := json.Unmarshal(args, &a); err != nil {
		return err
	}
	if m.sleep {
		t := time.NewTimer(time.Duration(a.N) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return sqlrows.Exec(conn, `INSERT INTO naps(who, id) VALUES (?, ?)`, a.Title, a.ID)
}

// TestBatchBudgetDefers: group commits that run out of their time budget
// leave mutations to the next one, and the document's writer applies them
// first. Several replicas push mutations that take longer together than
// one batch may, some rejected by the mutator, one over its own time limit:
// every mutation is applied or rejected exactly once, each client's in the
// order it made them, and the replicas converge.
func TestBatchBudgetDefers(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 11))
	// The time limit only has to stop the one nap over it: generous, so
	// that on a loaded machine no short nap runs into it.
	const mutationTimeout = time.Second
	ts := startServer(t, Config{
		MutationTimeout: mutationTimeout,
		BatchTimeout:    40 * time.Millisecond,
		Mutator:         func(string) engine.Mutator { return napMutator{sleep: true} },
	})
	const clients, perClient = 3, 30
	type outcome struct {
		rejected map[uint64]int // seq → rejections seen
	}
	docs := make([]*client.Doc, clients)
	var mu sync.Mutex
	outcomes := make([]outcome, clients)
	for i := range docs {
		docs[i] = openClient(t, ts, "doc", clientOptions{mutator: napMutator{}})
		outcomes[i].rejected = map[uint64]int{}
		docs[i].Watch(func(e client.Event) {
			if e.Rejected != nil {
				mu.Lock()
				outcomes[i].rejected[e.Rejected.Seq]++
				mu.Unlock()
			}
		})
		waitSynced(t, docs[i])
	}
	// What each client expects: the naps applied, in order, and the seqs
	// rejected.
	wantNaps := make([][]string, clients)
	wantRejected := make([][]uint64, clients)
	lastSeq := make([]uint64, clients)
	var wg sync.WaitGroup
	for i, d := range docs {
		who := fmt.Sprintf("c%d", i)
		var plan []testmutator.Args
		var names []string
		for j := range perClient {
			a := testmutator.Args{ID: fmt.Sprintf("%s-%d", who, j), Title: who, N: 5 + rng.IntN(20)}
			name := "nap"
			switch {
			case j == perClient/2 && i == 0:
				a.N = 3000 // over MutationTimeout: rejected by the coordinator
			case rng.IntN(6) == 0:
				name, a.Message = "fail", "refused "+a.ID
			}
			plan = append(plan, a)
			names = append(names, name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j, a := range plan {
				seq, err := d.Mutate(context.Background(), names[j], a.Encode())
				switch {
				case names[j] == "fail":
					if err == nil {
						t.Errorf("%s: fail mutation succeeded locally", a.ID)
					}
					continue // rejected locally: never sent
				case err != nil:
					t.Errorf("%s: %v", a.ID, err)
					continue
				}
				lastSeq[i] = seq
				switch {
				case time.Duration(a.N)*time.Millisecond > mutationTimeout:
					wantRejected[i] = append(wantRejected[i], seq)
				default:
					wantNaps[i] = append(wantNaps[i], a.ID)
				}
				// Bursts, so pushes from several clients share batches.
				if rand.N(4) == 0 {
					time.Sleep(time.Duration(rand.N(20)) * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	waitConverged(t, ts, "doc", docs...)

	if n := ts.counter(t, "sqlsync_mutations_deferred_total"); n == 0 {
		t.Fatalf("no batch ran out of its time budget: the test exercised nothing")
	}
	rows, err := docs[0].Query(context.Background(), `SELECT who, id FROM naps ORDER BY ord`)
	if err != nil {
		t.Fatal(err)
	}
	gotNaps := make([][]string, clients)
	for _, r := range rows.Values {
		var i int
		fmt.Sscanf(r[0].(string), "c%d", &i)
		gotNaps[i] = append(gotNaps[i], r[1].(string))
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range docs {
		if !slices.Equal(gotNaps[i], wantNaps[i]) {
			t.Errorf("client %d: naps applied %v, want %v (in order)", i, gotNaps[i], wantNaps[i])
		}
		var rejected []uint64
		for seq, n := range outcomes[i].rejected {
			if n != 1 {
				t.Errorf("client %d: mutation %d rejected %d times", i, seq, n)
			}
			rejected = append(rejected, seq)
		}
		slices.Sort(rejected)
		if !slices.Equal(rejected, wantRejected[i]) {
			t.Errorf("client %d: rejected %v, want %v", i, rejected, wantRejected[i])
		}
		if s := docs[i].Status(); s.Pending != 0 || s.LastError != "" {
			t.Errorf("client %d: %d mutations still pending, last error %q", i, s.Pending, s.LastError)
		}
	}
	// Every seq the coordinator knows of is the client's last.
	ts.coordinator(t, "doc", func(c *engine.Coordinator) {
		for i, d := range docs {
			last, err := c.LastSeq(d.ClientID())
			if err != nil {
				t.Fatal(err)
			}
			if want := lastSeq[i]; last != want {
				t.Errorf("client %d: coordinator's last seq %d, replica's %d", i, last, want)
			}
		}
	})
}

// counter returns the value of the server's counter metric name.
func (ts *testServer) counter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := ts.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s metric", name)
	return 0
}

// counterWith returns the value of the server's counter vector name for
// label = value.
func (ts *testServer) counterWith(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := ts.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
