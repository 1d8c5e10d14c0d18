package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/sqlsync-go/sqlsync/shared/engine"
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

// modules remembers the bytes of every module a document used, by hash.
type modules struct {
	mu    sync.Mutex
	bytes map[string][]byte
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

// MutatorPath is the URL path prefix under which mutator modules are served
// by hash: MutatorPath + hash + ".wasm".
const MutatorPath = "/v1/mutators/"

// serveModule serves a module's bytes; its URL names its content, so it
// may be cached for ever.
func (s *Server) serveModule(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	hash, ok := strings.CutSuffix(name, ".wasm")
	b, found := s.modules.get(hash)
	if !ok || !found {
		http.Error(w, "no such mutator module", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/wasm")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", `"`+hash+`"`)
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
