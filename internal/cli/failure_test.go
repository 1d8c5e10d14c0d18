package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/internal/cli"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
)

// sqlArgs is the args of the "sql" mutation of the test mutator
// shared/wasmhost/testdata/full, which runs the SQL it is given.
func sqlArgs(sql string) string {
	b, _ := json.Marshal(map[string]string{"sql": sql})
	return string(b)
}

// TestDeferredFKOverCLI is the case over the real binary, with a
// generic mutator that runs the SQL it is given: client A creates a parent
// table and a child table whose foreign key is checked at COMMIT; client B
// inserts an orphan child. B's mutation fails at COMMIT and exits 3 with
// SQLite's message, and every later command on B's state directory works,
// as do other clients' writes.
func TestDeferredFKOverCLI(t *testing.T) {
	module := filepath.Join(t.TempDir(), "full.wasm")
	if err := os.WriteFile(module, wasmtest.Build(t, "../../shared/wasmhost/testdata/full"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, freeAddr(t), t.TempDir(), "--mutator", module)
	stateA, stateB := t.TempDir(), t.TempDir()
	cmd := func(state string, args ...string) []string {
		return append([]string{args[0], "--url", srv.url(), "--doc", "fk", "--state", state}, args[1:]...)
	}
	runOK(t, cmd(stateA, "mutate", "sql", sqlArgs(`CREATE TABLE p(id PRIMARY KEY)`))...)
	runOK(t, cmd(stateA, "mutate", "sql", sqlArgs(`CREATE TABLE c(id INTEGER PRIMARY KEY, pid REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)`))...)

	_, errOut, code := run(t, cmd(stateB, "mutate", "sql", sqlArgs(`INSERT INTO c(pid) VALUES ('ghost')`))...)
	if code != cli.ExitRejected || !strings.Contains(errOut, "FOREIGN KEY constraint failed") {
		t.Fatalf("an orphan child: exit %d, stderr %q; want exit %d with SQLite's message", code, errOut, cli.ExitRejected)
	}

	// B's state directory still works, for queries and mutations alike.
	if got := queryRowsState(t, srv.url(), "fk", stateB, `SELECT count(*) AS n FROM c`); got != "[map[n:0]]" {
		t.Fatalf("children after the rejection: %s, want none", got)
	}
	runOK(t, cmd(stateB, "mutate", "sql", sqlArgs(`INSERT INTO p VALUES ('x')`))...)
	runOK(t, cmd(stateB, "mutate", "sql", sqlArgs(`INSERT INTO c(pid) VALUES ('x')`))...)
	// Other clients keep writing.
	runOK(t, cmd(stateA, "mutate", "sql", sqlArgs(`INSERT INTO p VALUES ('y')`))...)
	if got := queryRowsState(t, srv.url(), "fk", stateB, `SELECT (SELECT count(*) FROM p) AS parents, (SELECT count(*) FROM c) AS children`); got != "[map[children:1 parents:2]]" {
		t.Fatalf("B sees %s, want 2 parents and 1 child", got)
	}
	if got := queryRowsState(t, srv.url(), "fk", stateA, `SELECT count(*) AS n FROM c WHERE pid = 'ghost'`); got != "[map[n:0]]" {
		t.Fatalf("A sees the orphan: %s", got)
	}
}

// queryRowsState runs `sqlsync query` on a state directory and returns its
// rows printed with fmt.
func queryRowsState(t *testing.T, url, docID, state, sql string) string {
	t.Helper()
	out := runOK(t, "query", "--url", url, "--doc", docID, "--state", state, sql)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("query output is not JSON rows: %v\n%s", err, out)
	}
	return fmt.Sprint(rows)
}
