package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/sqlsync-go/sqlsync/internal/atomicfile"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
)

// moduleMutator is one document's instance of a compiled mutator module,
// which the coordinator serves to clients by hash.
type moduleMutator struct {
	*wasmhost.Mutator
	hash  string
	bytes []byte
}

var _ server.ModuleMutator = moduleMutator{}

func (m moduleMutator) Hash() string  { return m.hash }
func (m moduleMutator) Bytes() []byte { return m.bytes }

// loadModule compiles the mutator module in file.
func loadModule(ctx context.Context, file string, limits wasmhost.Limits) (*wasmhost.Module, []byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("read mutator: %w", err)
	}
	m, err := wasmhost.Compile(ctx, b, limits)
	if err != nil {
		return nil, nil, fmt.Errorf("load mutator %s: %w", file, err)
	}
	return m, b, nil
}

// moduleMutators gives every document its own instance of module.
func moduleMutators(module *wasmhost.Module, bytes []byte, log *slog.Logger) func(string) engine.Mutator {
	return func(doc string) engine.Mutator {
		return moduleMutator{Mutator: module.Mutator(log.With("doc", doc)), hash: module.Hash(), bytes: bytes}
	}
}

// unreachableError is a coordinator that could not be asked at all (no
// connection, no answer in time), as opposed to one that answered with an
// error.
type unreachableError struct{ err error }

func (e unreachableError) Error() string { return e.err.Error() }
func (e unreachableError) Unwrap() error { return e.err }

// documentMutator returns the mutator a document uses, as the coordinator at
// base announces it, and its module's hash: its module, fetched by hash (and
// kept under cacheRoot(stateDir)), or nil and "" when the coordinator runs a
// mutator it does not serve (a Go one, in a program embedding package
// server): the replica then queues mutations without running them locally
// (client.Status.QueueOnly). The replica tells the hash to client.Open, so
// that it pushes nothing if the coordinator's Welcome names another module
// (the coordinator changed it between the two requests). With stateDir
// set, it also remembers which module the document runs, for
// cachedMutator. A coordinator that cannot be reached fails with an
// unreachableError.
func documentMutator(ctx context.Context, base *url.URL, doc, stateDir string) (engine.Mutator, string, error) {
	u := *base
	u.Path = "/v1/docs/" + url.PathEscape(doc) + "/mutator"
	var info struct{ Hash, URL string }
	if err := getJSON(ctx, u.String(), &info); err != nil {
		err = fmt.Errorf("ask for the document's mutator: %w", err)
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, "", unreachableError{err}
		}
		return nil, "", err
	}
	if info.Hash == "" {
		return nil, "", nil
	}
	root := cacheRoot(stateDir)
	var b []byte
	if root != "" {
		b = readModule(root, info.Hash)
	}
	if b == nil { // not kept yet, or damaged: fetched again
		u.Path = server.MutatorPath + info.Hash + ".wasm"
		var err error
		if b, err = get(ctx, u.String()); err != nil {
			return nil, "", fmt.Errorf("fetch mutator %s: %w", info.Hash, err)
		}
		if hashOf(b) != info.Hash {
			return nil, "", fmt.Errorf("fetch mutator %s: content does not match its hash", info.Hash)
		}
		if root != "" {
			if err := atomicfile.Write(filepath.Join(root, info.Hash+".wasm"), b, 0o755); err != nil {
				slog.Debug("keep mutator module", "hash", info.Hash, "err", err)
			}
		}
	}
	if stateDir != "" {
		rememberMutator(stateDir, doc, info.Hash)
	}
	m, err := compileModule(ctx, root, b, info.Hash)
	if err != nil {
		return nil, "", err
	}
	return m, info.Hash, nil
}

// cachedMutator returns the mutator a document ran the last time a command
// with this stateDir reached its coordinator, from the module kept there,
// and its hash; ok is false if there is none.
func cachedMutator(ctx context.Context, stateDir, doc string) (m engine.Mutator, hash string, ok bool, err error) {
	ptr, err := os.ReadFile(mutatorPointer(stateDir, doc))
	if err != nil {
		return nil, "", false, nil
	}
	hash = strings.TrimSpace(string(ptr))
	root := cacheRoot(stateDir)
	b := readModule(root, hash)
	if b == nil {
		return nil, "", false, nil
	}
	if m, err = compileModule(ctx, root, b, hash); err != nil {
		return nil, "", false, err
	}
	return m, hash, true, nil
}

// compileModule compiles a fetched module, its machine code cached under
// root (see useCompileCache).
func compileModule(ctx context.Context, root string, b []byte, hash string) (engine.Mutator, error) {
	useCompileCache(root)
	m, err := wasmhost.Compile(ctx, b, wasmhost.Limits{})
	if err != nil {
		return nil, fmt.Errorf("load mutator %s: %w", hash, err)
	}
	return m.Mutator(slog.New(slog.DiscardHandler)), nil
}

// cacheRoot is where a client command keeps mutator modules (named by
// their hash) and their compiled machine code (in wazero/): the state
// directory's mutators/ with --state, else sqlsync/ in the user's cache
// directory, or "" when there is none.
func cacheRoot(stateDir string) string {
	if stateDir != "" {
		return filepath.Join(stateDir, "mutators")
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		slog.Debug("no user cache directory: mutators are fetched and compiled every time", "err", err)
		return ""
	}
	return filepath.Join(dir, "sqlsync")
}

// useCompileCache keeps compiled mutators in root/wazero, so that the
// next command does not compile its module again; with root "", or if
// that directory cannot be used, they are compiled in memory.
func useCompileCache(root string) {
	if root == "" {
		return
	}
	if err := wasmhost.SetCacheDir(filepath.Join(root, "wazero")); err != nil {
		slog.Debug("compilation cache unusable: compiling in memory", "err", err)
	}
}

// readModule returns the module kept under root by its hash, or nil if
// there is none or it does not match the hash.
func readModule(root, hash string) []byte {
	if !validHash(hash) {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(root, hash+".wasm"))
	if err != nil || hashOf(b) != hash {
		return nil
	}
	return b
}

// mutatorPointer is the file in stateDir naming the module doc last ran.
// Document IDs are any string, so it is named by the ID's hash.
func mutatorPointer(stateDir, doc string) string {
	return filepath.Join(cacheRoot(stateDir), "doc-"+hashOf([]byte(doc))+".mutator")
}

// rememberMutator records in stateDir that doc runs the module hash.
func rememberMutator(stateDir, doc, hash string) {
	file := mutatorPointer(stateDir, doc)
	if old, err := os.ReadFile(file); err == nil && string(old) == hash {
		return
	}
	if err := atomicfile.Write(file, []byte(hash), 0o755); err != nil {
		slog.Debug("remember the document's mutator", "doc", doc, "err", err)
	}
}

// validHash reports whether s looks like a module hash: 64 lowercase hex
// digits.
func validHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// hashOf returns the SHA-256 of b in lowercase hex, as modules are named.
func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 256<<20))
}

func getJSON(ctx context.Context, u string, v any) error {
	b, err := get(ctx, u)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
