package cli_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/internal/cli"
)

// TestStateDirInUse: while one process (this test's, through an in-process
// replica) has a state directory open, `sqlsync mutate --state` on it, in
// another process, fails at once with a clear error and changes nothing;
// once the first closes it, the same command works.
func TestStateDirInUse(t *testing.T) {
	srv := startServe(t, freeAddr(t), t.TempDir())
	state := t.TempDir()
	mutate := func(id string) []string {
		return []string{"mutate", "--url", srv.url(), "--doc", "locks", "--state", state, "add", fmt.Sprintf(`{"id":%q,"title":"t"}`, id)}
	}
	runOK(t, mutate("first")...)

	d := openReplica(t, srv.url(), "locks", state, nil)
	waitSynced(t, d)
	_, errOut, code := run(t, mutate("refused")...)
	if code == cli.ExitOK || !strings.Contains(errOut, "is in use by another process") {
		t.Fatalf("mutate on a state directory in use: exit %d, stderr %q; want a failure saying it is in use", code, errOut)
	}
	t.Logf("refused: %s", strings.TrimSpace(errOut))
	d.Close()

	runOK(t, mutate("after")...)
	if got := queryRowsState(t, srv.url(), "locks", state, `SELECT group_concat(id, ',') AS ids FROM (SELECT id FROM items ORDER BY id)`); got != "[map[ids:after,first]]" {
		t.Fatalf("items: %s, want after and first only", got)
	}
}

// TestServeDataDirInUse: two coordinators on one data directory never
// both write a document: the second cannot open a document the first holds
// and logs why, the client gets no acknowledgement from it (here it gives
// up after --timeout), and the first goes on. (The second serve still
// starts: only the documents are locked, not the data directory itself.)
func TestServeDataDirInUse(t *testing.T) {
	data := t.TempDir()
	a := startServe(t, freeAddr(t), data)
	held := openReplica(t, a.url(), "shared", t.TempDir(), nil)
	waitSynced(t, held)
	b := startServe(t, freeAddr(t), data)
	_, errOut, code := run(t, "mutate", "--url", b.url(), "--doc", "shared", "--timeout", "3s", "add", `{"id":"via-b","title":"t"}`)
	t.Logf("via the second coordinator: exit %d, stderr %q", code, strings.TrimSpace(errOut))
	if code == cli.ExitOK {
		t.Fatalf("a mutation through a second coordinator on the same data directory succeeded")
	}
	if !strings.Contains(b.stderr.String(), "is in use by another process") {
		t.Fatalf("the second coordinator does not say the document is in use:\n%s", b.stderr)
	}
	runOK(t, "mutate", "--url", a.url(), "--doc", "shared", "add", `{"id":"via-a","title":"t"}`)
	if got := queryRows(t, a.url(), "shared", `SELECT id FROM items ORDER BY id`); fmt.Sprint(got) != "[map[id:via-a]]" {
		t.Fatalf("items: %v, want via-a only", got)
	}
}
