package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/interrupt"
)

// ModuleMutator is a mutator compiled from a WebAssembly module: the
// coordinator tells clients its hash and serves its bytes, so every replica
// runs the same code.
type ModuleMutator interface {
	engine.Mutator
	// Hash returns the module's content hash (lowercase hex SHA-256).
	Hash() string
	// Bytes returns the module's bytes.
	Bytes() []byte
}

// modules remembers the bytes of every module a document used, by hash,
// and the browser builds of them made so far, by name.
type modules struct {
	mu      sync.Mutex
	bytes   map[string][]byte
	browser map[string][]byte // "<hash>-p<pages>-v<version>": see browserBuild
}

func (m *modules) add(mut engine.Mutator) string {
	mm, ok := mut.(ModuleMutator)
	if !ok {
		return ""
	}
	h := mm.Hash()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bytes == nil {
		m.bytes = map[string][]byte{}
	}
	if _, ok := m.bytes[h]; !ok {
		m.bytes[h] = mm.Bytes()
	}
	return h
}

func (m *modules) get(hash string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bytes[hash]
	return b, ok
}

// browserBuild returns the module named "<hash>-p<pages>-v<version>" as
// the browser's mutator host runs it: rewritten by package interrupt to
// count loop iterations and bound memory to pages, for rewriter version
// interrupt.Version only. The worker used to rewrite every module itself,
// in Go compiled to wasm, and compile the result from bytes, for which V8
// keeps no code cache; served from here under a name that says what it
// holds, the browser caches the bytes and V8 its compiled code, like any
// immutable asset. The result is kept for the next client.
func (m *modules) browserBuild(name string) ([]byte, error) {
	hash, rest, ok := strings.Cut(name, "-p")
	pagesText, version, ok2 := strings.Cut(rest, "-v")
	if !ok || !ok2 {
		return nil, fmt.Errorf("not a browser build name")
	}
	pages, err := strconv.ParseUint(pagesText, 10, 32)
	if err != nil || pages == 0 || pages > mutatorhost.MaxMemoryPages || strconv.FormatUint(pages, 10) != pagesText {
		return nil, fmt.Errorf("bad memory limit %q", pagesText)
	}
	if version != strconv.Itoa(interrupt.Version) {
		return nil, fmt.Errorf("rewriter version %q is not this coordinator's (%d)", version, interrupt.Version)
	}
	m.mu.Lock()
	b, found := m.bytes[hash]
	built, done := m.browser[name]
	m.mu.Unlock()
	if !found {
		return nil, fmt.Errorf("no module %s", hash)
	}
	if done {
		return built, nil
	}
	built, err = interrupt.InstrumentWith(b, interrupt.Options{Tick: true, MaxMemoryPages: uint32(pages)})
	if err != nil {
		return nil, fmt.Errorf("rewrite module %s: %w", hash, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.browser == nil {
		m.browser = map[string][]byte{}
	}
	// The name comes from the request: keep a few builds (clients ask for
	// the default limit), not one per memory limit anyone cares to ask.
	if len(m.browser) < maxBrowserBuilds {
		m.browser[name] = built
	}
	return built, nil
}

// maxBrowserBuilds bounds the browser builds a coordinator keeps.
const maxBrowserBuilds = 16

// MutatorPath is the URL path prefix under which mutator modules are served
// by hash: MutatorPath + hash + ".wasm", and as the browser runs them:
// MutatorPath + hash + "-p<pages>-v<version>.wasm" (see browserBuild).
const MutatorPath = "/v1/mutators/"

// serveModule serves a module's bytes, or its browser build; its URL names
// its content, so it may be cached for ever.
func (s *Server) serveModule(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("name"), ".wasm")
	if !ok {
		http.Error(w, "no such mutator module", http.StatusNotFound)
		return
	}
	b, found := s.modules.get(name)
	if !found && strings.Contains(name, "-p") {
		var err error
		if b, err = s.modules.browserBuild(name); err != nil {
			slog.Debug("no browser build of a mutator module", "name", name, "err", err)
		}
		found = err == nil
	}
	if !found {
		http.Error(w, "no such mutator module", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/wasm")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", `"`+name+`"`)
	w.Write(b)
}

// serveDocMutator tells which mutator module a document uses:
// {"hash": "...", "url": "/v1/mutators/<hash>.wasm"}, or an empty hash for a
// built-in Go mutator.
func (s *Server) serveDocMutator(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("doc")
	if err := ValidDocID(id); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out := map[string]string{"hash": s.modules.add(s.cfg.Mutator(id))}
	if out["hash"] != "" {
		out["url"] = MutatorPath + out["hash"] + ".wasm"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	json.NewEncoder(w).Encode(out)
}
