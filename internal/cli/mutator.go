package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

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

// documentMutator returns the mutator a document uses, as the coordinator at
// base announces it, and its module's hash: its module, fetched by hash (and
// kept in stateDir when set), or nil and "" when the coordinator runs a
// mutator it does not serve (a Go one, in a program embedding package
// server): the replica then queues mutations without running them locally
// (client.Status.QueueOnly). The replica tells the hash to client.Open, so
// that it pushes nothing if the coordinator's Welcome names another module
// (the coordinator changed it between the two requests).
func documentMutator(ctx context.Context, base *url.URL, doc, stateDir string) (engine.Mutator, string, error) {
	u := *base
	u.Path = "/v1/docs/" + url.PathEscape(doc) + "/mutator"
	var info struct{ Hash, URL string }
	if err := getJSON(ctx, u.String(), &info); err != nil {
		return nil, "", fmt.Errorf("ask for the document's mutator: %w", err)
	}
	if info.Hash == "" {
		return nil, "", nil
	}
	var cache string
	if stateDir != "" {
		cache = filepath.Join(stateDir, "mutators", info.Hash+".wasm")
	}
	b, err := os.ReadFile(cache)
	if cache == "" || err != nil || hashOf(b) != info.Hash { // a damaged copy is fetched again
		u.Path = server.MutatorPath + info.Hash + ".wasm"
		if b, err = get(ctx, u.String()); err != nil {
			return nil, "", fmt.Errorf("fetch mutator %s: %w", info.Hash, err)
		}
		if hashOf(b) != info.Hash {
			return nil, "", fmt.Errorf("fetch mutator %s: content does not match its hash", info.Hash)
		}
		if cache != "" {
			os.MkdirAll(filepath.Dir(cache), 0o755)
			os.WriteFile(cache, b, 0o644)
		}
	}
	m, err := wasmhost.Compile(ctx, b, wasmhost.Limits{})
	if err != nil {
		return nil, "", fmt.Errorf("load mutator %s: %w", info.Hash, err)
	}
	return m.Mutator(slog.New(slog.DiscardHandler)), info.Hash, nil
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
