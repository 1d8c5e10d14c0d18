package cli_test

// Tests of what a client command keeps between runs: the mutator module
// and its compiled machine code (so that a command does not compile it
// again), and, with the coordinator unreachable, the mutations it queues.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/internal/cli"
)

// compiledEntries returns the files under dir that hold a compiled module
// (wazero's entries begin with its magic "WAZEVO"), and every regular file.
func compiledEntries(t *testing.T, dir string) (entries, files []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		files = append(files, path)
		b, err := os.ReadFile(path)
		if err == nil && bytes.HasPrefix(b, []byte("WAZEVO")) {
			entries = append(entries, path)
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return entries, files
}

// TestCompileCache: a client command keeps the mutator module and its
// machine code in --state (mutators/, mutators/wazero/), else in the
// user's cache directory, and serve in its data directory; a second
// command reads the entry instead of writing it again; a damaged entry
// costs one compile, the command still working, and is written again; a
// cache directory that cannot be created leaves the command working.
func TestCompileCache(t *testing.T) {
	srv := startServe(t, freeAddr(t), t.TempDir())
	if entries, _ := compiledEntries(t, filepath.Join(srv.dir, "wazero")); len(entries) != 1 {
		t.Errorf("serve's data dir holds compiled entries %q, want one", entries)
	}
	runOK(t, "mutate", "--url", srv.url(), "--doc", "c", "add", `{"id":"a","title":"t"}`)
	query := func(state string) {
		t.Helper()
		if got := queryRowsState(t, srv.url(), "c", state, `SELECT id FROM items`); got != "[map[id:a]]" {
			t.Fatalf("query --state %s: %s", state, got)
		}
	}

	state := t.TempDir()
	cache := filepath.Join(state, "mutators", "wazero")
	query(state)
	entries, _ := compiledEntries(t, cache)
	if len(entries) != 1 {
		t.Fatalf("after one command the cache %s holds compiled entries %q, want one", cache, entries)
	}
	if modules, _ := filepath.Glob(filepath.Join(state, "mutators", "*.wasm")); len(modules) != 1 {
		t.Fatalf("the state dir keeps modules %q, want one", modules)
	}
	entry, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(entries[0])
	query(state)
	if after, err := os.Stat(entries[0]); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("the second command wrote the compiled entry again (%v): it compiled the module", err)
	}

	t.Run("damaged entry", func(t *testing.T) {
		if err := os.WriteFile(entries[0], []byte("WAZEVO and then garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		query(state) // compiles in memory, removes the entry
		query(state) // writes it again
		if got, err := os.ReadFile(entries[0]); err != nil || !bytes.Equal(got, entry) {
			t.Fatalf("the damaged entry was not written again: %d bytes (%v), want %d", len(got), err, len(entry))
		}
	})

	t.Run("unusable cache dir", func(t *testing.T) {
		// A file where the cache directory goes (root ignores modes).
		state := t.TempDir()
		if err := os.MkdirAll(filepath.Join(state, "mutators"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(state, "mutators", "wazero"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		query(state)
	})

	t.Run("user cache dir", func(t *testing.T) {
		xdg := t.TempDir()
		_, errOut, code := runEnv(t, []string{"XDG_CACHE_HOME=" + xdg}, "query", "--url", srv.url(), "--doc", "c", "SELECT 1")
		if code != cli.ExitOK {
			t.Fatalf("query: exit %d\n%s", code, errOut)
		}
		if entries, _ := compiledEntries(t, filepath.Join(xdg, "sqlsync", "wazero")); len(entries) != 1 {
			t.Fatalf("the user cache dir holds compiled entries %q, want one", entries)
		}
		if modules, _ := filepath.Glob(filepath.Join(xdg, "sqlsync", "*.wasm")); len(modules) != 1 {
			t.Fatalf("the user cache dir keeps modules %q, want one", modules)
		}
		// No usable user cache directory at all: compiled in memory.
		_, errOut, code = runEnv(t, []string{"XDG_CACHE_HOME=", "HOME="}, "query", "--url", srv.url(), "--doc", "c", "SELECT 1")
		if code != cli.ExitOK {
			t.Fatalf("query with no cache dir: exit %d\n%s", code, errOut)
		}
	})
}

// TestMutateOffline: with the coordinator down, `mutate --state D` runs the
// mutation on D's replica with the mutator an earlier command kept in D,
// queues it, says so and exits ExitQueued; the mutator's own refusal still
// exits ExitRejected, and a state dir that never reached the coordinator
// has no mutator to run (ExitError). Once the coordinator is back, the
// next command on D pushes what is queued: the coordinator has the rows,
// and a queued mutation it rejects is reported on stderr.
func TestMutateOffline(t *testing.T) {
	addr, data := freeAddr(t), t.TempDir()
	srv := startServe(t, addr, data)
	state, other := t.TempDir(), t.TempDir()
	add := func(state, id string) []string {
		return []string{"mutate", "--url", srv.url(), "--doc", "off", "--state", state, "--timeout", "5s", "add", fmt.Sprintf(`{"id":%q,"title":"t"}`, id)}
	}
	runOK(t, add(state, "online")...)
	runOK(t, add(other, "other")...)
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d", code)
	}

	start := time.Now()
	out, errOut, code := run(t, add(state, "queued")...)
	if code != cli.ExitQueued {
		t.Fatalf("offline mutate: exit %d, want %d (ExitQueued)\n%s", code, cli.ExitQueued, errOut)
	}
	t.Logf("offline mutate took %v: %s", time.Since(start), strings.TrimSpace(errOut))
	var res struct {
		Seq     uint64
		Queued  bool
		Pending int
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Queued || res.Seq != 2 || res.Pending != 1 {
		t.Fatalf("offline mutate output %q (%v): want seq 2, queued, 1 pending", out, err)
	}
	if !strings.Contains(errOut, "queued") {
		t.Fatalf("offline mutate's stderr does not say it queued: %q", errOut)
	}
	// Queued too: one the coordinator will refuse, as other adds it first.
	if _, errOut, code := run(t, add(state, "clash")...); code != cli.ExitQueued {
		t.Fatalf("second offline mutate: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := run(t, add(state, "online")...); code != cli.ExitRejected || !strings.Contains(errOut, "UNIQUE") {
		t.Fatalf("offline duplicate: exit %d, stderr %q; want %d and the mutator's refusal", code, errOut, cli.ExitRejected)
	}
	if _, errOut, code := run(t, add(t.TempDir(), "nowhere")...); code != cli.ExitError || !strings.Contains(errOut, "keeps no mutator") {
		t.Fatalf("offline mutate on a fresh state dir: exit %d, stderr %q; want %d, no mutator kept", code, errOut, cli.ExitError)
	}

	srv = startServe(t, addr, data)
	runOK(t, add(other, "clash")...)
	out, errOut, code = run(t, "query", "--url", srv.url(), "--doc", "off", "--state", state, "--timeout", "10s", `SELECT id FROM items ORDER BY id`)
	if code != cli.ExitOK {
		t.Fatalf("query after the coordinator is back: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "rejected queued mutation 3 (add)") || !strings.Contains(errOut, "UNIQUE") {
		t.Fatalf("the query does not report the queued mutation the coordinator rejected: stderr %q", errOut)
	}
	if got := queryRows(t, srv.url(), "off", `SELECT group_concat(id) AS ids FROM (SELECT id FROM items ORDER BY id)`); fmt.Sprint(got) != "[map[ids:clash,online,other,queued]]" {
		t.Fatalf("the coordinator has %v, want the queued row pushed", got)
	}
	if !strings.Contains(out, `"queued"`) {
		t.Fatalf("query --state after the push: %s, want the queued row", out)
	}
}

// runEnv is run with more environment variables for the process.
func runEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sqlsyncBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || ctx.Err() != nil) {
		t.Fatalf("sqlsync %v: %v\n%s", args, err, errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}
