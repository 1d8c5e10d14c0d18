package wasmhost_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
)

// cacheFiles returns the regular files under dir.
func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestDiskCache: after SetCacheDir, Compile writes the machine code to
// the directory; a process reading it again compiles nothing (the entry is
// left as it was); an entry damaged on disk does not fail Compile and is
// written again by the next process; a directory that cannot be created
// is refused and leaves the setting as it was.
func TestDiskCache(t *testing.T) {
	ctx := context.Background()
	wasm := wasmtest.Build(t, "./testdata/full")
	dir := t.TempDir()
	if err := wasmhost.SetCacheDir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		wasmhost.SetCacheDir("")
		wasmhost.ForgetDiskCaches()
	})
	compile := func() {
		t.Helper()
		wasmhost.ForgetDiskCaches() // as a new process
		m, err := wasmhost.Compile(ctx, wasm, wasmhost.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		m.Close(ctx)
	}
	compile()
	// Two files: wazero's machine code, and the module as package
	// interrupt rewrote it (so a later process need not rewrite it).
	var files, rewritten []string
	for _, f := range cacheFiles(t, dir) {
		if strings.HasPrefix(filepath.Base(f), "interrupt-v") {
			rewritten = append(rewritten, f)
		} else {
			files = append(files, f)
		}
	}
	if len(files) != 1 || len(rewritten) != 1 {
		t.Fatalf("cache dir holds %q and %q after a compile, want one entry of each", files, rewritten)
	}
	code, err := os.ReadFile(rewritten[0])
	if err != nil {
		t.Fatal(err)
	}
	entry, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(files[0])
	compile()
	if again, _ := os.Stat(files[0]); again == nil || !again.ModTime().Equal(info.ModTime()) {
		t.Fatal("the second compile rewrote the cache entry instead of reading it")
	}

	for name, damage := range map[string][]byte{
		"garbage":   []byte("not machine code"),
		"truncated": entry[:len(entry)/2],
		"empty":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(files[0], damage, 0o600); err != nil {
				t.Fatal(err)
			}
			compile() // falls back to memory and removes the entry
			compile() // writes it again
			if got, err := os.ReadFile(files[0]); err != nil || !bytes.Equal(got, entry) {
				t.Fatalf("the damaged entry was not written again (%d bytes, %v; want %d)", len(got), err, len(entry))
			}
		})
	}

	t.Run("rewritten module damaged", func(t *testing.T) {
		damaged := bytes.Clone(code)
		damaged[len(damaged)-1] ^= 1
		if err := os.WriteFile(rewritten[0], damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		compile() // rewrites the module again, never runs the damaged copy
		if got, err := os.ReadFile(rewritten[0]); err != nil || !bytes.Equal(got, code) {
			t.Fatalf("the damaged rewritten module was not written again (%d bytes, %v; want %d)", len(got), err, len(code))
		}
	})

	t.Run("bad module", func(t *testing.T) {
		wasmhost.ForgetDiskCaches()
		if _, err := wasmhost.Compile(ctx, []byte("\x00asm junk"), wasmhost.Limits{}); !errors.Is(err, wasmhost.ErrBadModule) {
			t.Fatalf("compile junk with a disk cache: got %v, want ErrBadModule", err)
		}
	})

	t.Run("unusable dir", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := wasmhost.SetCacheDir(filepath.Join(file, "cache")); err == nil {
			t.Fatal("SetCacheDir under a regular file: no error")
		}
		before := len(cacheFiles(t, dir))
		os.RemoveAll(dir)
		compile() // still the first dir: created again
		if got := len(cacheFiles(t, dir)); got != before {
			t.Fatalf("after a refused SetCacheDir the cache holds %d files, want %d in the dir set before", got, before)
		}
	})
}
