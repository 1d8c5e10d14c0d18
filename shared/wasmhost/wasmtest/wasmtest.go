// Package wasmtest builds Go mutators to WebAssembly for tests: a package is
// built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared once per test
// binary, however many tests ask for it, so no .wasm file is committed.
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

func start(dir string, ldflags []string) (*build, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	key := abs + "\x00" + strings.Join(ldflags, " ")
	mu.Lock()
	defer mu.Unlock()
	b := builds[key]
	if b == nil {
		b = &build{dir: abs, ldflags: ldflags}
		builds[key] = b
	}
	return b, nil
}

func (b *build) run() { b.wasm, b.err = goBuild(b.dir, b.ldflags) }

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
