package hosttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// Every feature of the ABI works, and migrations ran: values cross intact
// both ways, batches, large results, nested and raw calls.
func testFeatures(t *testing.T, h Host, m fullModule) {
	mod := h.compile(t, m.name, Limits)
	d := openDoc(t, mod.Mutator(nil))
	if got := d.query(`PRAGMA user_version`); got[0][0] != int64(2) {
		t.Fatalf("user_version %v, want 2 (one SQL step, one in code)", got[0][0])
	}
	cases := []struct {
		name string
		args []byte
	}{
		{"types", jsonArgs(map[string]any{"id": 10})},
		{"batch", jsonArgs(map[string]any{"prefix": "b", "n": 50})},
		{"many", jsonArgs(map[string]any{"n": 300, "size": 1000})}, // ~300 KiB: more than the guest's 64 KiB buffer, so sqlsync.result
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
	if len(got) == 0 {
		t.Fatal("vals row 10 is missing")
	}
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

// An instance survives from call to call, until a failure discards it.
func testInstanceLifecycle(t *testing.T, h Host, m fullModule) {
	mod := h.compile(t, m.name, Limits)
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

// Guest output reaches the log at debug level, bounded per call.
func testOutputLogged(t *testing.T, h Host, m fullModule) {
	limits := Limits
	limits.MaxLogBytes = 200
	mod := h.compile(t, m.name, limits)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conn := OpenConn(t)
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

// sandboxFacts is what the WASI sandbox gives the first mutation of the
// Sandbox test mutator on a fresh instance: the same on every host, since
// wazero's defaults and the browser's shim both follow package
// mutatorhost.
var sandboxFacts = map[string]string{
	"wall":     "2000-01-01T00:00:00Z", // the stopped wall clock
	"elapsed":  "1ms",                  // one monotonic reading since init, 1 ms each
	"mathrand": "a1aa64687af35bcf",     // seeded by the runtime from random_get, after what the packages' init drew from it
	"args":     "0",
	"env":      "0",
}

// The WASI sandbox gives sandboxFacts, on the instance started at load
// and on the next.
func testSandbox(t *testing.T, h Host) {
	mod := h.compile(t, Sandbox, mutatorhost.Limits{})
	for range 2 {
		mut := mod.Mutator(nil)
		checkSandbox(t, mut)
		mut.Close()
	}
}

// checkSandbox runs the sandbox mutator's record mutation on a new
// coordinator document and compares what it recorded with sandboxFacts.
func checkSandbox(t *testing.T, mut engine.Mutator) {
	t.Helper()
	ctx := context.Background()
	c, err := engine.OpenCoordinator(ctx, memstore.New(), mut, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Apply(ctx, []engine.Mutation{{ClientID: "c", Seq: 1, Name: "record"}})
	if err != nil || len(res.Rejected) > 0 {
		t.Fatalf("record: %v %v", err, res.Rejected)
	}
	rows, err := c.Query(`SELECT k, v FROM facts ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows.Values {
		got[r[0].(string)] = r[1].(string)
	}
	for k, want := range sandboxFacts {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
}
