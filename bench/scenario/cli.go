package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
)

// CLIConfig tunes scenario 10.
type CLIConfig struct {
	ColdRuns int           // first commands timed, each with an empty state directory
	Runs     int           // cached commands timed of each kind
	Duration time.Duration // upper bound on the cached runs
	// Binary is the sqlsync command to time; empty builds ./cmd/sqlsync
	// with the go command, as `make build` does.
	Binary string
}

func (c *CLIConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.ColdRuns, "cli.cold-runs", c.ColdRuns, "scenario 10: first commands timed, each with an empty state directory")
	fs.IntVar(&c.Runs, "cli.runs", c.Runs, "scenario 10: cached commands timed of each kind")
	fs.DurationVar(&c.Duration, "cli.duration", c.Duration, "scenario 10: upper bound on the cached runs")
	fs.StringVar(&c.Binary, "cli.binary", c.Binary, "scenario 10: the sqlsync `command` to time (default: build ./cmd/sqlsync)")
}

// cliPackage is the Go package of the sqlsync command.
const cliPackage = "github.com/sqlsync-go/sqlsync/cmd/sqlsync"

// cliQuery is the query the cached runs and the floor run.
const cliQuery = `SELECT count(*) FROM items`

// cliSetup prepares, in dir, what the scenarios that run the sqlsync
// command as processes need: the binary (-cli.binary, or ./cmd/sqlsync
// built with the go command, as `make build` does), the todo mutator
// module (its path and bytes) for `serve --mutator`, and the children's
// environment (commands without --state would use the user's cache
// directory: this run's own instead).
func cliSetup(ctx context.Context, e *env, dir string) (bin, module string, wasm []byte, childEnv []string, err error) {
	bin = e.cfg.CLI.Binary
	if bin == "" {
		bin = filepath.Join(dir, "sqlsync")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, cliPackage)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return "", "", nil, nil, fmt.Errorf("build %s: %w\n%s", cliPackage, err, msg)
		}
	}
	if wasm, err = loadTodoWasm(ctx, &e.cfg); err != nil {
		return "", "", nil, nil, err
	}
	module = filepath.Join(dir, "todo.wasm")
	if err := os.WriteFile(module, wasm, 0o644); err != nil {
		return "", "", nil, nil, fmt.Errorf("write mutator: %w", err)
	}
	childEnv = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(dir, "user-cache"))
	return bin, module, wasm, childEnv, nil
}

// runCLI is scenario 10: the sqlsync command as a person or a script runs
// it, each command its own process, against a coordinator that is a
// `sqlsync serve` process on loopback running the todo demo's WebAssembly
// mutator. The first command with an empty state directory (the module
// fetched and compiled), then commands whose state directory keeps the
// module and its compiled code: mutate and query. The floor is what such a
// command cannot avoid: starting the same binary (`sqlsync help`) plus
// opening a plain SQLite file with the document's content (dump --raw) and
// running the same query, in this process.
func runCLI(ctx context.Context, e *env) (recs []report.Record, err error) {
	cfg := e.cfg.CLI
	dir, err := e.subdir("cli")
	if err != nil {
		return nil, err
	}
	bin, module, wasm, childEnv, err := cliSetup(ctx, e, dir)
	if err != nil {
		return nil, err
	}

	url, stop, err := startServe(ctx, bin, childEnv, filepath.Join(dir, "data"), module)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stop()) }()

	run := func(args ...string) (time.Duration, []byte, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = childEnv
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		t0 := time.Now()
		err := cmd.Run()
		d := time.Since(t0)
		if err != nil {
			return d, nil, fmt.Errorf("sqlsync %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
		}
		return d, []byte(out.String()), nil
	}
	item := 0
	mutate := func(state string) (time.Duration, error) {
		item++
		d, _, err := run("mutate", "--url", url, "--doc", "cli", "--state", state, "add",
			fmt.Sprintf(`{"id":"item-%05d","title":"buy milk, %d bottles"}`, item, item))
		return d, err
	}
	query := func(args ...string) (time.Duration, error) {
		d, out, err := run(append([]string{"query", "--url", url, "--doc", "cli"}, append(args, cliQuery)...)...)
		if err == nil && !json.Valid(out) {
			err = fmt.Errorf("sqlsync query: output is not JSON: %q", out)
		}
		return d, err
	}

	// The first command, cold: an empty state directory, so the module
	// is fetched and compiled, and the document downloaded.
	var cold []time.Duration
	for i := range max(cfg.ColdRuns, 1) {
		d, err := mutate(filepath.Join(dir, fmt.Sprintf("cold-%d", i)))
		if err != nil {
			return nil, err
		}
		cold = append(cold, d)
	}

	// Cached: one state directory, warmed by a first command.
	state := filepath.Join(dir, "state")
	if _, err := mutate(state); err != nil {
		return nil, err
	}
	if _, err := query(); err != nil { // warms the user cache directory
		return nil, err
	}
	plain := filepath.Join(dir, "plain.db")
	if err := dumpRaw(ctx, bin, childEnv, url, state, plain); err != nil {
		return nil, err
	}
	var muts, queries, noState, floor, execs, opens, sqlite3CLI []time.Duration
	sqlite3Bin, _ := exec.LookPath("sqlite3")
	// Each round runs every kind once, so that a slow moment of the
	// machine hits them alike.
	for dl := newDeadline(max(cfg.Runs, 1), cfg.Duration); dl.more(ctx, len(muts)); {
		d, err := mutate(state)
		if err != nil {
			return nil, err
		}
		muts = append(muts, d)
		if d, err = query("--state", state); err != nil {
			return nil, err
		}
		queries = append(queries, d)
		if d, err = query(); err != nil {
			return nil, err
		}
		noState = append(noState, d)
		ex, _, err := run("help")
		if err != nil {
			return nil, err
		}
		op, err := openAndQuery(plain)
		if err != nil {
			return nil, err
		}
		execs, opens, floor = append(execs, ex), append(opens, op), append(floor, ex+op)
		if sqlite3Bin != "" {
			cmd := exec.CommandContext(ctx, sqlite3Bin, plain, cliQuery)
			t0 := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("sqlite3: %w: %s", err, out)
			}
			sqlite3CLI = append(sqlite3CLI, time.Since(t0))
		}
	}

	floorNamed := &report.Named{
		Name: "floor: exec of the same binary (sqlsync help) + plain SQLite open and the same query in-process",
		Stat: report.Durations(floor),
	}
	also := []report.Named{
		{Name: "exec of the binary alone (sqlsync help)", Stat: report.Durations(execs)},
		{Name: "plain SQLite open + query alone (ncruces, in-process)", Stat: report.Durations(opens)},
	}
	if len(sqlite3CLI) > 0 {
		also = append(also, report.Named{Name: "sqlite3 command-line shell on the same file (" + sqlite3Bin + ")", Stat: report.Durations(sqlite3CLI)})
	}
	params := map[string]any{"coordinator": "sqlsync serve on 127.0.0.1", "mutator": "demo-todo/mutator (wasm)", "module_bytes": len(wasm)}
	aim := &report.Aim{Text: "p50 ≤ 150 ms", MaxValue: 150, AimOf: "p50"}

	r := report.Record{
		ID: "10.cold", Scenario: 10,
		Name:     "sqlsync mutate, first command: empty --state (module fetched and compiled, document downloaded)",
		Params:   params,
		Samples:  len(cold),
		Figure:   report.Durations(cold),
		Baseline: floorNamed,
		Note:     "each run its own process and a new state directory; the coordinator keeps running",
	}
	r.Finish("p50")
	recs = append(recs, r)

	r = report.Record{
		ID: "10.mutate", Scenario: 10,
		Name:     "sqlsync mutate --state, module and compiled code cached (process start to exit)",
		Params:   params,
		Samples:  len(muts),
		Figure:   report.Durations(muts),
		Baseline: floorNamed,
		Aim:      aim,
		Also:     also,
	}
	r.Finish("p50")
	recs = append(recs, r)

	r = report.Record{
		ID: "10.query", Scenario: 10,
		Name:     "sqlsync query --state, module and compiled code cached (process start to exit)",
		Params:   params,
		Samples:  len(queries),
		Figure:   report.Durations(queries),
		Baseline: floorNamed,
		Aim:      aim,
		Also: append([]report.Named{{
			Name: "sqlsync query without --state: module and code from the user cache dir, document downloaded",
			Stat: report.Durations(noState),
		}}, also...),
	}
	r.Finish("p50")
	recs = append(recs, r)
	return recs, nil
}

// startServe starts `bin serve` on a free loopback port with its data in
// data, and returns its URL (from its "serving" log line) and a function
// that stops it.
func startServe(ctx context.Context, bin string, env []string, data, module string) (url string, stop func() error, err error) {
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", data, "--mutator", module, "--static", "")
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", nil, fmt.Errorf("start serve: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start serve: %w", err)
	}
	stop = func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			return nil
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			return fmt.Errorf("serve did not stop within 10 s of SIGTERM")
		}
	}
	found := make(chan string, 1)
	var early strings.Builder // serve's log before it serves, for errors
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				found <- line.URL
				break
			}
			if early.Len() < 4096 {
				early.WriteString(sc.Text() + "\n")
			}
		}
		close(found)
		io.Copy(io.Discard, stderr) // the pipe must not fill up
	}()
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	select {
	case u, ok := <-found:
		if ok {
			return u, stop, nil
		}
		err = fmt.Errorf("serve exited before serving: %s", strings.TrimSpace(early.String()))
	case <-wait.Done():
		err = fmt.Errorf("serve did not start: %w", wait.Err())
	}
	cmd.Process.Kill()
	cmd.Wait()
	return "", nil, err
}

// dumpRaw writes the document's bytes as the replica in state has them to
// a plain SQLite file.
func dumpRaw(ctx context.Context, bin string, env []string, url, state, file string) error {
	cmd := exec.CommandContext(ctx, bin, "dump", "--raw", "--url", url, "--doc", "cli", "--state", state)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("sqlsync dump --raw: %w", err)
	}
	if err := os.WriteFile(file, out, 0o644); err != nil {
		return fmt.Errorf("write the plain copy: %w", err)
	}
	return nil
}

// openAndQuery times a plain SQLite open of file, cliQuery and the close.
func openAndQuery(file string) (time.Duration, error) {
	t0 := time.Now()
	conn, err := sqlite3.Open("file:" + file + "?mode=ro")
	if err != nil {
		return 0, fmt.Errorf("open plain copy: %w", err)
	}
	rows, err := sqlrows.Query(conn, cliQuery)
	conn.Close()
	if err != nil {
		return 0, fmt.Errorf("query plain copy: %w", err)
	}
	if len(rows.Values) != 1 {
		return 0, fmt.Errorf("query plain copy: %d rows, want 1", len(rows.Values))
	}
	return time.Since(t0), nil
}
