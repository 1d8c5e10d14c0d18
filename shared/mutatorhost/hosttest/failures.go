package hosttest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
)

// Failures runs every way a mutation can fail on one coordinator
// document, with the test mutator name ([Full] or [FullAS]): each is
// rejected with the coordinator's message, the document stays intact, and
// the coordinator goes on applying mutations, for this document and for
// another. [Run] runs it on both modules; a host with more than one way of
// stopping a call runs it again for each.
//
// The cases about the time limit run on the module compiled with a tight
// time limit, the others on one compiled with [Limits], whose time limit
// they never reach. The few outcomes that depend on the guest's language
// are the module's row in fullModules.
func Failures(t *testing.T, h Host, name string) {
	m := fullModuleOf(t, name)
	mod, timed := h.compile(t, m.name, Limits), h.compile(t, m.name, timeLimits)
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
		{"sql syntax", "sql", sql("INSERT INTO nowhere VALUES (1)"), "no such table: nowhere", nil},
		{"parameter count", "sql", jsonArgs(map[string]any{"sql": "INSERT INTO vals(id) VALUES (?)"}), "takes 1 parameters, got 0", nil},
		{"panic", "panic", nil, `panic in mutation "panic": boom`, mutatorhost.ErrPanic},
		{"trap", "trap", nil, "mutator trapped: wasm error: " + h.Trap, mutatorhost.ErrTrap},
		{"exit", "exit", nil, "mutator trapped: exited with code 3", mutatorhost.ErrTrap},
		{"infinite loop", "loop", nil, "mutator exceeded its time limit of 300ms", mutatorhost.ErrTimeLimit},
		{"runaway query", "sqlloop", nil, "mutator exceeded its time limit of 300ms", mutatorhost.ErrTimeLimit},
		{"huge allocation", "alloc", jsonArgs(map[string]any{"n": 1 << 30}), "mutator exceeded its memory limit of 32 MiB", mutatorhost.ErrMemoryLimit},
		{"growing allocation", "alloc", jsonArgs(map[string]any{"n": 40 << 20}), "mutator exceeded its memory limit of 32 MiB", mutatorhost.ErrMemoryLimit},
		{"result too large", "many", jsonArgs(map[string]any{"n": 1200, "size": 1000}), "query result exceeds the limit of 1048576 bytes", nil},
		{"args too large", "add", bytes.Repeat([]byte(" "), 2<<20), "mutation args exceed the size limit: 2097152 bytes, the limit is 1048576", mutatorhost.ErrArgsTooLarge},

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
	overridden := 0
	for i, tc := range cases {
		if o, ok := m.failures[tc.name]; ok {
			o = o.on(h)
			cases[i].want, cases[i].is = o.want, o.is
			overridden++
		}
	}
	if overridden != len(m.failures) {
		t.Fatalf("%s: fullModules names %d failure cases, %d of them are cases", m.name, len(m.failures), overridden)
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
			case !timeLimit && elapsed > Limits.Timeout/2:
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
	conn := OpenConn(t)
	mut, timedMut := mod.Mutator(nil), timed.Mutator(nil)
	for _, m := range []Mutator{mut, timedMut} {
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

	// The coordinator still serves this document, and another.
	d.mustApply("add", jsonArgs(map[string]any{"id": "b", "title": "second"}))
	d.check("a", "b")
	other := openDoc(t, mod.Mutator(nil))
	other.mustApply("add", jsonArgs(map[string]any{"id": "z", "title": "other"}))
	other.check("z")
}

func testMutateOutsideTransaction(t *testing.T, h Host, m fullModule) {
	mod := h.compile(t, m.name, Limits)
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = mod.Mutator(nil).Mutate(context.Background(), conn, "add", []byte(`{}`))
	if !errors.Is(err, mutatorhost.ErrNoTransaction) {
		t.Fatalf("got %v, want ErrNoTransaction", err)
	}
}

// A client has no deadline of its own: the mutator's time limit still
// stops a loop (in the browser, though nothing else runs on the thread),
// and so does the context's deadline.
func testClientTimeLimit(t *testing.T, h Host, m fullModule) {
	mod := h.compile(t, m.name, timeLimits)
	conn := OpenConn(t)
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
	// A canceled context stops it too, and says so: with a generous time
	// limit, so that only the context can stop it.
	gen := h.compile(t, m.name, Limits).Mutator(nil)
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

// A closed Mutator refuses every call, and closing it again does no harm,
// whether it had started an instance or not; the module's other Mutators
// go on.
func testClosed(t *testing.T, h Host, m fullModule) {
	ctx := context.Background()
	mod := h.compile(t, m.name, Limits)
	conn := OpenConn(t)
	used, unused := mod.Mutator(nil), mod.Mutator(nil)
	if err := used.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if err := used.Mutate(ctx, conn, "add", []byte(`{"id": "a", "title": "x"}`)); err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mutator{used, unused} {
		for range 2 {
			if err := m.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		if err := m.Mutate(ctx, conn, "add", []byte(`{"id": "b", "title": "x"}`)); !errors.Is(err, mutatorhost.ErrClosed) {
			t.Errorf("Mutate after Close: %v, want ErrClosed", err)
		}
		if err := m.Migrate(ctx, conn); !errors.Is(err, mutatorhost.ErrClosed) {
			t.Errorf("Migrate after Close: %v, want ErrClosed", err)
		}
	}
	if err := mod.Mutator(nil).Mutate(ctx, conn, "add", []byte(`{"id": "c", "title": "x"}`)); err != nil {
		t.Fatalf("another Mutator of the module: %v", err)
	}
}
