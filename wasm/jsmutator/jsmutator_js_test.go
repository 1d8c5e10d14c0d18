//go:build js

package jsmutator_test

// These tests run in Chromium (make test-gowasm): the runner serves the
// mutators built from source at $SQLSYNC_MUTATORS (full.wasm, the
// wasmhost tests' mutator; todo.wasm, demo-todo/mutator; sandbox.wasm,
// testdata/sandbox) and installs the JavaScript half of the host. They
// mirror package wasmhost's tests: the same module, the same failures, the
// same messages (but for the engine's own wording of a trap).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall/js"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/internal/jsinterop"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/enginetest"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"github.com/sqlsync-go/sqlsync/wasm/jsmutator"
)

// testLimits are tight enough for the failure tests to run fast, except
// the time limit: it is generous, so that on a loaded machine no test
// whose subject is another limit (or none) runs into it first.
var testLimits = mutatorhost.Limits{
	Timeout:        30 * time.Second,
	MemoryPages:    512, // 32 MiB
	MaxResultBytes: 1 << 20,
}

// timeLimits are testLimits with a tight time limit, for the tests about
// the time limit only.
var timeLimits = func() mutatorhost.Limits {
	l := testLimits
	l.Timeout = 300 * time.Millisecond
	return l
}()

// timeSlack is how late past its time limit a call may stop on a loaded
// machine; a call that is not stopped runs forever.
const timeSlack = 10 * time.Second

var (
	fetchMu sync.Mutex
	fetched = map[string][]byte{}
)

// load returns the bytes of the test mutator name (full, todo, sandbox),
// or skips t when the runner serves none.
func load(tb testing.TB, name string) []byte {
	tb.Helper()
	base := os.Getenv("SQLSYNC_MUTATORS")
	if base == "" {
		tb.Skip("SQLSYNC_MUTATORS is not set: run with make test-gowasm")
	}
	fetchMu.Lock()
	defer fetchMu.Unlock()
	if b, ok := fetched[name]; ok {
		return b
	}
	ctx := context.Background()
	resp, err := jsinterop.Await(ctx, js.Global().Call("fetch", base+name+".wasm"))
	if err != nil {
		tb.Fatal(err)
	}
	if !resp.Get("ok").Bool() {
		tb.Fatalf("fetch %s: HTTP %d", name, resp.Get("status").Int())
	}
	ab, err := jsinterop.Await(ctx, resp.Call("arrayBuffer"))
	if err != nil {
		tb.Fatal(err)
	}
	u8 := js.Global().Get("Uint8Array").New(ab)
	b := make([]byte, u8.Length())
	js.CopyBytesToGo(b, u8)
	fetched[name] = b
	return b
}

func compile(tb testing.TB, name string, limits mutatorhost.Limits) *jsmutator.Module {
	tb.Helper()
	m, err := jsmutator.Compile(context.Background(), load(tb, name), limits)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

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

func (d *doc) apply(name string, args []byte) error {
	d.t.Helper()
	d.seq++
	res, err := d.coord.Apply(context.Background(), []engine.Mutation{{ClientID: "c", Seq: d.seq, Name: name, Args: args}})
	if err != nil {
		d.t.Fatalf("apply %s: %v", name, err)
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

func TestBounded(t *testing.T) {
	if !compile(t, "full", testLimits).Bounded() {
		t.Fatal("the module could not be rewritten to call the tick")
	}
}

func TestFeatures(t *testing.T) {
	mod := compile(t, "full", testLimits)
	d := openDoc(t, mod.Mutator(nil))
	if got := d.query(`PRAGMA user_version`); got[0][0] != int64(2) {
		t.Fatalf("user_version %v, want 2", got[0][0])
	}
	for _, tc := range []struct {
		name string
		args []byte
	}{
		{"types", jsonArgs(map[string]any{"id": 10})},
		{"batch", jsonArgs(map[string]any{"prefix": "b", "n": 50})},
		{"many", jsonArgs(map[string]any{"n": 300, "size": 1000})}, // ~300 KiB: sqlsync.result
		{"nested", []byte(`{}`)},
		{"raw", []byte("\x00raw\xff")},
		{"recover", jsonArgs(map[string]any{"id": "b0", "title": "again"})},
		{"query", jsonArgs(map[string]any{"sql": "PRAGMA table_info(items)", "want": 2})},
		{"sql", jsonArgs(map[string]any{"sql": "CREATE TABLE main.extra(x); DROP TABLE extra; -- several statements"})},
		{"sql", jsonArgs(map[string]any{"sql": "INSERT INTO vals(id, t) VALUES (?, ?)", "args": []any{1, "one"}})},
		{"print", jsonArgs(map[string]any{"lines": 3})},
	} {
		if err := d.apply(tc.name, tc.args); err != nil {
			t.Errorf("%s %s: %v", tc.name, tc.args, err)
		}
	}
	got := d.query(`SELECT n, i, r, t, b FROM vals WHERE id = 10`)
	if len(got) == 0 {
		t.Fatal("vals row 10 is missing")
	}
	want := []any{nil, int64(math.MinInt64), math.Pi, "héllo, wörld \u2603 \x00 nul", []byte{0, 1, 2, 0xfe, 0xff}}
	if fmt.Sprintf("%#v", got[0]) != fmt.Sprintf("%#v", want) {
		t.Errorf("vals row 10: %#v, want %#v", got[0], want)
	}
	if got := d.query(`SELECT count(*) FROM items WHERE title = 'BATCHED'`); got[0][0] != int64(50) {
		t.Errorf("batched items: %v, want 50", got[0][0])
	}
	if got := d.query(`SELECT count(*), sum(length(body)) FROM big`); got[0][0] != int64(300) || got[0][1] != int64(300000) {
		t.Errorf("big: %v", got[0])
	}
}

// Every way a mutation can fail, as in wasmhost's TestFailures: each is
// rejected with the coordinator's message, the document stays intact, and
// the next mutation runs.
//
// The cases about the time limit run on the module compiled with
// timeLimits, the others with testLimits, whose time limit they never
// reach.
func TestFailures(t *testing.T) {
	mod, timed := compile(t, "full", testLimits), compile(t, "full", timeLimits)
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
		{"unknown name", "nope", []byte(`{}`), `unknown mutation "nope"`, mutatorhost.ErrUnknownMutation},
		{"bad json args", "add", []byte(`{"id": `), "bad args: unexpected end of JSON input", mutatorhost.ErrBadArgs},
		{"bad args from handler", "badargs", nil, "bad args: always", mutatorhost.ErrBadArgs},
		{"mutator error", "fail", jsonArgs(map[string]any{"message": "no, thanks"}), "no, thanks", nil},
		{"sql error", "add", jsonArgs(map[string]any{"id": "a", "title": "dup"}), "UNIQUE constraint failed: items.id", nil},
		{"parameter count", "sql", jsonArgs(map[string]any{"sql": "INSERT INTO vals(id) VALUES (?)"}), "takes 1 parameters, got 0", nil},
		{"panic", "panic", nil, `panic in mutation "panic": boom`, mutatorhost.ErrPanic},
		{"trap", "trap", nil, "mutator trapped: wasm error: memory access out of bounds", mutatorhost.ErrTrap},
		{"exit", "exit", nil, "mutator trapped: exited with code 3", mutatorhost.ErrTrap},
		{"infinite loop", "loop", nil, "mutator exceeded its time limit of 300ms", mutatorhost.ErrTimeLimit},
		{"runaway query", "sqlloop", nil, "mutator exceeded its time limit of 300ms", mutatorhost.ErrTimeLimit},
		{"huge allocation", "alloc", jsonArgs(map[string]any{"n": 1 << 30}), "mutator exceeded its memory limit of 32 MiB", mutatorhost.ErrMemoryLimit},
		{"growing allocation", "alloc", jsonArgs(map[string]any{"n": 40 << 20}), "mutator exceeded its memory limit of 32 MiB", mutatorhost.ErrMemoryLimit},
		{"result too large", "many", jsonArgs(map[string]any{"n": 1200, "size": 1000}), "query result exceeds the limit of 1048576 bytes", nil},
		{"args too large", "add", bytes.Repeat([]byte(" "), 2<<20), "mutation args exceed the size limit: 2097152 bytes, the limit is 1048576", mutatorhost.ErrArgsTooLarge},
		{"BEGIN", "sql", sql("BEGIN"), "sqlsync: BEGIN is not allowed in a mutator: the engine owns the transaction", nil},
		{"ATTACH", "sql", sql("ATTACH ':memory:' AS other"), "ATTACH is not allowed in a mutator: a mutator sees only its document", nil},
		{"journal_mode", "sql", sql("PRAGMA journal_mode = OFF"), "PRAGMA journal_mode is not allowed", nil},
		{"TEMP table", "sql", sql("CREATE TEMP TABLE t(x)"), "TEMP objects are not allowed", nil},
		{"clients table", "sql", sql("UPDATE __sqlsync_clients SET last_seq = 0"), "__sqlsync_clients belongs to the engine", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, timeLimit := d, errors.Is(tc.is, mutatorhost.ErrTimeLimit)
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
			d.mustApply("add", jsonArgs(map[string]any{"id": "tmp", "title": "x"}))
			d.mustApply("sql", sql("DELETE FROM items WHERE id = 'tmp'"))
			d.check("a")
		})
	}
	d.t, dt.t = t, t

	conn := openConn(t)
	mut, timedMut := mod.Mutator(nil), timed.Mutator(nil)
	for _, m := range []*jsmutator.Mutator{mut, timedMut} {
		if err := m.Migrate(context.Background(), conn); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range cases {
		if tc.is == nil {
			continue
		}
		m := mut
		if errors.Is(tc.is, mutatorhost.ErrTimeLimit) {
			m = timedMut
		}
		if err := m.Mutate(context.Background(), conn, tc.mutation, tc.args); !errors.Is(err, tc.is) {
			t.Errorf("%s: Mutate returned %v, want errors.Is %v", tc.name, err, tc.is)
		}
	}
	d.mustApply("add", jsonArgs(map[string]any{"id": "b", "title": "second"}))
	d.check("a", "b")
}

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
	mod := compile(t, "full", testLimits)
	d := openDoc(t, mod.Mutator(nil))
	d.mustApply("counter", []byte(`{}`))
	d.mustApply("counter", []byte(`{}`))
	if err := d.apply("trap", nil); !errors.Is(err, engine.ErrRejected) {
		t.Fatalf("trap: %v", err)
	}
	if err := d.apply("counter", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("counter on a fresh instance: %v, want a duplicate id", err)
	}
	d.check("counter1", "counter2")
}

func TestMutateOutsideTransaction(t *testing.T) {
	mod := compile(t, "full", testLimits)
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := mod.Mutator(nil).Mutate(context.Background(), conn, "add", []byte(`{}`)); !errors.Is(err, mutatorhost.ErrNoTransaction) {
		t.Fatalf("got %v, want ErrNoTransaction", err)
	}
}

// The time limit stops a loop though nothing else runs on the thread, and
// so does the context's deadline.
func TestClientTimeLimit(t *testing.T) {
	mod := compile(t, "full", timeLimits)
	conn := openConn(t)
	mut := mod.Mutator(nil)
	if err := mut.Migrate(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := mut.Mutate(context.Background(), conn, "loop", nil)
	if !errors.Is(err, mutatorhost.ErrTimeLimit) {
		t.Fatalf("got %v, want ErrTimeLimit", err)
	}
	if elapsed := time.Since(start); elapsed < timeLimits.Timeout || elapsed > timeLimits.Timeout+timeSlack {
		t.Errorf("stopped after %v, limit %v", elapsed, timeLimits.Timeout)
	}
	// With a generous time limit, so that only the context can stop it.
	gen := compile(t, "full", testLimits).Mutator(nil)
	if err := gen.Migrate(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := gen.Mutate(ctx, conn, "loop", nil); !errors.Is(err, context.DeadlineExceeded) {
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
	mod := compile(t, "full", limits)
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

// A module that is not a mutator is refused with every problem listed.
func TestBadModule(t *testing.T) {
	// (module (import "env" "open_socket" (func)) (memory 1))
	wasm := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" +
		"\x02\x13\x01\x03env\x0bopen_socket\x00\x00" +
		"\x05\x03\x01\x00\x01")
	_, err := jsmutator.Compile(context.Background(), wasm, mutatorhost.Limits{})
	if !errors.Is(err, mutatorhost.ErrBadModule) {
		t.Fatalf("got %v, want ErrBadModule", err)
	}
	for _, want := range []string{"imports env.open_socket, which the host does not grant", "lacks the export sqlsync_mutate", "lacks the export memory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	if _, err := jsmutator.Compile(context.Background(), []byte("nope"), mutatorhost.Limits{}); !errors.Is(err, mutatorhost.ErrBadModule) {
		t.Errorf("not wasm: got %v", err)
	}
}

// The browser's WASI shim gives what wazero gives (see sandboxFacts).
func TestSandbox(t *testing.T) {
	mod := compile(t, "sandbox", mutatorhost.Limits{})
	for range 2 {
		mut := mod.Mutator(nil)
		checkSandbox(t, mut)
		mut.Close()
	}
}

// The todo mutator in the browser and the Go reference mutator, given the
// same mutations, leave the same database and reject the same mutations.
func TestSameAsGoMutator(t *testing.T) {
	ctx := context.Background()
	mod := compile(t, "todo", mutatorhost.Limits{})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed=%d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	wasm := openDoc(t, mod.Mutator(nil))
	native := openDoc(t, testmutator.Mutator{})
	var ids []string
	pick := func() string {
		if len(ids) == 0 || r.IntN(10) == 0 {
			return "missing"
		}
		return ids[r.IntN(len(ids))]
	}
	for seq := uint64(1); seq <= 200; seq++ {
		var name string
		a := testmutator.Args{}
		switch n := r.IntN(100); {
		case n < 30:
			name, a.ID, a.Title = "add", fmt.Sprintf("i%d", r.IntN(100)), fmt.Sprintf("item %d", r.IntN(1000))
			ids = append(ids, a.ID)
		case n < 40:
			pos := float64(r.IntN(100)) / 3
			name, a.ID, a.Position = "move", pick(), &pos
		case n < 50:
			name, a.ID, a.Title = "rename", pick(), fmt.Sprintf("renamed %d", r.IntN(1000))
		case n < 65:
			name, a.ID = "toggle", pick()
		case n < 80:
			name, a.ID = "delete", pick()
		case n < 85:
			name = "purge"
		case n < 90:
			name, a.Prefix, a.N = "bulk", fmt.Sprintf("b%d-", r.IntN(5)), r.IntN(20)
		case n < 95:
			name, a.Message = "fail", "refused on purpose"
		default:
			name, a.Title = "retitle", fmt.Sprintf("list %d", r.IntN(100))
		}
		m := engine.Mutation{ClientID: "c", Seq: seq, Name: name, Args: a.Encode()}
		gotW, err := wasm.coord.Apply(ctx, []engine.Mutation{m})
		if err != nil {
			t.Fatal(err)
		}
		gotN, err := native.coord.Apply(ctx, []engine.Mutation{m})
		if err != nil {
			t.Fatal(err)
		}
		if len(gotW.Rejected) != len(gotN.Rejected) {
			t.Fatalf("mutation %d %s: browser rejected %v, Go %v", seq, name, gotW.Rejected, gotN.Rejected)
		}
	}
	var w, n strings.Builder
	if err := wasm.coord.Dump(&w); err != nil {
		t.Fatal(err)
	}
	if err := native.coord.Dump(&n); err != nil {
		t.Fatal(err)
	}
	if w.String() != n.String() {
		t.Fatalf("dumps differ\nbrowser:\n%s\nGo:\n%s", w.String(), n.String())
	}
}

// The engine's seeded simulation (clients going on and offline, rebasing,
// converging byte for byte), with every replica running the todo module
// on the browser's engine.
func TestSimulation(t *testing.T) {
	mod := compile(t, "todo", mutatorhost.Limits{})
	mut := mod.Mutator(nil)
	defer mut.Close()
	if err := enginetest.Run(1, 3, 60, mut); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkMutation measures the browser host's overhead per mutation, as
// wasmhost's benchmark of the same name does natively: through the guest,
// a mutation that does nothing (noop), one that only decodes JSON args
// (json), one inserting a row from raw args (insert-raw), and the todo
// app's add (insert: JSON args and an insert); directly through the same
// connection in Go, the two inserts. One connection, one transaction.
//
// V8 first runs the host (the Go runtime and SQLite, some 18 MB of
// WebAssembly) in its baseline tier and optimizes hot functions over the
// next seconds, so the benchmark first warms both paths up, for
// $SQLSYNC_WARMUP mutations of each (default 30 000).
//
//	make bench-mutator-browser
func BenchmarkMutation(b *testing.B) {
	ctx := context.Background()
	mod := compile(b, "full", mutatorhost.Limits{})
	jsonArgs := func(i int) []byte {
		return []byte(`{"id":"item` + fmt.Sprint(i) + `","title":"buy milk"}`)
	}
	rawArgs := func(i int) []byte { return []byte("item" + fmt.Sprint(i)) }
	warmup := 30000
	if s := os.Getenv("SQLSYNC_WARMUP"); s != "" {
		fmt.Sscan(s, &warmup)
	}
	warmOnce.Do(func() {
		start := time.Now()
		conn, mut := benchConn(b, mod)
		for i := range warmup {
			for _, name := range []string{"add", "insert-raw", "json", "noop"} {
				args := jsonArgs(i)
				if name == "insert-raw" {
					args = rawArgs(i)
				}
				if err := mut.Mutate(ctx, conn, name, args); err != nil {
					b.Fatal(err)
				}
			}
			stmt, _, err := conn.Prepare(`INSERT INTO items(id, title) VALUES (?, ?)`)
			if err != nil {
				b.Fatal(err)
			}
			stmt.BindText(1, fmt.Sprint("direct", i))
			stmt.BindText(2, "buy milk")
			err = stmt.Exec()
			stmt.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("warmed up with %d rounds in %v", warmup, time.Since(start))
	})
	for _, bc := range []struct {
		name string
		args func(int) []byte
	}{
		{"noop", rawArgs},
		{"json", jsonArgs},
		{"insert-raw", rawArgs},
		{"insert", jsonArgs},
	} {
		mutation := bc.name
		if mutation == "insert" {
			mutation = "add"
		}
		b.Run("wasm/"+bc.name, func(b *testing.B) {
			conn, mut := benchConn(b, mod)
			i := 0
			for b.Loop() {
				i++
				if err := mut.Mutate(ctx, conn, mutation, bc.args(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	insert := func(b *testing.B, conn *sqlite3.Conn, id, title string) {
		stmt, _, err := conn.Prepare(`INSERT INTO items(id, title) VALUES (?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		stmt.BindText(1, id)
		stmt.BindText(2, title)
		err = stmt.Exec()
		stmt.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("direct/insert-raw", func(b *testing.B) {
		conn, _ := benchConn(b, mod)
		i := 0
		for b.Loop() {
			i++
			insert(b, conn, string(rawArgs(i)), "buy milk")
		}
	})
	b.Run("direct/insert", func(b *testing.B) {
		conn, _ := benchConn(b, mod)
		i := 0
		for b.Loop() {
			i++
			var a struct {
				ID    string `json:"id"`
				Title string `json:"title"`
			}
			if err := json.Unmarshal(jsonArgs(i), &a); err != nil {
				b.Fatal(err)
			}
			insert(b, conn, a.ID, a.Title)
		}
	})
}

var warmOnce sync.Once

// benchConn returns a connection inside a transaction, migrated by a new
// Mutator of mod.
func benchConn(b *testing.B, mod *jsmutator.Module) (*sqlite3.Conn, *jsmutator.Mutator) {
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if err := conn.Exec(`BEGIN`); err != nil {
		b.Fatal(err)
	}
	mut := mod.Mutator(nil)
	b.Cleanup(func() { mut.Close() })
	if err := mut.Migrate(context.Background(), conn); err != nil {
		b.Fatal(err)
	}
	return conn, mut
}

// BenchmarkStart measures a document's first call: starting an instance
// (WebAssembly.instantiate, the guest's runtime and init functions) and a
// no-op mutation.
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	mod := compile(b, "full", mutatorhost.Limits{})
	conn, _ := benchConn(b, mod)
	for b.Loop() {
		mut := mod.Mutator(nil)
		if err := mut.Mutate(ctx, conn, "noop", nil); err != nil {
			b.Fatal(err)
		}
		mut.Close()
	}
}

// BenchmarkCompile measures loading a module the worker has not compiled
// yet: rewriting it (package interrupt), WebAssembly.compile, checking its
// exports and starting its first instance.
func BenchmarkCompile(b *testing.B) {
	wasm := load(b, "todo")
	for i := 0; b.Loop(); i++ {
		// Another limit makes another cache entry: a fresh compilation.
		if _, err := jsmutator.Compile(context.Background(), wasm, mutatorhost.Limits{MaxLogBytes: 1000 + i}); err != nil {
			b.Fatal(err)
		}
	}
}
