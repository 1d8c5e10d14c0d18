// Package wasmtest builds mutators to WebAssembly for tests, once per test
// binary however many tests ask for each, so no .wasm file is committed: a
// Go package with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, an
// AssemblyScript mutator with the repository's own build command
// (mutator/bin/sqlsync-mutator.mjs, run by node; `npm ci` must have
// installed the compiler, as make test does).
package wasmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
)

type build struct {
	dir     string
	ldflags []string
	as      bool // an AssemblyScript entry file, not a Go package
	once    sync.Once
	wasm    []byte
	err     error
}

var (
	mu     sync.Mutex
	builds = map[string]*build{}
)

// Build returns the WebAssembly module built from the Go package at dir (a
// directory relative to the test's working directory, such as
// "./testdata/full"), with ldflags passed to the linker. It fails tb if
// the build fails.
func Build(tb testing.TB, dir string, ldflags ...string) []byte {
	tb.Helper()
	b, err := start(dir, ldflags)
	if err != nil {
		tb.Fatalf("build %s: %v", dir, err)
	}
	b.once.Do(b.run)
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.wasm
}

// Prebuild starts building a package in the background, so that a later
// Build finds it ready; call it from TestMain for the packages a test
// binary needs, and they build in parallel.
func Prebuild(dir string, ldflags ...string) {
	if b, err := start(dir, ldflags); err == nil {
		go b.once.Do(b.run)
	}
}

// BuildAS returns the module built from the AssemblyScript mutator at
// entry (a .ts file, relative to the test's working directory) by the
// repository's sqlsync-mutator build command. It fails tb if the build
// fails, or if node or the compiler is missing.
func BuildAS(tb testing.TB, entry string) []byte {
	tb.Helper()
	b, err := startAS(entry)
	if err != nil {
		tb.Fatalf("build %s: %v", entry, err)
	}
	b.once.Do(b.run)
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.wasm
}

// PrebuildAS starts building an AssemblyScript mutator in the background,
// as Prebuild does a Go package.
func PrebuildAS(entry string) {
	if b, err := startAS(entry); err == nil {
		go b.once.Do(b.run)
	}
}

func start(dir string, ldflags []string) (*build, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return lookup(&build{dir: abs, ldflags: ldflags}), nil
}

func startAS(entry string) (*build, error) {
	abs, err := filepath.Abs(entry)
	if err != nil {
		return nil, err
	}
	return lookup(&build{dir: abs, as: true}), nil
}

// lookup returns the build registered for b's key, registering b if none.
func lookup(b *build) *build {
	key := fmt.Sprint(b.dir, "\x00", strings.Join(b.ldflags, " "), "\x00", b.as)
	mu.Lock()
	defer mu.Unlock()
	if old := builds[key]; old != nil {
		return old
	}
	builds[key] = b
	return b
}

func (b *build) run() {
	if b.as {
		b.wasm, b.err = asBuild(b.dir)
		return
	}
	b.wasm, b.err = goBuild(b.dir, b.ldflags)
}

// asBuild runs the repository's AssemblyScript build command on entry.
func asBuild(entry string) ([]byte, error) {
	root, err := repoRoot(filepath.Dir(entry))
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", entry, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("build %s: node is not installed: %w", entry, err)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "assemblyscript")); err != nil {
		return nil, fmt.Errorf("build %s: the AssemblyScript compiler is not installed (run npm ci in %s; make test does): %w", entry, root, err)
	}
	tmp, err := os.MkdirTemp("", "wasmtest-")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", entry, err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "mutator.wasm")
	cmd := exec.Command(node, filepath.Join(root, "mutator", "bin", "sqlsync-mutator.mjs"), "build", entry, "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s: %w\n%s", entry, err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", entry, err)
	}
	return wasm, nil
}

// repoRoot returns the directory at or above dir that holds go.mod.
func repoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod at or above %s", dir)
		}
	}
}

func goBuild(dir string, ldflags []string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "wasmtest-")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "mutator.wasm")
	args := []string{"build", "-buildmode=c-shared", "-o", out}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags="+strings.Join(ldflags, " "))
	}
	args = append(args, ".")
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s: %w\n%s", dir, err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", dir, err)
	}
	return wasm, nil
}

// goTool returns the go command that runs the tests: go test puts its
// GOROOT/bin first in PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// CompileAS builds the AssemblyScript mutator at entry and compiles it
// with limits, closing the module when tb ends.
func CompileAS(tb testing.TB, entry string, limits wasmhost.Limits) *wasmhost.Module {
	tb.Helper()
	mod, err := wasmhost.Compile(context.Background(), BuildAS(tb, entry), limits)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { mod.Close(context.Background()) })
	return mod
}

// Compile builds the package at dir and compiles it with limits, closing
// the module when tb ends.
func Compile(tb testing.TB, dir string, limits wasmhost.Limits, ldflags ...string) *wasmhost.Module {
	tb.Helper()
	mod, err := wasmhost.Compile(context.Background(), Build(tb, dir, ldflags...), limits)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { mod.Close(context.Background()) })
	return mod
}
