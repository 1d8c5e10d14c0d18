package engine_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// sqlClient opens a replica whose mutations are SQL text.
func sqlClient(t *testing.T) *engine.Client {
	t.Helper()
	c, err := engine.OpenClient(context.Background(), memstore.New(), pendinglog.NewMemory("c"), testmutator.SQL{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close with statements cached: %v", err)
		}
	})
	return c
}

func execSQL(t *testing.T, c *engine.Client, sql string) {
	t.Helper()
	if _, err := c.Mutate(context.Background(), "exec", testmutator.SQLArgs{SQL: sql}.Encode()); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestQueryCacheSchemaChange: a query run again after the schema changed
// sees the new schema, and reports the tables it reads now.
func TestQueryCacheSchemaChange(t *testing.T) {
	c := sqlClient(t)
	execSQL(t, c, `CREATE TABLE a (x); CREATE TABLE b (y); INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)`)
	execSQL(t, c, `CREATE VIEW v AS SELECT x AS z FROM a`)
	const q = `SELECT * FROM v`
	rows, tables, err := c.QueryTables(q)
	if err != nil || !reflect.DeepEqual(rows.Columns, []string{"z"}) || !tables["a"] || tables["b"] {
		t.Fatalf("first run: %+v %v %v", rows, tables, err)
	}
	// The view now reads b, with another column name.
	execSQL(t, c, `DROP VIEW v; CREATE VIEW v AS SELECT y AS w FROM b`)
	for range 2 { // the run that prepares again, and the one after
		rows, tables, err = c.QueryTables(q)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rows.Columns, []string{"w"}) || fmt.Sprint(rows.Values) != "[[2]]" || !tables["b"] {
			t.Fatalf("after the view changed: %+v, tables %v", rows, tables)
		}
	}
	// A table the cached statement reads goes away: SQLite's error, and
	// the query works again once it is back.
	execSQL(t, c, `DROP VIEW v`)
	if _, err := c.Query(q); err == nil {
		t.Fatal("a query of a dropped view ran")
	}
	execSQL(t, c, `CREATE VIEW v AS SELECT x AS z FROM a`)
	if rows, err := c.Query(q); err != nil || fmt.Sprint(rows.Values) != "[[1]]" {
		t.Fatalf("view back: %+v %v", rows, err)
	}
}

// TestQueryCacheRefusesWrites: a write is refused however often it is
// asked, and a read keeps working with other arguments.
func TestQueryCacheRefusesWrites(t *testing.T) {
	c := sqlClient(t)
	execSQL(t, c, `CREATE TABLE a (x)`)
	for range 3 {
		if _, err := c.Query(`INSERT INTO a VALUES (1)`); !errors.Is(err, engine.ErrNotReadOnly) {
			t.Fatalf("insert through Query: %v", err)
		}
		if _, err := c.Query(`BEGIN`); !errors.Is(err, engine.ErrNotReadOnly) {
			t.Fatalf("BEGIN through Query: %v", err)
		}
		if _, err := c.Query(`SELECT 1; SELECT 2`); err == nil {
			t.Fatal("two statements ran as one query")
		}
	}
	for i := range 3 {
		rows, err := c.Query(`SELECT ? + 1`, i)
		if err != nil || fmt.Sprint(rows.Values) != fmt.Sprintf("[[%d]]", i+1) {
			t.Fatalf("SELECT ? + 1 with %d: %+v %v", i, rows, err)
		}
	}
	if _, err := c.Query(`SELECT ? + 1`); err == nil {
		t.Fatal("a query short of an argument ran")
	}
}

// TestQueryCacheBounded: more distinct queries than the cache holds all
// answer right, and the replica still closes (every statement finalized).
func TestQueryCacheBounded(t *testing.T) {
	c := sqlClient(t)
	for round := range 2 {
		for i := range 200 {
			rows, err := c.Query(fmt.Sprintf(`SELECT %d`, i))
			if err != nil || fmt.Sprint(rows.Values) != fmt.Sprintf("[[%d]]", i) {
				t.Fatalf("round %d, query %d: %+v %v", round, i, rows, err)
			}
		}
	}
}

// countingMigrations is the test mutator with its migrations counted.
type countingMigrations struct {
	engine.Mutator
	n *int
}

func (m countingMigrations) Migrate(ctx context.Context, conn *sqlite3.Conn) error {
	*m.n++
	return m.Mutator.Migrate(ctx, conn)
}

// TestRebaseSkipsNoOpMigration: a rebase runs the migration only while it
// may change something: not again on a schema it left untouched, with or
// without mutations to replay, and again once the schema changed.
func TestRebaseSkipsNoOpMigration(t *testing.T) {
	coord := openCoord(t, testmutator.Mutator{}, engine.CoordinatorOptions{})
	n := 0
	r := newReplica(t, "r", countingMigrations{testmutator.Mutator{}, &n}, engine.ClientOptions{})
	other := newReplica(t, "o", testmutator.Mutator{}, engine.ClientOptions{})
	add := func(id string) {
		other.mutate("add", testmutator.Args{ID: id, Title: id}.Encode())
		other.push(coord)
		other.pull(coord)
	}
	add("a")
	r.pull(coord) // the coordinator's schema arrives: the migration runs, finds it current
	if n < 2 {
		t.Fatalf("%d migrations after open and the first rebase, want 2 or more", n)
	}
	before := n
	for _, id := range []string{"b", "c", "d"} {
		add(id)
		r.pull(coord)
	}
	if n != before {
		t.Fatalf("%d migrations on rebases that changed no schema, want none", n-before)
	}
	if got := r.count(`SELECT count(*) FROM items`); got != 4 {
		t.Fatalf("%d items, want 4", got)
	}
	// A pending mutation is replayed on the schema the migration left
	// untouched: no migration either.
	r.mutate("add", testmutator.Args{ID: "mine", Title: "mine"}.Encode())
	add("e")
	r.pull(coord)
	if n != before {
		t.Fatalf("%d migrations on a rebase with one pending on an unchanged schema, want none", n-before)
	}
	if got := r.count(`SELECT count(*) FROM items`); got != 6 {
		t.Fatalf("%d items after the replay, want 6 (5 applied, 1 pending)", got)
	}
	// A schema change by another client makes the next rebase migrate
	// again; a change of data after it does not.
	sqlCoord := openCoord(t, testmutator.SQL{}, engine.CoordinatorOptions{})
	m := 0
	s := newReplica(t, "s", countingMigrations{testmutator.SQL{}, &m}, engine.ClientOptions{})
	w := newReplica(t, "w", testmutator.SQL{}, engine.ClientOptions{})
	for i, step := range []struct {
		sql     string
		migrate bool
	}{
		{`CREATE TABLE t (x)`, true},
		{`INSERT INTO t VALUES (1)`, false},
		{`CREATE INDEX tx ON t (x)`, true},
		{`INSERT INTO t VALUES (2)`, false},
	} {
		w.mutate("exec", testmutator.SQLArgs{SQL: step.sql}.Encode())
		w.push(sqlCoord)
		w.pull(sqlCoord)
		before := m
		s.pull(sqlCoord)
		if ran := m > before; ran != step.migrate {
			t.Fatalf("step %d (%s): migration ran %v, want %v", i, step.sql, ran, step.migrate)
		}
	}
	if got := s.count(`SELECT count(*) FROM t`); got != 2 {
		t.Fatalf("%d rows, want 2", got)
	}
}
