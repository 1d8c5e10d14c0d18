package hosttest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// The coordinator has the host keep the guest's statements prepared
// (engine.StatementCache): kept statements see the schema as it is when
// they run (an ALTER TABLE, a DROP and CREATE with other columns, a DROP:
// SQLite's error), a refused text stays refused however often it comes,
// and the coordinator's connection closes at the end (nothing is left
// prepared on it).
func testStatementCache(t *testing.T, h Host) {
	ctx := context.Background()
	mod := h.compile(t, Full, Limits)
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
