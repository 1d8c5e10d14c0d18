package mutatorhost

import (
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/abi"
)

func request(stmts ...abi.Statement) []byte { return abi.AppendRequest(nil, stmts) }

func stmt(sql string, rows bool, params ...abi.Value) abi.Statement {
	s := abi.Statement{SQL: []byte(sql), Params: params}
	if rows {
		s.Flags = abi.FlagRows
	}
	return s
}

func TestExec(t *testing.T) {
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(`BEGIN; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	var e Exec
	if _, _, err := e.Run(request(stmt("SELECT 1", true)), 1024); err == nil || !strings.Contains(err.Error(), "outside a mutation") {
		t.Fatalf("Run before Begin: %v", err)
	}
	if err := e.Begin(conn, 1<<20); err != nil {
		t.Fatal(err)
	}
	defer e.End()

	// A batch stops at its first failure; results come one per statement run.
	out, n, err := e.Run(request(
		stmt("INSERT INTO t(v) VALUES (?)", false, abi.Value{Type: abi.TypeText, Bytes: []byte("a")}),
		stmt("SELECT id, v FROM t", true),
		stmt("COMMIT", false),
		stmt("SELECT 1", true),
	), 1024)
	if err != nil || int(n) != len(out) {
		t.Fatalf("Run: %d bytes, %v", n, err)
	}
	res, err := abi.DecodeResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Changes != 1 || res[0].LastInsertRowID != 1 || res[1].Rows != 1 ||
		string(res[1].Values[1].Bytes) != "a" || res[2].Code != abi.CodeAuth || !strings.Contains(res[2].Message, "COMMIT is not allowed") {
		t.Fatalf("results %+v", res)
	}

	// A response larger than the guest's buffer is kept for Result.
	out, n, err = e.Run(request(stmt("SELECT v FROM t", true)), 10)
	if err != nil || out != nil || n <= 10 {
		t.Fatalf("Run into a small buffer: %v %d %v", out, n, err)
	}
	if out, m, _ := e.Result(5); out != nil || m != n {
		t.Fatalf("Result into a small buffer: %v %d", out, m)
	}
	if out, m, _ := e.Result(n); len(out) != int(n) || m != n {
		t.Fatalf("Result: %d bytes, %d", len(out), m)
	}
	if out, m, _ := e.Result(n); out != nil || m != 0 {
		t.Fatalf("Result again: %v %d", out, m)
	}

	// A malformed request is the guest's bug.
	if _, _, err := e.Run([]byte{1, 0}, 1024); err == nil || !strings.Contains(err.Error(), "sqlsync.run:") {
		t.Fatalf("malformed request: %v", err)
	}
}

func TestDecodeRecord(t *testing.T) {
	for _, tc := range []struct {
		in     string
		status abi.Status
		msg    string
	}{
		{"\x01no", abi.StatusError, "no"},
		{"\x02", abi.StatusUnknown, "unknown mutation"},
		{"\x09odd", abi.StatusError, "odd"},
		{"\x04boom", abi.StatusPanic, "boom"},
	} {
		g := DecodeRecord([]byte(tc.in))
		if g.Status != tc.status || g.Message != tc.msg {
			t.Errorf("%q: %+v", tc.in, g)
		}
	}
	if !(&GuestError{Status: abi.StatusBadArgs}).Is(ErrBadArgs) {
		t.Error("a bad-args record is not ErrBadArgs")
	}
}
