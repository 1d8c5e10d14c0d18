package vfs_test

import (
	"testing"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// diffFrom returns the pages of coord changed after lsn, as a replica
// would receive them.
func diffFrom(t *testing.T, coord *vfs.Database, lsn uint64) vfs.Commit {
	t.Helper()
	s := coord.Store()
	c := vfs.Commit{LSN: s.LSN(), PageCount: s.PageCount()}
	for _, no := range s.ChangedSince(lsn) {
		buf := make([]byte, vfs.PageSize)
		if err := s.ReadPage(no, buf); err != nil {
			t.Fatal(err)
		}
		c.Pages = append(c.Pages, vfs.Page{No: no, Data: buf})
	}
	return c
}

// TestRebaseAfterOwnPageOneWrite guards against a stale page cache after a
// rebase. When a connection's own commit rewrites page 1 (the file grew),
// SQLite stores the change counter it last saw plus one and remembers that
// value; if the next rebase made the VFS present exactly that value, SQLite
// would keep its cache and read the local layer's pages over the new
// snapshot.
func TestRebaseAfterOwnPageOneWrite(t *testing.T) {
	coord := newDB(t, vfs.CoordinatorMode)
	cc := open(t, coord)
	exec(t, cc, `CREATE TABLE t(v TEXT)`)

	client := newDB(t, vfs.ClientMode)
	if err := client.ApplyDiff(diffFrom(t, coord, 0)); err != nil {
		t.Fatal(err)
	}
	lc := open(t, client)
	if n := count(t, lc, `SELECT count(*) FROM t`); n != 0 {
		t.Fatalf("got %d rows, want 0", n)
	}
	// Both sides grow the file by the same number of pages, so page 1
	// differs only in the change counter.
	lsn := coord.Store().LSN()
	exec(t, lc, `INSERT INTO t VALUES ('local' || printf('%.5000c', 'x'))`)
	exec(t, cc, `INSERT INTO t VALUES ('remote' || printf('%.5000c', 'x'))`)
	if err := client.ApplyDiff(diffFrom(t, coord, lsn)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, lc, `SELECT count(*) FROM t WHERE v GLOB 'remote*'`); n != 1 {
		t.Fatalf("after the rebase the replica sees %d remote rows, want 1 (stale page cache)", n)
	}
	if n := count(t, lc, `SELECT count(*) FROM t WHERE v GLOB 'local*'`); n != 0 {
		t.Fatalf("after the rebase the replica sees %d local rows, want 0 (stale page cache)", n)
	}
}
