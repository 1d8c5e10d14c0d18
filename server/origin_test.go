package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// logBuffer collects a logger's text lines, for tests that check what was
// logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lines returns the logged lines that contain every one of parts.
func (b *logBuffer) lines(parts ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if l != "" && !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) }) {
			out = append(out, l)
		}
	}
	return out
}

// fakeModule is the todo mutator posing as a WebAssembly module, so that
// the coordinator serves "its" bytes.
type fakeModule struct{ testmutator.Mutator }

var fakeModuleBytes = []byte("\x00asm\x01\x00\x00\x00")

func (fakeModule) Hash() string {
	sum := sha256.Sum256(fakeModuleBytes)
	return hex.EncodeToString(sum[:])
}
func (fakeModule) Bytes() []byte { return fakeModuleBytes }

// corsRequest sends method to path with origin (none if empty) and returns
// the response, its body read and closed.
func corsRequest(t *testing.T, ts *testServer, method, path, origin string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+ts.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if method == http.MethodOptions {
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "x-app-version")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func varyHasOrigin(resp *http.Response) bool {
	for _, v := range resp.Header.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Origin") {
				return true
			}
		}
	}
	return false
}

// TestCrossOrigin: the mutator endpoints answer CORS (and its preflight)
// with the same allow-list as the WebSocket origin check; the coordinator's
// own origin is allowed although the list names another; a refused origin
// gets HTTP 403 without CORS headers, on both, and a Warn line naming it.
func TestCrossOrigin(t *testing.T) {
	const app = "http://127.0.0.1:4173" // a Vite preview server
	var logs logBuffer
	ts := startServer(t, Config{
		AllowedOrigins: []string{app},
		Mutator:        func(string) engine.Mutator { return fakeModule{} },
		Logger:         logs.logger(),
	})
	own := "http://" + ts.addr
	paths := []string{"/v1/docs/doc/mutator", MutatorPath + fakeModule{}.Hash() + ".wasm"}

	for _, origin := range []string{app, "HTTP://127.0.0.1:4173", own, ""} {
		for _, path := range paths {
			resp := corsRequest(t, ts, http.MethodGet, path, origin)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s from %q: HTTP %d", path, origin, resp.StatusCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
				t.Fatalf("GET %s from %q: Access-Control-Allow-Origin %q", path, origin, got)
			}
			if !varyHasOrigin(resp) {
				t.Fatalf("GET %s from %q: Vary %q lacks Origin", path, origin, resp.Header.Values("Vary"))
			}
			if origin == "" {
				continue
			}
			resp = corsRequest(t, ts, http.MethodOptions, path, origin)
			h := resp.Header
			if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") ||
				h.Get("Access-Control-Allow-Headers") != "x-app-version" || !varyHasOrigin(resp) {
				t.Fatalf("preflight %s from %q: HTTP %d %v", path, origin, resp.StatusCode, h)
			}
		}
		if origin != "" {
			checkOriginDial(t, ts, origin, true, "")
		}
	}

	const evil = "https://evil.example"
	for _, path := range paths {
		for _, method := range []string{http.MethodGet, http.MethodOptions} {
			resp := corsRequest(t, ts, method, path, evil)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s %s from %s: HTTP %d, want 403", method, path, evil, resp.StatusCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Fatalf("%s %s from %s: Access-Control-Allow-Origin %q", method, path, evil, got)
			}
		}
	}
	if got := logs.lines("level=WARN", "origin="+evil, "path=/v1/docs/doc/mutator", "endpoint=cors"); len(got) != 1 {
		t.Fatalf("want one Warn line for the CORS refusal of %s (then rate-limited), got %q in\n%s", evil, got, logs.String())
	}

	const evilWS = "https://ws.evil.example"
	for range 20 {
		checkOriginDial(t, ts, evilWS, false, "")
	}
	if got := logs.lines("level=WARN", "origin="+evilWS, "path="+SyncPath, "endpoint=websocket"); len(got) != 1 {
		t.Fatalf("want one Warn line for 20 WebSocket refusals of %s, got %q in\n%s", evilWS, got, logs.String())
	}

	t.Run("any origin", func(t *testing.T) {
		ts := startServer(t, Config{AllowedOrigins: []string{"*"}})
		resp := corsRequest(t, ts, http.MethodGet, paths[0], "https://anywhere.example")
		if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != http.StatusOK || got != "https://anywhere.example" {
			t.Fatalf("HTTP %d, Access-Control-Allow-Origin %q", resp.StatusCode, got)
		}
	})
	t.Run("own origin only", func(t *testing.T) {
		ts := startServer(t, Config{})
		resp := corsRequest(t, ts, http.MethodOptions, paths[0], "http://"+ts.addr)
		if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != http.StatusNoContent || got != "http://"+ts.addr {
			t.Fatalf("HTTP %d, Access-Control-Allow-Origin %q", resp.StatusCode, got)
		}
		resp = corsRequest(t, ts, http.MethodGet, paths[0], app)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("GET from %s with no allow-list: HTTP %d, want 403", app, resp.StatusCode)
		}
	})
}
