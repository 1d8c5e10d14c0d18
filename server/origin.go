package server

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// origins decides which browser origins may use the sync endpoint (the
// WebSocket origin check) and read the mutator endpoints (CORS): the
// coordinator's own origin, always, and those of Config.AllowedOrigins.
// Requests without an Origin header are not from a browser's cross-origin
// call and always pass: tokens guard the sync endpoint, and the mutator
// endpoints are public.
type origins struct {
	allowed []string
	any     bool
	log     *slog.Logger

	mu     sync.Mutex
	logged map[string]refusals // by origin
}

// refusals counts refusals since the last log line about them (one
// origin's, or the inspector's).
type refusals struct {
	at         time.Time
	suppressed int
}

// due reports whether a refusal at now is to be logged (none was within
// refusalLogEvery), with the refusals not logged since the last line;
// otherwise it counts this one.
func (f *refusals) due(now time.Time) (skipped int, ok bool) {
	if !f.at.IsZero() && now.Sub(f.at) < refusalLogEvery {
		f.suppressed++
		return 0, false
	}
	skipped, f.at, f.suppressed = f.suppressed, now, 0
	return skipped, true
}

// refusalLogEvery is how often at most one origin's refusals are logged;
// the refusals in between are counted in the next line.
const refusalLogEvery = time.Minute

// maxLoggedOrigins bounds the origins whose refusals are remembered, so a
// flood of made-up origins cannot grow the map: past it, it starts afresh.
const maxLoggedOrigins = 1024

func newOrigins(allowed []string, log *slog.Logger) *origins {
	o := &origins{log: log, logged: map[string]refusals{}}
	for _, a := range allowed {
		a = strings.TrimSuffix(strings.TrimSpace(a), "/")
		switch a {
		case "":
		case "*":
			o.any = true
		default:
			o.allowed = append(o.allowed, a)
		}
	}
	return o
}

// allows reports whether r's Origin (if any) may use the endpoints.
func (o *origins) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || o.any || own(origin, r) {
		return true
	}
	for _, a := range o.allowed {
		if strings.EqualFold(a, origin) {
			return true
		}
	}
	return false
}

// own reports whether origin is the coordinator's own: an http or https
// origin whose host (and port) is the request's Host. The scheme is not
// compared, so that a TLS-terminating proxy that forwards the Host works.
func own(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" {
		return false
	}
	return u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// checkWebSocket is the upgrader's CheckOrigin: it logs a refusal, which the
// upgrader answers with HTTP 403.
func (o *origins) checkWebSocket(r *http.Request) bool {
	if o.allows(r) {
		return true
	}
	o.refused(r, "websocket")
	return false
}

// refused logs, at most once a minute per origin, that r's origin was refused.
func (o *origins) refused(r *http.Request, what string) {
	origin := r.Header.Get("Origin")
	o.mu.Lock()
	f := o.logged[origin]
	skipped, ok := f.due(time.Now())
	if ok && len(o.logged) >= maxLoggedOrigins {
		clear(o.logged)
	}
	o.logged[origin] = f
	o.mu.Unlock()
	if !ok {
		return
	}
	o.log.Warn("origin not allowed: add it to --allowed-origins (Config.AllowedOrigins) if it serves your app",
		"origin", origin, "path", r.URL.Path, "endpoint", what, "remote", r.RemoteAddr,
		"suppressed", skipped)
}

// cors wraps a GET handler of a public endpoint: an allowed origin gets
// Access-Control-Allow-Origin, a refused one HTTP 403 (logged).
func (o *origins) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" {
			h(w, r)
			return
		}
		if !o.allows(r) {
			o.refused(r, "cors")
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Expose-Headers", "ETag")
		h(w, r)
	}
}

// preflight answers the CORS preflight (OPTIONS) of a public GET endpoint.
func (o *origins) preflight(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Add("Vary", "Origin")
	hd.Add("Vary", "Access-Control-Request-Method")
	hd.Add("Vary", "Access-Control-Request-Headers")
	hd.Set("Allow", "GET, HEAD, OPTIONS")
	origin := r.Header.Get("Origin")
	if origin == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !o.allows(r) {
		o.refused(r, "cors")
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	hd.Set("Access-Control-Allow-Origin", origin)
	hd.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		// The endpoints take no credentials and read no request header, so
		// any header the page wants to send is harmless.
		hd.Set("Access-Control-Allow-Headers", req)
	}
	hd.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}
