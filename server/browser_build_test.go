package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/interrupt"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// memModule is a module mutator whose bytes are the smallest module the
// rewriter takes: one memory of one page, exported.
type memModule struct{ testmutator.Mutator }

var memModuleBytes = []byte("\x00asm\x01\x00\x00\x00" +
	"\x05\x03\x01\x00\x01" + // memory section: one memory, at least 1 page
	"\x07\x0a\x01\x06memory\x02\x00") // export section: "memory", memory 0

func (memModule) Hash() string {
	sum := sha256.Sum256(memModuleBytes)
	return hex.EncodeToString(sum[:])
}
func (memModule) Bytes() []byte { return memModuleBytes }

// TestBrowserBuild: the coordinator serves a document's module as the
// browser's host runs it, rewritten by package interrupt for the memory
// limit and rewriter version its name gives, cacheable for ever; a name
// with another version, a bad limit or an unknown hash gets 404.
func TestBrowserBuild(t *testing.T) {
	ts := startServer(t, Config{Mutator: func(string) engine.Mutator { return memModule{} }})
	get := func(path string) (*http.Response, []byte) { t.Helper(); return httpGet(t, ts, path) }
	hash := memModule{}.Hash()
	name := hash + "-p1024-v" + strconv.Itoa(interrupt.Version)
	// A module is served once a document has named it.
	if resp, _ := get(MutatorPath + name + ".wasm"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("before any document named it: HTTP %d", resp.StatusCode)
	}
	if resp, _ := get("/v1/docs/doc/mutator"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the document's mutator: HTTP %d", resp.StatusCode)
	}
	want, err := interrupt.InstrumentWith(memModuleBytes, interrupt.Options{Tick: true, MaxMemoryPages: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(want, memModuleBytes) {
		t.Fatal("the rewrite left the module unchanged: the test cannot tell the builds apart")
	}
	for range 2 { // built, then kept
		resp, body := get(MutatorPath + name + ".wasm")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Fatalf("GET %s: HTTP %d, %d bytes; want the rewritten module's %d", name, resp.StatusCode, len(body), len(want))
		}
		if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/wasm" || cc != "public, max-age=31536000, immutable" {
			t.Fatalf("GET %s: Content-Type %q, Cache-Control %q", name, ct, cc)
		}
	}
	if _, body := get(MutatorPath + hash + ".wasm"); !bytes.Equal(body, memModuleBytes) {
		t.Fatal("the module itself is no longer served as it is")
	}
	for _, bad := range []string{
		hash + "-p1024-v" + strconv.Itoa(interrupt.Version+1), // another rewriter
		hash + "-p0-v1", hash + "-p65537-v1", hash + "-p01024-v1", hash + "-px-v1", hash + "-p1024",
		"00" + hash[2:] + "-p1024-v1", // not a module of this coordinator
	} {
		if resp, _ := get(MutatorPath + bad + ".wasm"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: HTTP %d, want 404", bad, resp.StatusCode)
		}
	}
}
