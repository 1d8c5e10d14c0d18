package cli_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/internal/cli"
	"github.com/sqlsync-go/sqlsync/server/servertest"
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

	d := openReplica(t, srv.url(), "locks", client.Options{StateDir: state})
	servertest.WaitSynced(t, d)
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

// TestServeDataDirInUse: one coordinator per data directory. While one
// serve holds D, a second `serve --data D` exits at once, non-zero, saying
// the data directory is in use; the first goes on serving. Once the first
// stops, serve on D works again.
func TestServeDataDirInUse(t *testing.T) {
	data := t.TempDir()
	a := startServe(t, freeAddr(t), data)
	runOK(t, "mutate", "--url", a.url(), "--doc", "shared", "add", `{"id":"via-a","title":"t"}`)

	start := time.Now()
	_, errOut, code := run(t, withMutator([]string{"serve", "--addr", freeAddr(t), "--data", data})...)
	took := time.Since(start)
	t.Logf("second serve: exit %d after %v, stderr %q", code, took, strings.TrimSpace(errOut))
	if code == cli.ExitOK {
		t.Fatalf("a second serve on a data directory in use exited 0")
	}
	if want := "data directory " + data + " is in use by another process"; !strings.Contains(errOut, want) {
		t.Fatalf("second serve's stderr %q does not say %q", errOut, want)
	}
	if took > 10*time.Second {
		t.Fatalf("second serve took %v to give up, want at once", took)
	}

	runOK(t, "mutate", "--url", a.url(), "--doc", "shared", "add", `{"id":"via-a2","title":"t"}`)
	if code := a.stop(t, syscall.SIGTERM); code != cli.ExitOK {
		t.Fatalf("first serve exited %d on SIGTERM\n%s", code, a.stderr)
	}
	b := startServe(t, freeAddr(t), data)
	if got := queryRows(t, b.url(), "shared", `SELECT id FROM items ORDER BY id`); fmt.Sprint(got) != "[map[id:via-a] map[id:via-a2]]" {
		t.Fatalf("items after restart: %v, want via-a and via-a2", got)
	}
}
