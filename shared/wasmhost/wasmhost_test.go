package wasmhost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

const full = "./testdata/full"

func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.fuzz").Value.String() != "" || flag.Lookup("test.fuzzworker").Value.String() == "true" {
		os.Exit(m.Run()) // fuzzing the guard needs no module
	}
	wasmtest.Prebuild(full)
	wasmtest.Prebuild(versioned, "-X=main.version=1")
	wasmtest.Prebuild(versioned, "-X=main.version=2")
	wasmtest.Prebuild("./testdata/badimport")
	os.Exit(m.Run())
}

// testLimits are tight enough for the failure tests to run fast, except
// the time limit: it is generous, so that on a loaded machine no test
// whose subject is another limit (or none) runs into it first.
var testLimits = wasmhost.Limits{
	Timeout:        30 * time.Second,
	MemoryPages:    512, // 32 MiB
	MaxResultBytes: 1 << 20,
}

// timeLimits are testLimits with a tight time limit, for the tests about
// the time limit only.
var timeLimits = func() wasmhost.Limits {
	l := testLimits
	l.Timeout = 300 * time.Millisecond
	return l
}()

// timeSlack is how late past its time limit a call may stop on a loaded
// machine; a call that is not stopped runs forever.
const timeSlack = 10 * time.Second

// doc is a coordinator document under test, with its next seq.
type doc struct {
	t     *testing.T
	coord *engine.Coordinator
	seq   uint64
}

func openDoc(t *testing.T, mut engine.Mutator) *doc {
	t.Helper()
	c, err := engine.OpenCoordinator(context.Background(), memstore.New(), mut, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &doc{t: t, coord: c}
}

func jsonArgs(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// apply applies one mutation and returns its rejection, or nil.
func (d *doc) apply(name string, args []byte) error {
	d.t.Helper()
	d.seq++
	res, err := d.coord.Apply(context.Background(), []engine.Mutation{{ClientID: "c", Seq: d.seq, Name: name, Args: args}})
	if err != nil {
		d.t.Fatalf("apply %s: %v", name, err)
	}
	if len(res.Applied) != 1 {
		d.t.Fatalf("apply %s: applied %d mutations", name, len(res.Applied))
	}
	if len(res.Rejected) > 0 {
		return res.Rejected[0].Err
	}
	return nil
}

func (d *doc) mustApply(name string, args []byte) {
	d.t.Helper()
	if err := d.apply(name, args); err != nil {
		d.t.Fatalf("%s %s: %v", name, args, err)
	}
}

func (d *doc) query(sql string, args ...any) [][]any {
	d.t.Helper()
	rows, err := d.coord.Query(sql, args...)
	if err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
	return rows.Values
}

// check asserts the document is intact: integrity_check is ok and the
// items ids are exactly want.
func (d *doc) check(want ...string) {
	d.t.Helper()
	if got := d.query(`PRAGMA integrity_check`); len(got) != 1 || got[0][0] != "ok" {
		d.t.Fatalf("integrity_check: %v", got)
	}
	var ids []string
	for _, r := range d.query(`SELECT id FROM items ORDER BY id`) {
		ids = append(ids, r[0].(string))
	}
	if got, w := strings.Join(ids, ","), strings.Join(want, ","); got != w {
		d.t.Fatalf("items %q, want %q", got, w)
	}
}

func TestFeatures(t *testing.T) {
	mod := wasmtest.Compile(t, full, testLimits)
	d := openDoc(t, mod.Mutator(nil))
	if got := d.query(`PRAGMA user_version`); got[0][0] != int64(2) {
		t.Fatalf("user_version %v, want 2 (one SQL step, one Go step)", got[0][0])
	}
	cases := []struct {
		name string
		args []byte
	}{
		{"types", jsonArgs(map[string]any{"id": 10})},
		{"batch", jsonArgs(map[string]any{"prefix": "b", "n": 50})},
		{"many", jsonArgs(map[string]any{"n": 300, "size": 1000})}, // ~300 KiB: more than the guest's 64 KiB buffer
		{"nested", []byte(`{}`)},
		{"raw", []byte("\x00raw\xff")},
		{"recover", jsonArgs(map[string]any{"id": "b0", "title": "again"})},
		{"query", jsonArgs(map[string]any{"sql": "PRAGMA table_info(items)", "want": 2})},
		{"query", jsonArgs(map[string]any{"sql": "EXPLAIN QUERY PLAN SELECT * FROM items WHERE id = 'x'", "want": 1})},
		{"sql", jsonArgs(map[string]any{"sql": "PRAGMA user_version = 2"})},
		{"sql", jsonArgs(map[string]any{"sql": "CREATE TABLE main.extra(x); DROP TABLE extra; -- several statements"})},
		{"sql", jsonArgs(map[string]any{"sql": "INSERT INTO vals(id, t) VALUES (?, ?)", "args": []any{1, "one"}})},
		{"print", jsonArgs(map[string]any{"lines": 3})},
	}
	for _, tc := range cases {
		if err := d.apply(tc.name, tc.args); err != nil {
			t.Errorf("%s %s: %v", tc.name, tc.args, err)
		}
	}
	// The values crossed intact in both directions, and landed intact.
	got := d.query(`SELECT n, i, r, t, b FROM vals WHERE id = 10`)
	want := []any{nil, int64(math.MinInt64), math.Pi, "héllo, wörld \u2603 \x00 nul", []byte{0, 1, 2, 0xfe, 0xff}}
	if fmt.Sprintf("%#v", got[0]) != fmt.Sprintf("%#v", want) {
		t.Errorf("vals row 10: %#v, want %#v", got[0], want)
	}
	if got := d.query(`SELECT count(*) FROM items WHERE title = 'BATCHED'`); got[0][0] != int64(50) {
		t.Errorf("batched and uppercased items: %v, want 50", got[0][0])
	}
	if got := d.query(`SELECT count(*), sum(length(body)) FROM big`); got[0][0] != int64(300) || got[0][1] != int64(300000) {
		t.Errorf("big: %v", got[0])
	}
}

// TestFailures runs every way a mutation can fail on one coordinator
// document: each is rejected with a clear message, the document stays
// intact, and the coordinator goes on applying mutations, for this
// document and for another. It runs with both ways of stopping a call:
// the interrupt flag, and wazero's own checks.
func TestFailures(t *testing.T) {
	t.Run("interrupt flag", func(t *testing.T) {
		mod := wasmtest.Compile(t, full, testLimits)
		if !mod.Interruptible() {
			t.Fatal("the module did not take the interrupt flag")
		}
		testFailures(t, mod, wasmtest.Compile(t, full, timeLimits))
	})
	t.Run("wazero checks", func(t *testing.T) {
		if testing.Short() {
			t.Skip("the fallback is slower to compile; skipped with -short")
		}
		defer wasmhost.UseInterruptFlag(false)()
		mod := wasmtest.Compile(t, full, testLimits)
		if mod.Interruptible() {
			t.Fatal("the module took the interrupt flag")
		}
		testFailures(t, mod, wasmtest.Compile(t, full, timeLimits))
	})
}

// testFailures runs the cases about the time limit with timed, the same
// module compiled with timeLimits, and the others with mod, whose time
// limit they never reach.
func testFailures(t *testing.T, mod, timed *wasmhost.Module) {
	d := openDoc(t, mod.Mutator(nil))
	d.mustApply("add", jsonArgs(map[string]any{"id": "a", "title": "first"}))
	dt := openDoc(t, timed.Mutator(nil))
	dt.mustApply("add", jsonArgs(map[string]any{"id": "a", "title": "first"}))
	sql := func(s string) []byte { return jsonArgs(map[string]any{"sql": s}) }

	cases := []struct {
		name     string
		mutation string
		args     []byte
		want     string
		is       error
	}{
		{"unknown name", "nope", []byte(`{}`), `unknown mutation "nope"`, wasmhost.ErrUnknownMutation},
		{"bad json args", "add", []byte(`{"id": `), "bad args: unexpected end of JSON input", wasmhost.ErrBadArgs},
		{"bad args from handler", "badargs", nil, "bad args: always", wasmhost.ErrBadArgs},
		{"mutator error", "fail", jsonArgs(map[string]any{"message": "no, thanks"}), "no, thanks", nil},
		{"sql error", "add", jsonArgs(map[string]any{"id": "a", "title": "dup"}), "UNIQUE constraint failed: items.id", nil},
		{"sql syntax", "sql", sql("INSERT INTO nowhere VALUES (1)"), "no such table: nowhere", nil},
		{"parameter count", "sql", jsonArgs(map[string]any{"sql": "INSERT INTO vals(id) VALUES (?)"}), "takes 1 parameters, got 0", nil},
		{"panic", "panic", nil, `panic in mutation "panic": boom`, wasmhost.ErrPanic},
		{"trap", "trap", nil, "mutator trapped: wasm error: out of bounds memory access", wasmhost.ErrTrap},
		{"exit", "exit", nil, "mutator trapped: exited with code 3", wasmhost.ErrTrap},
		{"infinite loop", "loop", nil, "mutator exceeded its time limit of 300ms", wasmhost.ErrTimeLimit},
		{"runaway query", "sqlloop", nil, "mutator exceeded its time limit of 300ms", wasmhost.ErrTimeLimit},
		{"huge allocation", "alloc", jsonArgs(map[string]any{"n": 1 << 30}), "mutator exceeded its memory limit of 32 MiB", wasmhost.ErrMemoryLimit},
		{"growing allocation", "alloc", jsonArgs(map[string]any{"n": 40 << 20}), "mutator exceeded its memory limit of 32 MiB", wasmhost.ErrMemoryLimit},
		{"result too large", "many", jsonArgs(map[string]any{"n": 1200, "size": 1000}), "query result exceeds the limit of 1048576 bytes", nil},
		{"args too large", "add", bytes.Repeat([]byte(" "), 2<<20), "mutation args exceed the size limit: 2097152 bytes, the limit is 1048576", wasmhost.ErrArgsTooLarge},

		{"BEGIN", "sql", sql("BEGIN"), "sqlsync: BEGIN is not allowed in a mutator: the engine owns the transaction", nil},
		{"begin after comment", "sql", sql("/* hi */ -- there\n begin immediate"), "BEGIN is not allowed", nil},
		{"COMMIT", "sql", sql("COMMIT"), "COMMIT is not allowed", nil},
		{"END", "sql", sql("END TRANSACTION"), "END is not allowed", nil},
		{"ROLLBACK", "sql", sql("ROLLBACK"), "ROLLBACK is not allowed", nil},
		{"ROLLBACK TO", "sql", sql("ROLLBACK TO mutation"), "ROLLBACK is not allowed", nil},
		{"SAVEPOINT", "sql", sql("SAVEPOINT mine"), "SAVEPOINT is not allowed", nil},
		{"RELEASE", "sql", sql("RELEASE mutation"), "RELEASE is not allowed", nil},
		{"second statement", "sql", sql("SELECT 1; COMMIT"), "COMMIT is not allowed", nil},
		{"ATTACH", "sql", sql("ATTACH ':memory:' AS other"), "ATTACH is not allowed in a mutator: a mutator sees only its document", nil},
		{"DETACH", "sql", sql("DETACH main"), "DETACH is not allowed", nil},
		{"VACUUM", "sql", sql("VACUUM"), "VACUUM is not allowed", nil},
		{"journal_mode", "sql", sql("PRAGMA journal_mode = OFF"), "PRAGMA journal_mode is not allowed", nil},
		{"foreign_keys", "sql", sql("PRAGMA foreign_keys = 0"), "setting PRAGMA foreign_keys is not allowed", nil},
		{"writable_schema", "sql", sql(`PRAGMA "writable_schema" = 1`), "PRAGMA writable_schema is not allowed", nil},
		{"cache_size", "sql", sql("PRAGMA main.cache_size(10)"), "PRAGMA cache_size is not allowed", nil},
		{"temp pragma", "sql", sql("PRAGMA temp.user_version = 1"), `PRAGMA on schema "temp" is not allowed`, nil},
		{"TEMP table", "sql", sql("CREATE TEMP TABLE t(x)"), "TEMP objects are not allowed", nil},
		{"temp schema", "sql", sql(`CREATE TABLE "temp".t(x)`), `CREATE TABLE in schema "temp" is not allowed`, nil},
		{"clients table", "sql", sql("UPDATE __sqlsync_clients SET last_seq = 0"), "__sqlsync_clients belongs to the engine", nil},
		{"clients table quoted", "sql", sql(`DELETE FROM "__SQLSYNC_CLIENTS"`), "belongs to the engine", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, timeLimit := d, errors.Is(tc.is, wasmhost.ErrTimeLimit)
			if timeLimit {
				d = dt
			}
			d.t = t
			start := time.Now()
			err := d.apply(tc.mutation, tc.args)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("%s was applied, want a rejection", tc.mutation)
			}
			t.Logf("rejected after %v: %v", elapsed, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("rejected with %q, want %q in it", err, tc.want)
			}
			// Stopped by the time limit: not before it, and not much
			// after. Any other failure: well before the (generous) limit.
			switch {
			case timeLimit && (elapsed < timeLimits.Timeout || elapsed > timeLimits.Timeout+timeSlack):
				t.Errorf("stopped after %v, limit %v", elapsed, timeLimits.Timeout)
			case !timeLimit && elapsed > testLimits.Timeout/2:
				t.Errorf("took %v", elapsed)
			}
			d.check("a")
			// The next mutation runs, on a fresh instance if need be.
			d.mustApply("add", jsonArgs(map[string]any{"id": "tmp", "title": "x"}))
			d.mustApply("sql", sql("DELETE FROM items WHERE id = 'tmp'"))
			d.check("a")
		})
	}
	d.t, dt.t = t, t

	// The errors themselves, straight from Mutate, match the sentinels.
	conn := openConn(t)
	mut, timedMut := mod.Mutator(nil), timed.Mutator(nil)
	for _, m := range []*wasmhost.Mutator{mut, timedMut} {
		if err := m.Migrate(context.Background(), conn); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range cases {
		if tc.is == nil {
			continue
		}
		m := mut
		if errors.Is(tc.is, wasmhost.ErrTimeLimit) {
			m = timedMut
		}
		err := m.Mutate(context.Background(), conn, tc.mutation, tc.args)
		if !errors.Is(err, tc.is) {
			t.Errorf("%s: Mutate returned %v, want errors.Is %v", tc.name, err, tc.is)
		}
	}

	// The coordinator still serves this document, and another.
	d.mustApply("add", jsonArgs(map[string]any{"id": "b", "title": "second"}))
	d.check("a", "b")
	other := openDoc(t, mod.Mutator(nil))
	other.mustApply("add", jsonArgs(map[string]any{"id": "z", "title": "other"}))
	other.check("z")
}

// openConn opens a plain connection in a transaction, as the engine runs a
// mutator.
func openConn(t *testing.T) *sqlite3.Conn {
	t.Helper()
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Exec(`BEGIN`); err != nil {
		t.Fatal(err)
	}
	return conn
}

// An instance survives from call to call, until a failure discards it.
func TestInstanceLifecycle(t *testing.T) {
	mod := wasmtest.Compile(t, full, testLimits)
	d := openDoc(t, mod.Mutator(nil))
	d.mustApply("counter", []byte(`{}`))
	d.mustApply("counter", []byte(`{}`))
	if err := d.apply("trap", nil); !errors.Is(err, engine.ErrRejected) {
		t.Fatalf("trap: %v", err)
	}
	// A fresh instance counts from 1 again, so its id is taken.
	if err := d.apply("counter", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("counter on a fresh instance: %v, want a duplicate id", err)
	}
	d.check("counter1", "counter2")
}

func TestMutateOutsideTransaction(t *testing.T) {
	mod := wasmtest.Compile(t, full, testLimits)
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = mod.Mutator(nil).Mutate(context.Background(), conn, "add", []byte(`{}`))
	if !errors.Is(err, wasmhost.ErrNoTransaction) {
		t.Fatalf("got %v, want ErrNoTransaction", err)
	}
}

// A client has no deadline of its own: the mutator's time limit still
// stops a loop.
func TestClientTimeLimit(t *testing.T) {
	mod := wasmtest.Compile(t, full, timeLimits)
	conn := openConn(t)
	mut := mod.Mutator(nil)
	if err := mut.Migrate(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := mut.Mutate(context.Background(), conn, "loop", nil)
	if !errors.Is(err, wasmhost.ErrTimeLimit) {
		t.Fatalf("got %v, want ErrTimeLimit", err)
	}
	if elapsed := time.Since(start); elapsed < timeLimits.Timeout || elapsed > timeLimits.Timeout+timeSlack {
		t.Errorf("stopped after %v, limit %v", elapsed, timeLimits.Timeout)
	}
	// A canceled context stops it too, and says so: with a generous time
	// limit, so that only the context can stop it.
	gen := wasmtest.Compile(t, full, testLimits).Mutator(nil)
	if err := gen.Migrate(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = gen.Mutate(ctx, conn, "loop", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if err := mut.Mutate(context.Background(), conn, "add", []byte(`{"id": "x", "title": "y"}`)); err != nil {
		t.Fatal(err)
	}
}

// Guest output reaches the log at debug level, bounded per call.
func TestOutputLogged(t *testing.T) {
	limits := testLimits
	limits.MaxLogBytes = 200
	mod := wasmtest.Compile(t, full, limits)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conn := openConn(t)
	mut := mod.Mutator(log)
	if err := mut.Migrate(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	if err := mut.Mutate(context.Background(), conn, "print", []byte(`{"lines": 100}`)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`stream=stdout line="line 0"`, `stream=stderr line="err line 0"`, "mutator output truncated"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "line 99") {
		t.Errorf("log not bounded:\n%s", out)
	}
}
