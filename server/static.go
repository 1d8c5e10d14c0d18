package server

import (
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// StaticDir returns a handler serving the files under dir, like
// http.FileServer, that also serves a file's pre-compressed copy (name.br
// or name.gz beside it) to clients that accept that encoding, and serves
// .wasm as application/wasm so that browsers can compile it while it
// downloads. A pre-compressed response carries the uncompressed size in
// X-Decoded-Content-Length, for download progress.
//
// Files under /assets/ (where Vite and similar bundlers put files whose
// names carry a content hash) are cached for a year as immutable; every
// other file (index.html, the worker, the wasm bundle) must be revalidated
// (no-cache), so a new build is picked up on the next load.
func StaticDir(dir string) http.Handler {
	return &staticDir{root: dir, files: http.FileServer(http.Dir(dir))}
}

type staticDir struct {
	root  string
	files http.Handler
}

// encodings are the pre-compressed copies tried, best first.
var encodings = []struct{ name, ext string }{{"br", ".br"}, {"gzip", ".gz"}}

func (s *staticDir) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := path.Clean("/" + r.URL.Path)
	if ctype := contentType(name); ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.Header().Set("Cache-Control", cacheControl(name))
	if r.Method != http.MethodGet && r.Method != http.MethodHead || strings.HasSuffix(r.URL.Path, "/") {
		s.files.ServeHTTP(w, r)
		return
	}
	full := filepath.Join(s.root, filepath.FromSlash(name))
	orig, err := os.Stat(full)
	if err != nil || orig.IsDir() {
		s.files.ServeHTTP(w, r)
		return
	}
	accept := r.Header.Get("Accept-Encoding")
	for _, enc := range encodings {
		if !accepts(accept, enc.name) {
			continue
		}
		f, err := os.Open(full + enc.ext)
		if err != nil {
			continue
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil || info.IsDir() {
			continue
		}
		h := w.Header()
		h.Set("Content-Encoding", enc.name)
		h.Add("Vary", "Accept-Encoding")
		h.Set("X-Decoded-Content-Length", strconv.FormatInt(orig.Size(), 10))
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "application/octet-stream")
		}
		// The validators must differ from the uncompressed file's.
		h.Set("Etag", strconv.Quote(enc.name+"-"+strconv.FormatInt(info.ModTime().UnixNano(), 36)+"-"+strconv.FormatInt(info.Size(), 36)))
		http.ServeContent(w, r, name, orig.ModTime(), f)
		return
	}
	w.Header().Add("Vary", "Accept-Encoding")
	s.files.ServeHTTP(w, r)
}

// contentType returns the MIME type to serve name with, or "" to let the
// file server decide.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".wasm":
		return "application/wasm"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	}
	return mime.TypeByExtension(path.Ext(name))
}

// cacheControl returns the Cache-Control header for name: immutable for
// the content-hashed files under /assets/, revalidate for the rest.
func cacheControl(name string) string {
	if strings.HasPrefix(name, "/assets/") {
		return "public, max-age=31536000, immutable"
	}
	return "no-cache"
}

// accepts reports whether an Accept-Encoding header value allows enc.
func accepts(header, enc string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), enc) {
			continue
		}
		params = strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		if q, ok := strings.CutPrefix(params, "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}
