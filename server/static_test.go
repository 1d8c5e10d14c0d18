package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestStaticDir(t *testing.T) {
	dir := t.TempDir()
	wasm := bytes.Repeat([]byte("\x00asm wasm bytes "), 100)
	os.WriteFile(filepath.Join(dir, "app.wasm"), wasm, 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(wasm)
	zw.Close()
	os.WriteFile(filepath.Join(dir, "app.wasm.gz"), gz.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "app.wasm.br"), []byte("brotli bytes"), 0o644)
	os.WriteFile(filepath.Join(dir, "page.html"), []byte("<p>hi</p>"), 0o644)
	os.WriteFile(filepath.Join(dir, "worker.js"), []byte("1"), 0o644)
	h := StaticDir(dir)

	get := func(path, accept string) *http.Response {
		req := httptest.NewRequest("GET", path, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	for _, c := range []struct {
		name, path, accept, encoding, ctype string
		body                                []byte
	}{
		{"brotli", "/app.wasm", "gzip, deflate, br", "br", "application/wasm", []byte("brotli bytes")},
		{"gzip", "/app.wasm", "gzip", "gzip", "application/wasm", gz.Bytes()},
		{"br refused", "/app.wasm", "br;q=0, gzip", "gzip", "application/wasm", gz.Bytes()},
		{"identity", "/app.wasm", "", "", "application/wasm", wasm},
		{"no copies", "/page.html", "gzip, br", "", "text/html; charset=utf-8", []byte("<p>hi</p>")},
		{"js", "/worker.js", "", "", "text/javascript; charset=utf-8", []byte("1")},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := get(c.path, c.accept)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Encoding"); got != c.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, c.encoding)
			}
			if got := resp.Header.Get("Content-Type"); got != c.ctype {
				t.Errorf("Content-Type %q, want %q", got, c.ctype)
			}
			if !bytes.Equal(body, c.body) {
				t.Errorf("body %q..., want %q...", body[:min(8, len(body))], c.body[:min(8, len(c.body))])
			}
			if c.encoding != "" && resp.Header.Get("X-Decoded-Content-Length") != "1600" {
				t.Errorf("X-Decoded-Content-Length %q", resp.Header.Get("X-Decoded-Content-Length"))
			}
		})
	}
	if resp := get("/../etc/passwd", "gzip"); resp.StatusCode != 404 {
		t.Errorf("path outside the directory: status %d", resp.StatusCode)
	}
	if resp := get("/", ""); resp.StatusCode != 200 {
		t.Errorf("directory index: status %d", resp.StatusCode)
	}
}
