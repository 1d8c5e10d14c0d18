package hosttest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// The coordinator has the host keep the guest's statements prepared
// (engine.StatementCache): kept statements see the schema as it is when
// they run (an ALTER TABLE, a DROP and CREATE with other columns, a DROP:
// SQLite's error), a refused text stays refused however often it comes,
// and the coordinator's connection closes at the end (nothing is left
// prepared on it).
func testStatementCache(t *testing.T, h Host, m fullModule) {
	ctx := context.Background()
	mod := h.compile(t, m.name, Limits)
	mut := mod.Mutator(nil)
	defer mut.Close()
	if _, ok := mut.(engine.StatementCache); !ok {
		t.Fatalf("%T is not an engine.StatementCache", mut)
	}
	coord, err := engine.OpenCoordinator(ctx, memstore.New(), mut, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := &doc{t: t, coord: coord}
	sql := func(q string, args ...any) error {
		t.Helper()
		return d.apply("sql", jsonArgs(map[string]any{"sql": q, "args": args}))
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	rows := func(want string) {
		t.Helper()
		var got []string
		for _, r := range d.query(`SELECT a, b, c FROM sc ORDER BY a`) {
			got = append(got, strings.TrimSpace(fmt.Sprintln(r...)))
		}
		if g := strings.Join(got, ","); g != want {
			t.Fatalf("rows %s, want %s", g, want)
		}
	}
	ins := `INSERT INTO sc(a, b) VALUES (?, ?)`
	must(sql(`CREATE TABLE sc(a, b)`))
	must(sql(ins, 1, 2))
	must(sql(ins, 3, 4))
	must(d.apply("query", jsonArgs(map[string]any{"sql": "SELECT * FROM sc", "want": 2})))

	must(sql(`ALTER TABLE sc ADD COLUMN c DEFAULT 'c'`))
	must(sql(ins, 5, 6))
	must(d.apply("query", jsonArgs(map[string]any{"sql": "SELECT * FROM sc", "want": 3})))
	rows("1 2 c,3 4 c,5 6 c")

	must(sql(`DROP TABLE sc`))
	must(sql(`CREATE TABLE sc(c DEFAULT 'new', b, a)`))
	must(sql(ins, 7, 8))
	rows("7 8 new")

	must(sql(`DROP TABLE sc`))
	for range 2 {
		if err := sql(ins, 9, 10); err == nil || !strings.Contains(err.Error(), "no such table: sc") {
			t.Fatalf("insert into a dropped table: %v", err)
		}
	}
	for range 3 {
		if err := sql(`SAVEPOINT x`); err == nil || !strings.Contains(err.Error(), "SAVEPOINT is not allowed") {
			t.Fatalf("SAVEPOINT: %v, want refused", err)
		}
	}
	if err := coord.Close(); err != nil {
		t.Fatalf("close the coordinator: %v", err)
	}
}

// A replica opts the host in too (engine.WatchedStatementCache), and its
// live queries still learn what each mutation wrote: a kept statement is
// credited with the tables its preparation reported, a trigger added since
// is seen when SQLite prepares the kept statement again, and the replica
// closes cleanly at the end.
func testClientStatementCache(t *testing.T, h Host, m fullModule) {
	ctx := context.Background()
	mod := h.compile(t, m.name, Limits)
	mut := mod.Mutator(nil)
	defer mut.Close()
	if _, ok := mut.(engine.WatchedStatementCache); !ok {
		t.Fatalf("%T is not an engine.WatchedStatementCache", mut)
	}
	store, log := memstore.New(), pendinglog.NewMemory("c")
	var last engine.Change
	var c *engine.Client
	open := func() {
		t.Helper()
		var err error
		if c, err = engine.OpenClient(ctx, store, log, mut); err != nil {
			t.Fatal(err)
		}
		c.OnChange(func(ch engine.Change) { last = ch })
	}
	open()
	sql := func(q string, args ...any) engine.Change {
		t.Helper()
		last = engine.Change{}
		if _, err := c.Mutate(ctx, "sql", jsonArgs(map[string]any{"sql": q, "args": args})); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return last
	}
	wrote := func(what string, ch engine.Change, want ...string) {
		t.Helper()
		if ch.All {
			t.Fatalf("%s: reported as changing everything, want %v", what, want)
		}
		for _, w := range want {
			if !ch.Tables[w] {
				t.Fatalf("%s: wrote %v, want %v among them", what, ch.Tables, want)
			}
		}
	}
	sql(`CREATE TABLE ca(x)`)
	sql(`CREATE TABLE cb(y)`)
	ins := `INSERT INTO ca VALUES (?)`
	wrote("first insert, prepared", sql(ins, 1), "ca")
	wrote("second insert, kept", sql(ins, 2), "ca")
	sql(`CREATE TRIGGER cat AFTER INSERT ON ca BEGIN INSERT INTO cb VALUES (new.x); END`)
	wrote("insert kept across the new trigger", sql(ins, 3), "ca", "cb")
	wrote("insert kept after it", sql(ins, 4), "ca", "cb")
	rows, err := c.Query(`SELECT count(*) FROM cb`)
	if err != nil || fmt.Sprint(rows.Values) != "[[2]]" {
		t.Fatalf("the trigger's rows: %+v %v", rows, err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("the replica does not close cleanly: %v", err)
	}
	// Reopened, the replica replays its pending mutations (nothing is
	// tracked then) and keeps their statements: a later mutation through
	// one still reports what it writes.
	open()
	defer c.Close()
	wrote("insert kept from the replay", sql(ins, 5), "ca", "cb")
}
