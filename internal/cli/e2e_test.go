package cli_test

// End-to-end tests of the real sqlsync binary, built once by TestMain: the
// coordinator runs as a child process on 127.0.0.1, and the tests drive it
// with more sqlsync processes and with in-process Go replicas. They live
// here, next to the command's implementation, so that `go test ./...`
// builds and checks the binary people run.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/internal/cli"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// sqlsyncBin is the binary under test.
var sqlsyncBin string

// todoModule is the todo demo's mutator module, which every serve in these
// tests runs unless a test names another.
var todoModule string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sqlsync-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sqlsyncBin = filepath.Join(dir, "sqlsync")
	// Client commands without --state keep compiled mutators in the user's
	// cache directory: this run's own, not the user's.
	os.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	todoModule = filepath.Join(dir, "todo.wasm")
	builds := []*exec.Cmd{
		exec.Command(goBin, "build", "-o", sqlsyncBin, "github.com/sqlsync-go/sqlsync/cmd/sqlsync"),
		exec.Command(goBin, "build", "-buildmode=c-shared", "-o", todoModule, "github.com/sqlsync-go/sqlsync/demo-todo/mutator"),
	}
	builds[1].Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	for _, build := range builds {
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build:", build.Args, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testTimeout bounds every wait in these tests.
const testTimeout = servertest.Timeout

// lockedBuffer is a bytes.Buffer safe for a child process and a test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveProc is a `sqlsync serve` child process.
type serveProc struct {
	cmd    *exec.Cmd
	addr   string
	dir    string
	stderr *lockedBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, once done
}

// startServe runs `sqlsync serve` on addr with data directory dir, waits
// until /healthz answers, and kills it when the test ends.
func startServe(t *testing.T, addr, dir string, extra ...string) *serveProc {
	t.Helper()
	p := launchServe(t, addr, dir, extra...)
	p.waitHealthy(t, testTimeout)
	return p
}

// launchServe is startServe without the wait: for coordinators that wait
// for one another (a cluster forming).
func launchServe(t *testing.T, addr, dir string, extra ...string) *serveProc {
	t.Helper()
	args := withMutator(append([]string{"serve", "--addr", addr, "--data", dir}, extra...))
	p := &serveProc{cmd: exec.Command(sqlsyncBin, args...), addr: addr, dir: dir, stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("serve %s stderr:\n%s", addr, p.stderr)
		}
	})
	return p
}

// waitHealthy waits until p answers /healthz, failing the test after
// within or if p exits.
func (p *serveProc) waitHealthy(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("serve exited early: %v\n%s", p.err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /healthz: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signal sends sig and waits for the process to exit, returning its exit code.
func (p *serveProc) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(testTimeout):
		t.Fatalf("serve did not exit after %v", sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *serveProc) url() string { return "http://" + p.addr }

// runCmd runs the sqlsync binary with args and returns its output and
// exit code; err is set only if it could not run or timed out.
func runCmd(args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sqlsyncBin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || ctx.Err() != nil) {
		return "", "", -1, fmt.Errorf("sqlsync %v: %v\n%s", args, err, errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode(), nil
}

// run is runCmd for the test goroutine.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	stdout, stderr, code, err := runCmd(args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr, code
}

// withMutator adds --mutator todoModule to serve's args unless they name a
// mutator already.
func withMutator(args []string) []string {
	if slices.Contains(args, "--mutator") {
		return args
	}
	return append(args, "--mutator", todoModule)
}

// runOK runs the binary and fails the test unless it exits 0.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, args...)
	if code != cli.ExitOK {
		t.Fatalf("sqlsync %v: exit %d\n%s", args, code, errOut)
	}
	return out
}

// openReplica opens an in-process replica of docID, with the todo mutator
// and what opts sets besides, on the coordinator at url; it is closed when
// the test ends.
func openReplica(t *testing.T, url, docID string, opts client.Options) *client.Doc {
	t.Helper()
	opts.URL = "ws://" + strings.TrimPrefix(url, "http://") + server.SyncPath
	opts.DocID = docID
	opts.Mutator = testmutator.Mutator{}
	opts.MaxBackoff = 100 * time.Millisecond
	return servertest.OpenReplica(t, opts)
}

// coordinatorFile opens the coordinator's copy of docID in a stopped
// server's data directory and returns its bytes, checking its integrity.
func coordinatorFile(t *testing.T, dataDir, docID string) ([]byte, *vfs.Database) {
	t.Helper()
	store, err := server.OpenDocumentStore(dataDir, docID)
	if err != nil {
		t.Fatal(err)
	}
	db := vfs.NewDatabase(store, vfs.CoordinatorMode)
	t.Cleanup(func() { db.Close(); store.Close() })
	b, err := db.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := sqlrows.Query(conn, `PRAGMA integrity_check`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(rows.Values), "[[ok]]"; got != want {
		t.Fatalf("coordinator integrity_check: got %v, want %v", got, want)
	}
	return b, db
}

// queryRows runs `sqlsync query` and decodes its JSON rows.
func queryRows(t *testing.T, url, docID, sql string, params ...string) []map[string]any {
	t.Helper()
	args := append([]string{"query", "--url", url, "--doc", docID, sql}, params...)
	out := runOK(t, args...)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("query output is not JSON rows: %v\n%s", err, out)
	}
	return rows
}

// waitSameLSN waits until every replica is synced and all are at the same
// LSN, and returns it.
func waitSameLSN(t *testing.T, docs ...*client.Doc) uint64 {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		lsns := map[uint64]bool{}
		synced := true
		for _, d := range docs {
			s := d.Status()
			synced = synced && s.Synced()
			lsns[s.LSN] = true
		}
		if synced && len(lsns) == 1 {
			for lsn := range lsns {
				return lsn
			}
		}
		if time.Now().After(deadline) {
			var st []string
			for _, d := range docs {
				st = append(st, fmt.Sprintf("%+v", d.Status()))
			}
			t.Fatalf("replicas did not converge: %v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServeConverge: three `sqlsync mutate` processes and three in-process
// replicas write to one document at once; the replicas end byte for byte
// equal to `dump --raw` and to the coordinator's file, and every item is
// there once.
func TestServeConverge(t *testing.T) {
	srv := startServe(t, freeAddr(t), t.TempDir())
	const doc = "converge"
	perProc, perReplica := 3, 20
	if testing.Short() {
		perProc, perReplica = 1, 5
	}
	replicas := []*client.Doc{
		openReplica(t, srv.url(), doc, client.Options{}),
		openReplica(t, srv.url(), doc, client.Options{StateDir: t.TempDir()}),
		openReplica(t, srv.url(), doc, client.Options{}),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	var want []string
	for p := range 3 {
		for i := range perProc {
			want = append(want, fmt.Sprintf("proc%d-%d", p, i))
		}
		wg.Go(func() {
			for i := range perProc {
				id := fmt.Sprintf("proc%d-%d", p, i)
				out, errOut, code, err := runCmd("mutate", "--url", srv.url(), "--doc", doc, "add", fmt.Sprintf(`{"id":%q,"title":"from a process"}`, id))
				if err != nil {
					errs <- err
					return
				}
				if code != cli.ExitOK {
					errs <- fmt.Errorf("mutate %s: exit %d: %s", id, code, errOut)
					return
				}
				var res struct{ Seq, LSN uint64 }
				if err := json.Unmarshal([]byte(out), &res); err != nil || res.Seq != 1 || res.LSN == 0 {
					errs <- fmt.Errorf("mutate %s: output %q: %v", id, out, err)
				}
			}
		})
	}
	for r, d := range replicas {
		for i := range perReplica {
			want = append(want, fmt.Sprintf("rep%d-%02d", r, i))
		}
		wg.Go(func() {
			for i := range perReplica {
				a := testmutator.Args{ID: fmt.Sprintf("rep%d-%02d", r, i), Title: "from a replica"}
				if _, err := d.Mutate(context.Background(), "add", a.Encode()); err != nil {
					errs <- err
					return
				}
				if i%4 == 3 {
					d.Mutate(context.Background(), "toggle", testmutator.Args{ID: a.ID}.Encode())
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	lsn := waitSameLSN(t, replicas...)

	rows := queryRows(t, srv.url(), doc, `SELECT id FROM items ORDER BY id`)
	var got []string
	for _, r := range rows {
		got = append(got, r["id"].(string))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("items: got %v, want %v", got, want)
	}
	raw := runOK(t, "dump", "--url", srv.url(), "--doc", doc, "--raw")
	for i, d := range replicas {
		b, err := d.Engine().Database().Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, []byte(raw)) {
			t.Fatalf("replica %d at LSN %d differs from dump --raw (%d vs %d bytes)", i, lsn, len(b), len(raw))
		}
	}
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d", code)
	}
	file, _ := coordinatorFile(t, srv.dir, doc)
	if !bytes.Equal(file, []byte(raw)) {
		t.Fatalf("dump --raw (%d bytes) differs from the coordinator's file (%d bytes)", len(raw), len(file))
	}
}

// TestQueryAndDump: query prints JSON rows, with parameters; dump prints SQL
// text that rebuilds the document; dump --raw prints the coordinator's bytes.
func TestQueryAndDump(t *testing.T) {
	srv := startServe(t, freeAddr(t), t.TempDir())
	runOK(t, "mutate", "--url", srv.url(), "--doc", "d", "add", `{"id":"a","title":"Apples"}`)
	runOK(t, "mutate", "--url", srv.url(), "--doc", "d", "add", `{"id":"b","title":"Bread \"fresh\""}`)
	runOK(t, "mutate", "--url", srv.url(), "--doc", "d", "toggle", `{"id":"b"}`)

	rows := queryRows(t, srv.url(), "d", `SELECT id, title, done, 1.5 AS f, NULL AS n, x'00ff' AS blob FROM items ORDER BY id`)
	b, _ := json.Marshal(rows)
	if got, want := string(b), `[{"blob":"AP8=","done":0,"f":1.5,"id":"a","n":null,"title":"Apples"},{"blob":"AP8=","done":1,"f":1.5,"id":"b","n":null,"title":"Bread \"fresh\""}]`; got != want {
		t.Fatalf("query rows:\ngot  %s\nwant %s", got, want)
	}
	rows = queryRows(t, srv.url(), "d", `SELECT title FROM items WHERE done = ? AND id > ?`, `[1, "a"]`)
	if got, want := fmt.Sprint(rows), `[map[title:Bread "fresh"]]`; got != want {
		t.Fatalf("query with params: got %v, want %v", got, want)
	}
	if got := queryRows(t, srv.url(), "d", `SELECT * FROM items WHERE 0`); got == nil || len(got) != 0 {
		t.Fatalf("query of no rows: got %#v, want []", got)
	}

	dump := runOK(t, "dump", "--url", srv.url(), "--doc", "d")
	for _, want := range []string{
		"BEGIN TRANSACTION;",
		"CREATE TABLE items(",
		"CREATE INDEX items_by_title",
		`INSERT INTO "items" VALUES('a','Apples',0,0,`,
		`'Bread "fresh"',1,0`,
		"COMMIT;",
	} {
		if !strings.Contains(dump, want) {
			t.Fatalf("dump lacks %q:\n%s", want, dump)
		}
	}
	raw := runOK(t, "dump", "--url", srv.url(), "--doc", "d", "--raw")
	if len(raw) == 0 || len(raw)%vfs.PageSize != 0 || !strings.HasPrefix(raw, "SQLite format 3\x00") {
		t.Fatalf("dump --raw: %d bytes starting %q, want whole pages of a SQLite file", len(raw), raw[:min(16, len(raw))])
	}
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d", code)
	}
	file, _ := coordinatorFile(t, srv.dir, "d")
	if !bytes.Equal(file, []byte(raw)) {
		t.Fatalf("dump --raw (%d bytes) differs from the coordinator's file (%d bytes)", len(raw), len(file))
	}
}

// TestExitCodes: 0 on success, 2 for usage errors, 3 for a rejected
// mutation, 1 when the coordinator cannot be reached.
func TestExitCodes(t *testing.T) {
	srv := startServe(t, freeAddr(t), t.TempDir())
	dead := "http://" + freeAddr(t)
	runOK(t, "mutate", "--url", srv.url(), "--doc", "codes", "add", `{"id":"dup","title":"first"}`)
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"help", []string{"help"}, cli.ExitOK, ""},
		{"query", []string{"query", "--url", srv.url(), "--doc", "codes", "SELECT 1"}, cli.ExitOK, ""},
		{"no command", nil, cli.ExitUsage, "usage"},
		{"unknown command", []string{"frobnicate"}, cli.ExitUsage, "unknown command"},
		{"unknown flag", []string{"query", "--bogus"}, cli.ExitUsage, "bogus"},
		{"no doc", []string{"query", "--url", srv.url(), "SELECT 1"}, cli.ExitUsage, "--doc"},
		{"no sql", []string{"query", "--url", srv.url(), "--doc", "codes"}, cli.ExitUsage, "SQL"},
		{"bad params", []string{"query", "--url", srv.url(), "--doc", "codes", "SELECT ?", "{"}, cli.ExitUsage, "PARAMS_JSON"},
		{"bad args json", []string{"mutate", "--url", srv.url(), "--doc", "codes", "add", "{"}, cli.ExitUsage, "JSON"},
		{"bad url scheme", []string{"dump", "--url", "ftp://127.0.0.1:1", "--doc", "codes"}, cli.ExitUsage, "scheme"},
		{"serve argument", []string{"serve", "--addr", "127.0.0.1:0", "extra"}, cli.ExitUsage, "no arguments"},
		{"serve without a mutator", []string{"serve", "--addr", "127.0.0.1:0"}, cli.ExitUsage, "serve needs --mutator FILE"},
		{"rejected by the mutator", []string{"mutate", "--url", srv.url(), "--doc", "codes", "fail", `{"message":"not today"}`}, cli.ExitRejected, "not today"},
		{"duplicate id", []string{"mutate", "--url", srv.url(), "--doc", "codes", "add", `{"id":"dup","title":"second"}`}, cli.ExitRejected, "UNIQUE"},
		{"unknown mutation", []string{"mutate", "--url", srv.url(), "--doc", "codes", "explode", `{}`}, cli.ExitRejected, "unknown mutation"},
		{"not read-only", []string{"query", "--url", srv.url(), "--doc", "codes", "DELETE FROM items"}, cli.ExitError, "mutation"},
		{"no coordinator", []string{"query", "--url", dead, "--doc", "codes", "--timeout", "1s", "SELECT 1"}, cli.ExitError, "sqlsync:"},
		{"no coordinator for a mutation", []string{"mutate", "--url", dead, "--doc", "codes", "--timeout", "1s", "add", `{"id":"x"}`}, cli.ExitError, "sqlsync:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, errOut, code := run(t, tt.args...)
			if got, want := code, tt.code; got != want {
				t.Fatalf("sqlsync %q: got exit %v, want %v\n%s", tt.args, got, want, errOut)
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("sqlsync %q: stderr %q does not mention %q", tt.args, errOut, tt.stderr)
			}
		})
	}
}

// TestConcurrentDuplicate: of three processes adding the same item at once,
// one succeeds and the others exit 3, whether their replica or the
// coordinator refused them.
func TestConcurrentDuplicate(t *testing.T) {
	srv := startServe(t, freeAddr(t), t.TempDir())
	codes := make([]int, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			_, _, codes[i], errs[i] = runCmd("mutate", "--url", srv.url(), "--doc", "dup", "add", fmt.Sprintf(`{"id":"same","title":"writer %d"}`, i))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	slices.Sort(codes)
	if got, want := fmt.Sprint(codes), fmt.Sprint([]int{cli.ExitOK, cli.ExitRejected, cli.ExitRejected}); got != want {
		t.Fatalf("exit codes: got %v, want %v", got, want)
	}
	if got := queryRows(t, srv.url(), "dup", `SELECT count(*) AS n FROM items`); fmt.Sprint(got) != "[map[n:1]]" {
		t.Fatalf("items: got %v, want one", got)
	}
}

// TestServeSIGTERM: on SIGTERM serve tells its clients it is shutting
// down, stops, and exits 0; /healthz answered while it ran.
func TestServeSIGTERM(t *testing.T) {
	srv := startServe(t, freeAddr(t), t.TempDir())
	resp, err := http.Get(srv.url() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var health struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &health); err != nil || resp.StatusCode != http.StatusOK || health.Status != "ok" {
		t.Fatalf("healthz: %s %s (%v)", resp.Status, body, err)
	}

	d := openReplica(t, srv.url(), "term", client.Options{})
	if _, err := d.Mutate(context.Background(), "add", testmutator.Args{ID: "a", Title: "A"}.Encode()); err != nil {
		t.Fatal(err)
	}
	servertest.WaitSynced(t, d)
	// The close reason is seen as an event: LastError is overwritten by
	// the replica's next reconnect attempt, so polling Status races it.
	told := make(chan client.Status, 1)
	var seen []string
	var seenMu sync.Mutex
	stopWatch := d.Watch(func(e client.Event) {
		if e.Status == nil {
			return
		}
		seenMu.Lock()
		seen = append(seen, string(e.Status.State)+": "+e.Status.LastError)
		seenMu.Unlock()
		if strings.Contains(e.Status.LastError, protocol.CodeShutdown) {
			select {
			case told <- *e.Status:
			default:
			}
		}
	})
	defer stopWatch()
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d\n%s", code, srv.stderr)
	}
	for _, want := range []string{"shutting down", "stopped"} {
		if !strings.Contains(srv.stderr.String(), want) {
			t.Fatalf("serve's log lacks %q:\n%s", want, srv.stderr)
		}
	}
	select {
	case <-told:
	case <-time.After(testTimeout):
		seenMu.Lock()
		defer seenMu.Unlock()
		t.Fatalf("the replica was not told of the shutdown; its status events: %q", seen)
	}
	file, _ := coordinatorFile(t, srv.dir, "term")
	b, _ := d.Engine().Database().Bytes()
	if !bytes.Equal(file, b) {
		t.Fatal("after the graceful stop the coordinator's file differs from the synced replica")
	}
}
