package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/internal/cli"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// TestInspectCommand: `sqlsync inspect`, a process of its own, reads a
// keyed coordinator (another process) over HTTP: it is refused without a
// token and with a writer's, and with an admin's (flag or SQLSYNC_TOKEN)
// lists the open document, shows its clients, commits and the rejection
// with its message, runs a read-only query and refuses a write.
func TestInspectCommand(t *testing.T) {
	p := startServe(t, freeAddr(t), t.TempDir(), "--jwt-secret", secSecret)
	admin := strings.TrimSpace(runOK(t, "token", "--jwt-secret", secSecret, "--doc", "*", "--role", "admin"))
	writer := strings.TrimSpace(runOK(t, "token", "--jwt-secret", secSecret, "--doc", "*", "--role", "write"))

	// Two writers, and a replica without a mutator whose "fail" only the
	// coordinator runs, and rejects.
	a := openReplica(t, p.url(), "groceries", client.Options{Token: writer})
	b := openReplica(t, p.url(), "groceries", client.Options{Token: writer})
	servertest.Mutate(t, a, "add", testmutator.Args{ID: "m", Title: "milk"})
	servertest.Mutate(t, b, "add", testmutator.Args{ID: "b", Title: "bread"})
	q := servertest.OpenReplica(t, client.Options{URL: "ws://" + p.addr + server.SyncPath, DocID: "groceries", Token: writer, Presence: true})
	if _, err := q.Mutate(t.Context(), "fail", testmutator.Args{Message: "out of stock"}.Encode()); err != nil {
		t.Fatal(err)
	}
	servertest.WaitSynced(t, q)
	lsn := waitSameLSN(t, a, b, q)

	url := p.url()
	for _, r := range []struct {
		name string
		args []string
		want string
	}{
		{"no token", nil, "HTTP 401"},
		{"writer's token", []string{"--token", writer}, "HTTP 403"},
		{"garbage token", []string{"--token", "x.y.z"}, "invalid token"},
	} {
		out, errOut, code := run(t, append([]string{"inspect", "--url", url}, r.args...)...)
		if code != cli.ExitError || out != "" || !strings.Contains(errOut, r.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d saying %q", r.name, code, out, errOut, cli.ExitError, r.want)
		}
	}

	out := runOK(t, "inspect", "--url", url, "--token", admin)
	if !strings.Contains(out, "1 document open, 3 connections") || !strings.Contains(out, "groceries") {
		t.Errorf("list:\n%s", out)
	}
	if err := q.Presence().Set(map[string]string{"name": "Quinn"}); err != nil {
		t.Fatal(err)
	}
	var errOut string
	var code int
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(20 * time.Millisecond) {
		out, errOut, code = runEnv(t, []string{"SQLSYNC_TOKEN=" + admin}, "inspect", "--url", url, "--doc", "groceries")
		if strings.Contains(out, "presences: 1") || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{"document groceries", "clients: 3", "presences: 1", `{"name":"Quinn"}`, "recent rejections: 1", "out of stock", "add(", "WebAssembly module"} {
		if code != cli.ExitOK || !strings.Contains(out, want) {
			t.Errorf("document (SQLSYNC_TOKEN): exit %d, missing %q in:\n%s%s", code, want, out, errOut)
		}
	}

	var d server.InspectDoc
	if err := json.Unmarshal([]byte(runOK(t, "inspect", "--url", url, "--token", admin, "--doc", "groceries", "--json")), &d); err != nil {
		t.Fatal(err)
	}
	if d.LSN != lsn || d.Clients != 3 || len(d.Rejections) != 1 || d.Rejections[0].Name != "fail" || d.Mutator.Kind != "wasm" || d.Mutator.ABIVersion != 1 {
		t.Errorf("--json: %+v, want LSN %d, 3 clients, the rejected fail, a wasm module", d, lsn)
	}
	for _, c := range d.ClientList {
		if c.Lag != 0 || c.SentLSN != lsn || c.Pending != 0 {
			t.Errorf("client %+v: want lag 0 at LSN %d", c, lsn)
		}
	}

	out, errOut, code = run(t, "inspect", "--url", url, "--token", admin, "--doc", "groceries", "SELECT id, title FROM items ORDER BY id")
	if code != cli.ExitOK || out != "id  title\nb   bread\nm   milk\n" || !strings.Contains(errOut, "2 rows at LSN") {
		t.Errorf("query: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = run(t, "inspect", "--url", url, "--token", admin, "--doc", "groceries", "DELETE FROM items")
	if code != cli.ExitError || out != "" || !strings.Contains(errOut, "read-only") || !strings.Contains(errOut, "delete from items") {
		t.Errorf("a write: exit %d, stdout %q, stderr %q; want refused as read-only", code, out, errOut)
	}
	if got := queryRowsToken(t, url, writer); got != 2 {
		t.Errorf("items after the refused write: %d, want 2", got)
	}

	for _, args := range [][]string{{"inspect"}, {"inspect", "--url", url, "SELECT 1"}, {"inspect", "--url", "ftp://x"}} {
		if _, errOut, code := run(t, args...); code != cli.ExitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, errOut, cli.ExitUsage)
		}
	}
}

// queryRowsToken counts the items of groceries with `sqlsync query`.
func queryRowsToken(t *testing.T, url, token string) int {
	t.Helper()
	var rows []map[string]any
	out := runOK(t, "query", "--url", url, "--doc", "groceries", "--token", token, "SELECT id FROM items")
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	return len(rows)
}
