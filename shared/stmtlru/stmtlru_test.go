package stmtlru_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/sqlsync-go/sqlsync/shared/stmtlru"
)

func prepare(t *testing.T, conn *sqlite3.Conn, sql string) *sqlite3.Stmt {
	t.Helper()
	stmt, _, err := conn.Prepare(sql)
	if err != nil {
		t.Fatal(err)
	}
	return stmt
}

// TestLRU: the least recently used statement goes first and is finalized;
// Get and GetBytes mark use; Drop and Clear finalize, so the connection
// closes.
func TestLRU(t *testing.T) {
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	c := stmtlru.New[int](3)
	for i := range 3 {
		sql := fmt.Sprintf("SELECT %d", i)
		c.Put(sql, prepare(t, conn, sql), i)
	}
	if e := c.Get("SELECT 0"); e == nil || e.Val != 0 || e.SQL != "SELECT 0" {
		t.Fatalf("Get: %+v", e)
	}
	if e := c.GetBytes([]byte("SELECT 1")); e == nil || e.Val != 1 {
		t.Fatalf("GetBytes: %+v", e)
	}
	c.Put("SELECT 3", prepare(t, conn, "SELECT 3"), 3) // SELECT 2 is the least recently used
	if got, want := c.Keys(), []string{"SELECT 3", "SELECT 1", "SELECT 0"}; !slices.Equal(got, want) {
		t.Fatalf("kept %q, want %q", got, want)
	}
	if c.Get("SELECT 2") != nil {
		t.Fatal("an evicted statement is still kept")
	}
	e := c.Get("SELECT 3")
	if !e.Stmt.Step() || e.Stmt.ColumnInt(0) != 3 {
		t.Fatal("a kept statement does not run")
	}
	e.Stmt.Reset()
	if err := c.Drop("SELECT 3"); err != nil || c.Len() != 2 {
		t.Fatalf("Drop: %v, %d kept", err, c.Len())
	}
	if err := conn.Close(); err == nil {
		t.Fatal("the connection closed with statements kept")
	}
	if err := c.Clear(); err != nil || c.Len() != 0 {
		t.Fatalf("Clear: %v, %d kept", err, c.Len())
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("close after Clear: %v", err)
	}
}
