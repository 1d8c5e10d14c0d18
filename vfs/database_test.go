package vfs_test

import (
	"bytes"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

func open(t *testing.T, d *vfs.Database) *sqlite3.Conn {
	t.Helper()
	conn, err := d.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func newDB(t *testing.T, mode vfs.Mode) *vfs.Database {
	t.Helper()
	d := vfs.NewDatabase(memstore.New(), mode)
	t.Cleanup(func() { d.Close() })
	return d
}

func exec(t *testing.T, conn *sqlite3.Conn, sql string) {
	t.Helper()
	if err := conn.Exec(sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, conn *sqlite3.Conn, sql string) int64 {
	t.Helper()
	stmt, _, err := conn.Prepare(sql)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if !stmt.Step() {
		t.Fatalf("%s: no row: %v", sql, stmt.Err())
	}
	return stmt.ColumnInt64(0)
}

func TestCoordinatorOneLSNPerTransaction(t *testing.T) {
	d := newDB(t, vfs.CoordinatorMode)
	var commits []vfs.Commit
	d.OnCommit(func(c vfs.Commit) { commits = append(commits, c) })
	conn := open(t, d)
	exec(t, conn, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	exec(t, conn, `INSERT INTO t(v) VALUES ('a')`)
	exec(t, conn, `BEGIN; INSERT INTO t(v) VALUES ('b'); INSERT INTO t(v) VALUES ('c'); COMMIT`)
	if got, want := d.Store().LSN(), uint64(3); got != want {
		t.Fatalf("LSN %d after 3 transactions, want %d", got, want)
	}
	if got := len(commits[2].Pages); got != 1 {
		t.Fatalf("an insert into a one-page table changed %d pages, want 1", got)
	}
	if got := d.Store().ChangedSince(2); len(got) != 1 {
		t.Fatalf("ChangedSince(2) = %v, want the one page of the last commit", got)
	}
	if n := count(t, conn, `SELECT count(*) FROM t`); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
	if n := count(t, conn, `PRAGMA foreign_keys`); n != 1 {
		t.Logf("foreign keys default %d", n)
	}
}

// TestSecondConnectionSeesCommits guards against the stale page cache trap:
// batch-atomic commits do not bump the change counter by themselves.
func TestSecondConnectionSeesCommits(t *testing.T) {
	for _, mode := range []vfs.Mode{vfs.ClientMode, vfs.CoordinatorMode} {
		d := newDB(t, mode)
		w, r := open(t, d), open(t, d)
		exec(t, w, `CREATE TABLE t(v)`)
		for i := int64(1); i <= 5; i++ {
			exec(t, w, `INSERT INTO t VALUES (1)`)
			if n := count(t, r, `SELECT count(*) FROM t`); n != i {
				t.Fatalf("mode %d: reader sees %d rows, want %d", mode, n, i)
			}
		}
	}
}

func TestClientLocalLayerAndRebase(t *testing.T) {
	coord := newDB(t, vfs.CoordinatorMode)
	var commits []vfs.Commit
	coord.OnCommit(func(c vfs.Commit) { commits = append(commits, c) })
	cc := open(t, coord)
	exec(t, cc, `CREATE TABLE t(v)`)

	client := newDB(t, vfs.ClientMode)
	lc := open(t, client)
	// Local write before any snapshot: lands in the local layer only.
	exec(t, lc, `CREATE TABLE t(v); INSERT INTO t VALUES ('local')`)
	if client.Store().LSN() != 0 || client.Store().PageCount() != 0 {
		t.Fatal("a local write reached the snapshot")
	}
	if !client.HasLocal() {
		t.Fatal("no local layer after a local write")
	}
	// Rebase onto the coordinator's state.
	exec(t, cc, `INSERT INTO t VALUES ('remote')`)
	diff := vfs.Commit{LSN: coord.Store().LSN(), PageCount: coord.Store().PageCount()}
	for _, no := range coord.Store().ChangedSince(0) {
		buf := make([]byte, vfs.PageSize)
		if err := coord.Store().ReadPage(no, buf); err != nil {
			t.Fatal(err)
		}
		diff.Pages = append(diff.Pages, vfs.Page{No: no, Data: buf})
	}
	if err := client.ApplyDiff(diff); err != nil {
		t.Fatal(err)
	}
	if n := count(t, lc, `SELECT count(*) FROM t WHERE v = 'remote'`); n != 1 {
		t.Fatalf("after rebase the client sees %d remote rows, want 1", n)
	}
	if n := count(t, lc, `SELECT count(*) FROM t WHERE v = 'local'`); n != 0 {
		t.Fatalf("after rebase the client still sees %d local rows", n)
	}
	a, _ := client.Bytes()
	b, _ := coord.Bytes()
	if !bytes.Equal(a, b) {
		t.Fatal("client snapshot differs from the coordinator")
	}
	if got := count(t, lc, `PRAGMA integrity_check`); got != 0 {
		t.Fatal("integrity")
	}
}
