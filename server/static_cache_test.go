package server

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestStaticDirCacheControl(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "assets"), 0o755)
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>app</p>"), 0o644)
	os.WriteFile(filepath.Join(dir, "assets", "index-B3xq9Zk1.js"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(dir, "sqlsync.wasm"), []byte("\x00asm"), 0o644)
	h := StaticDir(dir)
	for _, c := range []struct{ path, want string }{
		{"/", "no-cache"},
		{"/index.html", "no-cache"},
		{"/sqlsync.wasm", "no-cache"},
		{"/assets/index-B3xq9Zk1.js", "public, max-age=31536000, immutable"},
	} {
		t.Run(c.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
			if got, want := rec.Header().Get("Cache-Control"), c.want; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}
