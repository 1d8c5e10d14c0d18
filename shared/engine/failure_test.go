package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// These tests hold the design's "a mutation can only fail itself": at
// COMMIT (a deferred constraint), at the time limit, on a replica's replay
// or on the coordinator, one mutation's failure is its own.

func exec(sql string, args ...any) []byte {
	return testmutator.SQLArgs{SQL: sql, Args: args}.Encode()
}

// fkSchema is the case: a child table whose foreign key is checked
// only at COMMIT.
const fkSchema = `CREATE TABLE p(id PRIMARY KEY);
	CREATE TABLE c(id INTEGER PRIMARY KEY, pid REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)`

// replica is an engine client with the durable parts it reopens from.
type replica struct {
	t     *testing.T
	store *memstore.Store
	log   *pendinglog.Memory
	opts  engine.ClientOptions
	mut   engine.Mutator
	*engine.Client
}

func newReplica(t *testing.T, id string, mut engine.Mutator, opts engine.ClientOptions) *replica {
	t.Helper()
	r := &replica{t: t, store: memstore.New(), log: pendinglog.NewMemory(id), opts: opts, mut: mut}
	r.reopen()
	t.Cleanup(func() { r.Close() })
	return r
}

// reopen closes the replica and opens it again from its store and log, as a
// new process would.
func (r *replica) reopen() {
	r.t.Helper()
	if r.Client != nil {
		r.Close()
	}
	c, err := engine.OpenClientWith(context.Background(), r.store, r.log, r.mut, r.opts)
	if err != nil {
		r.t.Fatalf("the replica does not open: %v", err)
	}
	r.Client = c
}

func (r *replica) mutate(name string, args []byte) uint64 {
	r.t.Helper()
	seq, err := r.Mutate(context.Background(), name, args)
	if err != nil {
		r.t.Fatal(err)
	}
	return seq
}

// push applies the replica's pending mutations on coord in one batch.
func (r *replica) push(coord *engine.Coordinator) engine.Result {
	r.t.Helper()
	res, err := coord.Apply(context.Background(), r.Pending())
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// pull rebases the replica onto coord's newest LSN.
func (r *replica) pull(coord *engine.Coordinator) {
	r.t.Helper()
	d, err := coord.Diff(r.LSN())
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.Rebase(context.Background(), d); err != nil {
		r.t.Fatalf("rebase: %v", err)
	}
}

func (r *replica) count(sql string) int64 {
	r.t.Helper()
	rows, err := r.Query(sql)
	if err != nil {
		r.t.Fatal(err)
	}
	return rows.Values[0][0].(int64)
}

func openCoord(t *testing.T, mut engine.Mutator, opts engine.CoordinatorOptions) *engine.Coordinator {
	t.Helper()
	c, err := engine.OpenCoordinator(context.Background(), memstore.New(), mut, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A local mutation that fails at COMMIT is rejected and leaves no trace:
// no record, no effect, and its seq goes to the next mutation.
func TestMutateFailingAtCommitLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	coord := openCoord(t, testmutator.SQL{}, engine.CoordinatorOptions{})
	a := newReplica(t, "a", testmutator.SQL{}, engine.ClientOptions{})
	b := newReplica(t, "b", testmutator.SQL{}, engine.ClientOptions{})
	a.mutate("exec", exec(fkSchema))
	a.push(coord)
	b.pull(coord)

	_, err := b.Mutate(ctx, "exec", exec(`INSERT INTO c(pid) VALUES ('ghost')`))
	var rej *engine.RejectedError
	if !errors.As(err, &rej) || !strings.Contains(rej.Message, "FOREIGN KEY constraint failed") {
		t.Fatalf("an orphan child: got %v, want a rejection with SQLite's message", err)
	}
	if n := b.PendingCount(); n != 0 {
		t.Fatalf("%d pending after a rejected mutation", n)
	}
	if ms, _ := b.log.Load(); len(ms) != 0 {
		t.Fatalf("the pending log recorded a rejected mutation: %+v", ms)
	}
	if n := b.count(`SELECT count(*) FROM c`); n != 0 {
		t.Fatalf("the rejected mutation left %d rows", n)
	}
	if seq := b.mutate("exec", exec(`INSERT INTO p VALUES ('x')`)); seq != 1 {
		t.Fatalf("the next mutation took seq %d, want 1", seq)
	}
	b.reopen()
	if n := b.count(`SELECT count(*) FROM p`); n != 1 {
		t.Fatalf("after reopening, %d parents, want 1", n)
	}
}

// The brick: a pending log holding a mutation that fails at COMMIT
// (written before this fix, or by a crash between append and commit). The
// replica opens; the mutation stays pending and is reported; the rest
// replays; the coordinator rejects it alone with SQLite's message.
func TestReplayFailingAtCommitNeverBricks(t *testing.T) {
	coord := openCoord(t, testmutator.SQL{}, engine.CoordinatorOptions{})
	a := newReplica(t, "a", testmutator.SQL{}, engine.ClientOptions{})
	a.mutate("exec", exec(fkSchema))
	a.push(coord)
	b := newReplica(t, "b", testmutator.SQL{}, engine.ClientOptions{})
	b.pull(coord)
	b.Close()
	for _, m := range []engine.Mutation{
		{ClientID: "b", Seq: 1, Name: "exec", Args: exec(`INSERT INTO p VALUES ('x')`)},
		{ClientID: "b", Seq: 2, Name: "exec", Args: exec(`INSERT INTO c(pid) VALUES ('ghost')`)},
		{ClientID: "b", Seq: 3, Name: "exec", Args: exec(`INSERT INTO c(pid) VALUES ('x')`)},
	} {
		if err := b.log.Append(m); err != nil {
			t.Fatal(err)
		}
	}
	b.Client = nil
	b.reopen()
	if f := b.LocalFailures(); len(f) != 1 || f[0].Seq != 2 || !strings.Contains(f[0].Message, "FOREIGN KEY") {
		t.Fatalf("local failures %+v, want seq 2 with a foreign key message", f)
	}
	if n := b.PendingCount(); n != 3 {
		t.Fatalf("%d pending, want all 3", n)
	}
	if n := b.count(`SELECT count(*) FROM c`); n != 1 {
		t.Fatalf("%d children after replay, want 1 (seq 3)", n)
	}
	// It still works: mutate, then reopen again.
	b.mutate("exec", exec(`INSERT INTO p VALUES ('y')`))
	b.reopen()

	res := b.push(coord)
	if len(res.Applied) != 4 || len(res.Rejected) != 1 || res.Rejected[0].Mutation.Seq != 2 ||
		!strings.Contains(res.Rejected[0].Err.Error(), "FOREIGN KEY constraint failed") {
		t.Fatalf("applied %d, rejected %+v; want 4 applied, seq 2 rejected for its foreign key", len(res.Applied), res.Rejected)
	}
	b.pull(coord)
	if n := b.PendingCount(); n != 0 || len(b.LocalFailures()) != 0 {
		t.Fatalf("after the coordinator decided: %d pending, local failures %+v", n, b.LocalFailures())
	}
	if rows, _ := coord.Query(`SELECT count(*) FROM c`); rows.Values[0][0] != int64(1) {
		t.Fatalf("coordinator children %v, want 1", rows.Values)
	}
}

// A mutation that passes locally but fails at COMMIT on the coordinator
// (another client deleted its parent row first) is rejected alone: the rest
// of its group commit lands. On the replica it fails on replay without
// bricking it.
func TestCommitTimeFailureOnCoordinatorIsAlone(t *testing.T) {
	coord := openCoord(t, testmutator.SQL{}, engine.CoordinatorOptions{})
	a := newReplica(t, "a", testmutator.SQL{}, engine.ClientOptions{})
	b := newReplica(t, "b", testmutator.SQL{}, engine.ClientOptions{})
	a.mutate("exec", exec(fkSchema+`; INSERT INTO p VALUES ('x')`))
	a.push(coord)
	b.pull(coord)

	b.mutate("exec", exec(`INSERT INTO c(pid) VALUES ('x')`)) // fine here
	a.mutate("exec", exec(`DELETE FROM p WHERE id = 'x'`))
	a.push(coord)
	a.pull(coord)

	// B's rebase replays its child over a snapshot without the parent.
	b.pull(coord)
	if f := b.LocalFailures(); len(f) != 1 || f[0].Seq != 1 {
		t.Fatalf("local failures %+v, want seq 1", f)
	}
	b.reopen()

	// One group commit: B's orphan between two good mutations.
	a.mutate("exec", exec(`INSERT INTO p VALUES ('y')`))
	b.mutate("exec", exec(`INSERT INTO p VALUES ('z')`))
	res, err := coord.Apply(context.Background(), []engine.Mutation{b.Pending()[0], a.Pending()[0], b.Pending()[1]})
	if err != nil {
		t.Fatalf("the batch failed: %v", err)
	}
	if len(res.Applied) != 3 || len(res.Rejected) != 1 || res.Rejected[0].Mutation.ClientID != "b" || res.Rejected[0].Mutation.Seq != 1 {
		t.Fatalf("applied %d, rejected %+v; want 3 applied, b/1 rejected", len(res.Applied), res.Rejected)
	}
	if rows, _ := coord.Query(`SELECT group_concat(id) FROM (SELECT id FROM p ORDER BY id)`); rows.Values[0][0] != "y,z" {
		t.Fatalf("coordinator parents %v, want y,z", rows.Values)
	}
	a.pull(coord)
	b.pull(coord)
	if a.PendingCount()+b.PendingCount() != 0 {
		t.Fatalf("still pending: a %d, b %d", a.PendingCount(), b.PendingCount())
	}
}

// spin is a write whose cost depends on the data: instant while table flag
// is empty, endless (until the time limit interrupts it) once it is not.
const spin = `INSERT INTO t(v) SELECT max(i) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE EXISTS (SELECT 1 FROM flag)) SELECT i FROM n)`

// A pending mutation that exceeds the time limit only on replay fails
// there alone: the replica opens and rebases, the mutations after it
// replay, and the coordinator rejects it alone.
func TestTimeLimitOnlyOnReplay(t *testing.T) {
	// The limit stops the spin (endless, whatever the limit) and must let
	// the other mutations through on a loaded machine.
	limit := 300 * time.Millisecond
	coord := openCoord(t, testmutator.SQL{}, engine.CoordinatorOptions{MutationTimeout: limit})
	a := newReplica(t, "a", testmutator.SQL{}, engine.ClientOptions{MutationTimeout: limit})
	b := newReplica(t, "b", testmutator.SQL{}, engine.ClientOptions{MutationTimeout: limit})
	a.mutate("exec", exec(`CREATE TABLE t(v); CREATE TABLE flag(x)`))
	a.push(coord)
	b.pull(coord)

	b.mutate("exec", exec(spin)) // instant: no flag here yet
	b.mutate("exec", exec(`INSERT INTO t(v) VALUES ('after')`))
	a.mutate("exec", exec(`INSERT INTO flag VALUES (1)`))
	a.push(coord)

	b.pull(coord)
	if f := b.LocalFailures(); len(f) != 1 || f[0].Seq != 1 {
		t.Fatalf("local failures %+v, want seq 1", f)
	}
	if n := b.count(`SELECT count(*) FROM t WHERE v = 'after'`); n != 1 {
		t.Fatalf("the mutation after the slow one did not replay (%d rows)", n)
	}
	b.reopen()
	if f := b.LocalFailures(); len(f) != 1 || f[0].Seq != 1 {
		t.Fatalf("after reopening: local failures %+v, want seq 1", f)
	}
	res := b.push(coord)
	if len(res.Applied) != 2 || len(res.Rejected) != 1 || res.Rejected[0].Mutation.Seq != 1 {
		t.Fatalf("applied %d, rejected %+v; want 2 applied, seq 1 rejected", len(res.Applied), res.Rejected)
	}
	b.pull(coord)
	if n := b.PendingCount(); n != 0 {
		t.Fatalf("%d pending", n)
	}
}

// A batch of mutations that each run into the time limit costs the
// document's writer a bounded time, not the limit times the batch size;
// what the budget leaves out comes back deferred, and a later Apply takes
// it, losing nothing.
func TestBatchTimeBudget(t *testing.T) {
	ctx := context.Background()
	limit := 100 * time.Millisecond
	coord := openCoord(t, testmutator.SQL{}, engine.CoordinatorOptions{MutationTimeout: limit, BatchTimeout: 2 * limit})
	res, err := coord.Apply(ctx, []engine.Mutation{{ClientID: "a", Seq: 1, Name: "exec",
		Args: exec(`CREATE TABLE t(v); CREATE TABLE flag(x); INSERT INTO flag VALUES (1)`)}})
	if err != nil || len(res.Rejected) != 0 {
		t.Fatalf("schema: %v %+v", err, res.Rejected)
	}
	const n = 20
	var batch []engine.Mutation
	for i := range n {
		batch = append(batch,
			engine.Mutation{ClientID: "slow", Seq: uint64(i + 1), Name: "exec", Args: exec(spin)},
			engine.Mutation{ClientID: "fast", Seq: uint64(i + 1), Name: "exec", Args: exec(`INSERT INTO t(v) VALUES (?)`, fmt.Sprint(i))})
	}
	applied, rejected := 0, 0
	for round := 0; len(batch) > 0; round++ {
		if round > 2*n {
			t.Fatalf("no progress: %d mutations left after %d rounds", len(batch), round)
		}
		start := time.Now()
		res, err := coord.Apply(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		// Without the budget: n * limit, and more for re-runs.
		if d := time.Since(start); d > n*limit/2 {
			t.Fatalf("one Apply took %v for %d slow mutations with a %v budget", d, len(batch)/2, 2*limit)
		}
		if len(res.Gaps) != 0 {
			t.Fatalf("gaps %+v", res.Gaps)
		}
		if got := len(res.Applied) + len(res.Deferred); got != len(batch) {
			t.Fatalf("applied %d + deferred %d of %d", len(res.Applied), len(res.Deferred), len(batch))
		}
		applied += len(res.Applied)
		rejected += len(res.Rejected)
		batch = res.Deferred
	}
	if applied != 2*n || rejected != n {
		t.Fatalf("applied %d, rejected %d; want %d and %d", applied, rejected, 2*n, n)
	}
	if rows, _ := coord.Query(`SELECT count(*) FROM t`); rows.Values[0][0] != int64(n) {
		t.Fatalf("%v rows, want every fast mutation's", rows.Values)
	}
}

// failingLog is a pending log whose appends fail on demand.
type failingLog struct {
	*pendinglog.Memory
	fail bool
}

func (l *failingLog) Append(m engine.Mutation) error {
	if l.fail {
		return errors.New("disk full")
	}
	return l.Memory.Append(m)
}

// A mutation whose record cannot be written has no effect either.
func TestMutateAppendFailureUndoesEffect(t *testing.T) {
	ctx := context.Background()
	log := &failingLog{Memory: pendinglog.NewMemory("a")}
	c, err := engine.OpenClient(ctx, memstore.New(), log, testmutator.Mutator{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Mutate(ctx, "add", testmutator.Args{ID: "x", Title: "x"}.Encode()); err != nil {
		t.Fatal(err)
	}
	log.fail = true
	if _, err := c.Mutate(ctx, "add", testmutator.Args{ID: "y", Title: "y"}.Encode()); err == nil {
		t.Fatal("a mutation whose record failed succeeded")
	}
	rows, err := c.Query(`SELECT group_concat(id) FROM items`)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Values[0][0] != "x" || c.PendingCount() != 1 {
		t.Fatalf("items %v, %d pending; want only x, 1 pending", rows.Values, c.PendingCount())
	}
	log.fail = false
	if seq, err := c.Mutate(ctx, "add", testmutator.Args{ID: "z", Title: "z"}.Encode()); err != nil || seq != 2 {
		t.Fatalf("next mutation: seq %d, %v; want seq 2 (the failed one was never recorded)", seq, err)
	}
}

// armed is the SQL mutator plus two mutations that misbehave once table
// flag has a row: "break" ends the engine's transaction, as an interrupted
// write does, and "panic" panics, as the driver does when SQLite runs out
// of memory.
type armed struct{ testmutator.SQL }

func (a armed) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if name != "break" && name != "panic" {
		return a.SQL.Mutate(ctx, conn, name, args)
	}
	rows, err := sqlrows.Query(conn, `SELECT count(*) FROM flag`)
	if err != nil {
		return err
	}
	if rows.Values[0][0].(int64) > 0 {
		if name == "panic" {
			panic("out of memory")
		}
		conn.Exec(`ROLLBACK`)
		return errors.New("interrupted")
	}
	return sqlrows.Exec(conn, `INSERT INTO t(v) VALUES (?)`, name)
}

// Pending mutations that break the transaction or panic only on replay
// fail there alone, on open and on rebase.
func TestReplayBreakingTheTransaction(t *testing.T) {
	coord := openCoord(t, armed{}, engine.CoordinatorOptions{})
	a := newReplica(t, "a", armed{}, engine.ClientOptions{})
	b := newReplica(t, "b", armed{}, engine.ClientOptions{})
	a.mutate("exec", exec(`CREATE TABLE t(v); CREATE TABLE flag(x)`))
	a.push(coord)
	b.pull(coord)
	b.mutate("exec", exec(`INSERT INTO t(v) VALUES ('one')`))
	b.mutate("break", nil)
	b.mutate("exec", exec(`INSERT INTO t(v) VALUES ('two')`))
	b.mutate("panic", nil)
	b.mutate("exec", exec(`INSERT INTO t(v) VALUES ('three')`))
	a.mutate("exec", exec(`INSERT INTO flag VALUES (1)`))
	a.push(coord)

	check := func(when string) {
		t.Helper()
		f := b.LocalFailures()
		if len(f) != 2 || f[0].Seq != 2 || f[1].Seq != 4 {
			t.Fatalf("%s: local failures %+v, want seqs 2 and 4", when, f)
		}
		rows, err := b.Query(`SELECT group_concat(v) FROM (SELECT v FROM t ORDER BY rowid)`)
		if err != nil {
			t.Fatal(err)
		}
		if rows.Values[0][0] != "one,two,three" {
			t.Fatalf("%s: rows %v, want one,two,three", when, rows.Values)
		}
	}
	b.pull(coord)
	check("after the rebase")
	b.reopen()
	check("after reopening")

	res := b.push(coord)
	if len(res.Applied) != 5 || len(res.Rejected) != 2 {
		t.Fatalf("applied %d, rejected %+v; want 5 and 2", len(res.Applied), res.Rejected)
	}
	b.pull(coord)
	if b.PendingCount() != 0 || len(b.LocalFailures()) != 0 {
		t.Fatalf("after the coordinator decided: %d pending, local failures %+v", b.PendingCount(), b.LocalFailures())
	}
}
