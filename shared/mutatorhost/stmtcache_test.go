package mutatorhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/abi"
)

// openTx opens a connection in a transaction, as the engine runs a
// mutator, and closes it when t ends: the close must succeed, so every
// statement prepared on it must have been finalized by then.
func openTx(t *testing.T) *sqlite3.Conn {
	t.Helper()
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Errorf("close the connection: %v", err)
		}
	})
	if err := conn.Exec(`BEGIN`); err != nil {
		t.Fatal(err)
	}
	return conn
}

// pair is the same connection state twice: one Exec keeps statements, the
// other does not. Every request goes to both, and their responses must be
// the same bytes.
type pair struct {
	t                  *testing.T
	kept, plain        *Exec
	keptConn, plainCon *sqlite3.Conn
}

func newPair(t *testing.T) *pair {
	p := &pair{t: t, kept: new(Exec), plain: new(Exec), keptConn: openTx(t), plainCon: openTx(t)}
	if err := p.kept.Keep(p.keptConn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.kept.Forget(p.keptConn); err != nil {
			t.Errorf("Forget: %v", err)
		}
	})
	return p
}

// run sends stmts to both Execs and returns the decoded response, after
// checking that both responses are the same.
func (p *pair) run(stmts ...abi.Statement) []abi.Result {
	p.t.Helper()
	req := request(stmts...)
	var outs [2][]byte
	for i, x := range []struct {
		e    *Exec
		conn *sqlite3.Conn
	}{{p.kept, p.keptConn}, {p.plain, p.plainCon}} {
		if err := x.e.Begin(x.conn, 1<<20); err != nil {
			p.t.Fatal(err)
		}
		out, n, err := x.e.Run(req, 1<<20)
		x.e.End()
		if err != nil || int(n) != len(out) {
			p.t.Fatalf("Run: %d bytes, %v", n, err)
		}
		outs[i] = bytes.Clone(out)
	}
	res, err := abi.DecodeResponse(outs[0])
	if err != nil {
		p.t.Fatal(err)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		plain, _ := abi.DecodeResponse(outs[1])
		p.t.Fatalf("kept and plain differ:\nkept  %+v\nplain %+v", res, plain)
	}
	return res
}

// exec runs sql on both connections directly, as a rebase or the engine's
// own DDL would change the schema under the Exec.
func (p *pair) exec(sql string) {
	p.t.Helper()
	for _, c := range []*sqlite3.Conn{p.keptConn, p.plainCon} {
		if err := c.Exec(sql); err != nil {
			p.t.Fatal(err)
		}
	}
}

func text(s string) abi.Value   { return abi.Value{Type: abi.TypeText, Bytes: []byte(s)} }
func integer(n int64) abi.Value { return abi.Value{Type: abi.TypeInteger, Int: n} }

// stmtsOn counts the statements not yet finalized on conn.
func stmtsOn(conn *sqlite3.Conn) int {
	n := 0
	for range conn.Stmts() {
		n++
	}
	return n
}

// A kept statement gives what preparing it afresh gives, byte for byte:
// results, errors, refusals, batches, several statements in one text,
// values of every type, the wrong number of parameters. Only texts of one
// statement that the guard lets through are kept.
func TestStmtCacheSameResults(t *testing.T) {
	p := newPair(t)
	p.run(stmt(`CREATE TABLE t(id INTEGER PRIMARY KEY, v, w UNIQUE)`, false))
	insert := `INSERT INTO t(v, w) VALUES (?, ?)`
	for round := range 3 {
		res := p.run(
			stmt(insert, false, text(fmt.Sprint("a", round)), integer(int64(round))),
			stmt(insert, false, abi.Value{Type: abi.TypeReal, Real: 1.5}, abi.Value{Type: abi.TypeBlob, Bytes: []byte{0, byte(round)}}),
			stmt(insert+" -- a comment;", false, abi.Value{Type: abi.TypeNull}, text(fmt.Sprint("w", round))),
			stmt(`SELECT id, v, typeof(v), w FROM t ORDER BY id`, true),
			stmt(`UPDATE t SET v = v || 'x' WHERE typeof(v) = 'text'; UPDATE t SET w = w WHERE 0`, false),
			stmt(`PRAGMA user_version = `+fmt.Sprint(round), false),
			stmt(`PRAGMA user_version`, true),
			stmt(`-- nothing but a comment`, false),
			stmt(`SELECT ?, ?`, true, integer(1)), // the wrong number of parameters
		)
		if len(res) != 9 || res[3].Rows != 3*(round+1) || res[8].Code != abi.CodeRange {
			t.Fatalf("round %d: %+v", round, res)
		}
		// A constraint error, then the statement again, fine.
		res = p.run(stmt(insert, false, text("dup"), integer(0)))
		if res[0].Code&0xff != 19 {
			t.Fatalf("round %d: duplicate: %+v", round, res)
		}
		// Refusals: by keyword, by name, in a second statement, and
		// a statement with parameters that is not alone.
		for _, s := range []abi.Statement{
			stmt(`COMMIT`, false),
			stmt(`SELECT * FROM __sqlsync_clients`, true),
			stmt(`SELECT 1; ROLLBACK`, false),
			stmt(`SELECT ?; SELECT 2`, false, integer(1)),
		} {
			res := p.run(s)
			if len(res) != 1 || res[0].Code == 0 {
				t.Fatalf("round %d: %s ran: %+v", round, s.SQL, res)
			}
		}
	}
	// Kept: the CREATE TABLE, the insert (two texts), the select, the
	// pragmas (three settings, one read), SELECT ?, ? (which the wrong
	// count dropped, then kept again). Not kept: the comment, two
	// statements in a text, refusals.
	if got, want := p.kept.Kept(), 9; got != want {
		t.Errorf("kept %d statements, want %d: %v", got, want, keptSQL(p.kept))
	}
	if got, want := stmtsOn(p.keptConn), p.kept.Kept(); got != want {
		t.Errorf("%d statements on the connection, %d kept", got, want)
	}
	if n := stmtsOn(p.plainCon); n != 0 {
		t.Errorf("the plain Exec left %d statements", n)
	}
}

// keptSQL lists the texts e keeps, most recently used first.
func keptSQL(e *Exec) []string {
	if e.cache.lru == nil {
		return nil
	}
	return e.cache.lru.Keys()
}

// The cache is bounded: the least recently used statement is finalized.
func TestStmtCacheBounded(t *testing.T) {
	p := newPair(t)
	hot := `SELECT 'hot'`
	for i := range stmtCacheSize + 20 {
		p.run(stmt(fmt.Sprintf(`SELECT %d`, i), true), stmt(hot, true))
	}
	if got := p.kept.Kept(); got != stmtCacheSize {
		t.Errorf("kept %d statements, want %d", got, stmtCacheSize)
	}
	if got := stmtsOn(p.keptConn); got != stmtCacheSize {
		t.Errorf("%d statements on the connection, want %d: the evicted ones are not finalized", got, stmtCacheSize)
	}
	kept := keptSQL(p.kept)
	if !slices.Contains(kept, hot) || slices.Contains(kept, `SELECT 0`) || !slices.Contains(kept, fmt.Sprintf(`SELECT %d`, stmtCacheSize+19)) {
		t.Errorf("not least recently used first: %v", kept)
	}
	// A long text is not kept.
	long := `SELECT '` + strings.Repeat("x", stmtCacheMaxSQL) + `'`
	p.run(stmt(long, true))
	if slices.Contains(keptSQL(p.kept), long) {
		t.Error("a text longer than stmtCacheMaxSQL was kept")
	}
}

// A schema change between uses, by the guest's own DDL or under it, gives
// the new schema's columns and results, or the error preparing the text
// afresh gives; never the old columns.
func TestStmtCacheSchemaChange(t *testing.T) {
	p := newPair(t)
	sel := stmt(`SELECT * FROM t ORDER BY 1`, true)
	ins := `INSERT INTO t(a, b) VALUES (?, ?)`
	info := stmt(`PRAGMA table_info(t)`, true)
	p.run(stmt(`CREATE TABLE t(a, b)`, false))
	p.run(stmt(ins, false, integer(1), integer(2)), sel, info)

	// ALTER TABLE by the guest, between two requests.
	p.run(stmt(`ALTER TABLE t ADD COLUMN c DEFAULT 3`, false))
	res := p.run(stmt(ins, false, integer(4), integer(5)), sel, info)
	if got := strings.Join(res[1].Columns, ","); got != "a,b,c" || res[1].Rows != 2 || len(res[1].Values) != 6 {
		t.Fatalf("after ALTER TABLE: %+v", res[1])
	}
	if res[2].Rows != 3 {
		t.Fatalf("table_info after ALTER TABLE: %+v", res[2])
	}

	// DROP and CREATE under the Exec, with other columns in another
	// order: the insert must fill the new columns by name.
	p.exec(`DROP TABLE t; CREATE TABLE t(x DEFAULT 'x', b, a)`)
	res = p.run(stmt(ins, false, integer(6), integer(7)), sel, info)
	if got := strings.Join(res[1].Columns, ","); got != "x,b,a" || res[1].Rows != 1 {
		t.Fatalf("after DROP and CREATE: %+v", res[1])
	}
	if res[2].Rows != 3 || string(res[2].Values[1].Bytes) != "x" {
		t.Fatalf("table_info after DROP and CREATE: %+v", res[2])
	}
	if v := res[1].Values; string(v[0].Bytes) != "x" || v[1].Int != 7 || v[2].Int != 6 {
		t.Fatalf("after DROP and CREATE: values %+v", v)
	}

	// DROP alone: SQLite's error, the same as preparing afresh; and
	// again; then the table is back and the statements work.
	p.exec(`DROP TABLE t`)
	for range 2 {
		res = p.run(sel)
		if res[0].Code != 1 || !strings.Contains(res[0].Message, "no such table: t") {
			t.Fatalf("after DROP: %+v", res)
		}
		res = p.run(stmt(ins, false, integer(1), integer(2)))
		if res[0].Code != 1 || !strings.Contains(res[0].Message, "no such table: t") {
			t.Fatalf("insert after DROP: %+v", res)
		}
	}
	p.exec(`CREATE TABLE t(b, a)`)
	res = p.run(stmt(ins, false, integer(8), integer(9)), sel)
	if got := strings.Join(res[1].Columns, ","); got != "b,a" || res[1].Values[0].Int != 9 {
		t.Fatalf("after CREATE again: %+v", res[1])
	}
}

// A refused text is never kept: it is refused at every use.
func TestStmtCacheRefusedStaysRefused(t *testing.T) {
	p := newPair(t)
	refused := []abi.Statement{
		stmt(`SAVEPOINT x`, false),
		stmt(`PRAGMA journal_mode = delete`, false),
		stmt(`CREATE TEMP TABLE x(a)`, false),
		stmt(`SELECT * FROM "__sqlsync_meta"`, true),
		stmt(`ATTACH ':memory:' AS other`, false),
	}
	for range 3 {
		for _, s := range refused {
			res := p.run(s)
			if res[0].Code != abi.CodeAuth {
				t.Fatalf("%s: %+v", s.SQL, res)
			}
		}
	}
	if n := p.kept.Kept(); n != 0 {
		t.Errorf("kept %v", keptSQL(p.kept))
	}
}

// A connection cannot close while statements are kept on it; after Forget
// it can. Close finalizes them too.
func TestStmtCacheForgetBeforeClose(t *testing.T) {
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	var e Exec
	if err := e.Keep(conn); err != nil {
		t.Fatal(err)
	}
	runOn(t, &e, conn, stmt(`SELECT 1`, true))
	if e.Kept() != 1 {
		t.Fatalf("kept %d", e.Kept())
	}
	if err := conn.Close(); !errors.Is(err, sqlite3.BUSY) {
		t.Fatalf("close with a kept statement: %v, want BUSY", err)
	}
	if err := e.Forget(conn); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("close after Forget: %v", err)
	}

	// Forget stops the keeping; Close finalizes what is kept.
	conn = openTx(t)
	e.Keep(conn)
	e.Forget(conn)
	runOn(t, &e, conn, stmt(`SELECT 1`, true))
	if e.Kept() != 0 {
		t.Fatal("kept a statement after Forget")
	}
	e.Keep(conn)
	runOn(t, &e, conn, stmt(`SELECT 1`, true))
	if err := e.Close(); err != nil || e.Kept() != 0 || stmtsOn(conn) != 0 {
		t.Fatalf("Close: %v, %d kept, %d on the connection", err, e.Kept(), stmtsOn(conn))
	}
}

// A call on another connection finalizes the statements kept on the
// previous one; a connection not named by Keep has none kept.
func TestStmtCacheOtherConn(t *testing.T) {
	a, b := openTx(t), openTx(t)
	var e Exec
	e.Keep(a)
	runOn(t, &e, a, stmt(`SELECT 1`, true))
	if e.Kept() != 1 || stmtsOn(a) != 1 {
		t.Fatalf("kept %d", e.Kept())
	}
	runOn(t, &e, b, stmt(`SELECT 1`, true))
	if e.Kept() != 0 || stmtsOn(a) != 0 || stmtsOn(b) != 0 {
		t.Fatalf("after a call on another connection: %d kept, %d on a, %d on b", e.Kept(), stmtsOn(a), stmtsOn(b))
	}
	// Keep moves to b: what a kept is finalized.
	runOn(t, &e, a, stmt(`SELECT 1`, true))
	if e.Kept() != 1 {
		t.Fatalf("kept %d", e.Kept())
	}
	e.Keep(b)
	if e.Kept() != 0 || stmtsOn(a) != 0 {
		t.Fatalf("after Keep(b): %d kept, %d on a", e.Kept(), stmtsOn(a))
	}
	runOn(t, &e, b, stmt(`SELECT 1`, true))
	if e.Kept() != 1 || stmtsOn(b) != 1 {
		t.Fatalf("on b: %d kept", e.Kept())
	}
	if err := e.Forget(b); err != nil || stmtsOn(b) != 0 {
		t.Fatalf("Forget: %v, %d on b", err, stmtsOn(b))
	}
}

// A kept statement interrupted before it runs fails as preparing it again
// would: interrupted.
func TestStmtCacheInterrupted(t *testing.T) {
	p := newPair(t)
	sel := stmt(`SELECT 1`, true)
	p.run(sel)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.keptConn.SetInterrupt(ctx)
	p.plainCon.SetInterrupt(ctx)
	res := p.run(sel)
	if res[0].Code != int32(sqlite3.INTERRUPT) {
		t.Fatalf("interrupted: %+v", res)
	}
	p.keptConn.SetInterrupt(context.Background())
	p.plainCon.SetInterrupt(context.Background())
	if res := p.run(sel); res[0].Code != 0 {
		t.Fatalf("after the interrupt: %+v", res)
	}
}

// runOn runs one request on conn through e and checks its first result
// succeeded.
func runOn(t *testing.T, e *Exec, conn *sqlite3.Conn, stmts ...abi.Statement) {
	t.Helper()
	if err := e.Begin(conn, 1<<20); err != nil {
		t.Fatal(err)
	}
	defer e.End()
	out, _, err := e.Run(request(stmts...), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	res, err := abi.DecodeResponse(out)
	if err != nil || res[0].Code != 0 {
		t.Fatalf("%+v %v", res, err)
	}
}
