package server

import (
	"cmp"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// The inspector: a read-only view of the documents this coordinator has
// open (docs/inspector.md). Its page, InspectorPath, polls the JSON API
// under InspectAPIPath; `sqlsync inspect` reads the same API. The API needs
// a token with role admin when a token key is configured; in the open
// development mode it answers loopback requests only (docs/security.md).

// InspectorPath is the URL path of the inspector's page.
const InspectorPath = "/inspector"

// InspectAPIPath is the URL path prefix of the inspector's JSON API.
const InspectAPIPath = "/v1/inspect/"

// Bounds of what one inspector answer lists.
const (
	// maxInspectDocs is the most documents the list shows (the first by ID).
	maxInspectDocs = 1000
	// maxInspectClients is the most connections a document's view shows.
	maxInspectClients = 200
	// maxInspectBody bounds a request body (the console's SQL and options).
	maxInspectBody = 64 << 10
)

//go:embed inspector
var inspectorFiles embed.FS

// inspectorAssets are the page's files, by URL path.
var inspectorAssets = map[string]struct{ file, ctype string }{
	InspectorPath:                    {"inspector/index.html", "text/html; charset=utf-8"},
	InspectorPath + "/inspector.js":  {"inspector/inspector.js", "text/javascript; charset=utf-8"},
	InspectorPath + "/inspector.css": {"inspector/inspector.css", "text/css; charset=utf-8"},
}

// inspectState is the server's inspector state.
type inspectState struct {
	once    sync.Once
	console chan struct{} // a slot per console query running
	refused refusalLog
}

func (st *inspectState) init() {
	st.once.Do(func() { st.console = make(chan struct{}, consoleConcurrency) })
}

// registerInspector adds the inspector's page and API to mux.
func (s *Server) registerInspector(mux *http.ServeMux) {
	s.inspect.init()
	for path := range inspectorAssets {
		mux.HandleFunc("GET "+path, s.serveInspectorAsset)
	}
	mux.Handle("GET "+InspectorPath+"/{$}", http.RedirectHandler(InspectorPath, http.StatusFound))
	mux.HandleFunc("GET "+InspectAPIPath+"docs", s.inspectAPI(s.inspectDocs))
	mux.HandleFunc("GET "+InspectAPIPath+"docs/{doc}", s.inspectAPI(s.inspectDoc))
	mux.HandleFunc("POST "+InspectAPIPath+"docs/{doc}/query", s.inspectAPI(s.inspectQuery))
	// Anything else under the API is a JSON 404 or 405, not the app's page.
	mux.HandleFunc(InspectAPIPath, s.inspectAPI(func(w http.ResponseWriter, r *http.Request, _ *Claims) {
		inspectError(w, http.StatusNotFound, "not_found", "no such inspector endpoint: "+r.Method+" "+r.URL.Path+" (see docs/inspector.md)")
	}))
}

// serveInspectorAsset serves the page's files. They hold no data (the
// page fetches it with the admin token the person gives it), so they are
// served to whoever may reach the inspector at all: anyone with a token
// key configured, loopback only in the open development mode.
func (s *Server) serveInspectorAsset(w http.ResponseWriter, r *http.Request) {
	if code, msg := s.inspectorReachable(r); code != 0 {
		s.inspect.refused.note(s, r, code, msg)
		http.Error(w, msg, code)
		return
	}
	a := inspectorAssets[r.URL.Path]
	b, err := inspectorFiles.ReadFile(a.file)
	if err != nil {
		http.Error(w, "inspector file missing: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.Write(b)
}

// inspectorReachable refuses, with an HTTP status and why, what may not
// reach the inspector at all whatever its token: a browser's cross-origin
// request (the page is served by the coordinator itself, so the API needs
// no CORS), and in the open development mode anything but loopback.
func (s *Server) inspectorReachable(r *http.Request) (int, string) {
	if origin := r.Header.Get("Origin"); origin != "" && !own(origin, r) {
		return http.StatusForbidden, fmt.Sprintf("forbidden: the inspector refuses cross-origin requests (origin %s); open it on the coordinator's own address", origin)
	}
	if s.cfg.Verifier != nil {
		return 0, ""
	}
	// Open mode: no tokens, so the peer and the name it used must both be
	// loopback. The Host check keeps a web page that rebinds its own DNS
	// name to 127.0.0.1 from reading the inspector through the browser.
	if !loopbackAddr(r.RemoteAddr) || !loopbackHost(r.Host) {
		return http.StatusForbidden, "forbidden: in open development mode (no token key) the inspector answers only on loopback (127.0.0.1, ::1 or localhost); configure a token key and use a token with role admin to inspect from elsewhere"
	}
	return 0, ""
}

// loopbackAddr reports whether a host:port address is a loopback IP.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackHost reports whether a Host header names the loopback interface.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// inspectHandler is an inspector API handler, called with the token's
// claims once they are checked.
type inspectHandler func(w http.ResponseWriter, r *http.Request, claims *Claims)

// inspectAPI checks that r may use the inspector's API and calls h: the
// request must be reachable (inspectorReachable) and, with a token key,
// carry a token with role admin in its Authorization header (Bearer).
// Refusals are 401 (no token, or a bad or expired one) or 403 (a token of
// another role, a cross-origin request, not loopback in open mode), with
// a JSON body saying why.
func (s *Server) inspectAPI(h inspectHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if code, msg := s.inspectorReachable(r); code != 0 {
			s.inspect.refused.note(s, r, code, msg)
			inspectError(w, code, "forbidden", msg)
			return
		}
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims, err := s.cfg.Verifier.VerifyAdmin(strings.TrimSpace(token))
		if err != nil {
			code, kind, msg := http.StatusUnauthorized, "unauthorized", "unauthorized: "+err.Error()
			switch {
			case errors.Is(err, ErrNoToken):
				msg = "unauthorized: no token: the inspector needs a token with role admin, sent as Authorization: Bearer TOKEN (sqlsync token --role admin mints one)"
			case errors.Is(err, ErrNotAdmin):
				code, kind, msg = http.StatusForbidden, "forbidden", "forbidden: "+err.Error()+": the inspector needs a token with role admin"
			}
			s.inspect.refused.note(s, r, code, msg)
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sqlsync inspector"`)
			}
			inspectError(w, code, kind, msg)
			return
		}
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			inspectError(w, http.StatusServiceUnavailable, "shutdown", "the coordinator is shutting down")
			return
		}
		h(w, r, claims)
	}
}

// refusalLog logs the inspector's refusals at Warn, at most one line a
// minute (counting the refusals it stands for), so that a flood of
// unauthenticated requests cannot flood the log.
type refusalLog struct {
	mu sync.Mutex
	refusals
}

func (l *refusalLog) note(s *Server, r *http.Request, code int, msg string) {
	l.mu.Lock()
	n, ok := l.due(time.Now())
	l.mu.Unlock()
	if !ok {
		return
	}
	s.log.Warn("inspector request refused", "status", code, "reason", msg, "path", r.URL.Path, "remote", r.RemoteAddr, "refusals_not_logged", n)
}

// inspectError writes an inspector API error: {"error": msg, "code": kind}.
func inspectError(w http.ResponseWriter, status int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg, "code": kind})
}

// writeInspectJSON writes v as the JSON answer.
func writeInspectJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// InspectDocSummary is one open document in the inspector's list.
type InspectDocSummary struct {
	ID        string `json:"id"`
	LSN       uint64 `json:"lsn"`
	PageCount uint32 `json:"page_count"`
	Bytes     int64  `json:"bytes"`
	Clients   int    `json:"clients"`
	// MutatorHash is the module's SHA-256 (hex), "" for a Go mutator.
	MutatorHash string `json:"mutator_hash"`
}

// InspectOverview is the answer of GET /v1/inspect/docs.
type InspectOverview struct {
	// OpenMode is set in the open development mode (no token key).
	OpenMode bool `json:"open_mode"`
	// Documents are the open documents the token grants, by ID, at most
	// maxInspectDocs; Total counts them all.
	Documents []InspectDocSummary `json:"documents"`
	Total     int                 `json:"total"`
	// Connections counts the clients connected to the coordinator, to any
	// document.
	Connections int       `json:"connections"`
	Time        time.Time `json:"time"`
}

// InspectMutator describes the mutator a document runs.
type InspectMutator struct {
	// Kind is "wasm" (a WebAssembly module, served to clients by hash) or
	// "go" (a Go mutator built into the coordinator).
	Kind string `json:"kind"`
	Hash string `json:"hash,omitempty"`
	// ABIVersion is the mutator ABI the module implements (docs/mutator-abi.md).
	ABIVersion int    `json:"abi_version,omitempty"`
	Bytes      int    `json:"bytes,omitempty"`
	URL        string `json:"url,omitempty"`
}

// InspectClient is one connection to a document.
type InspectClient struct {
	ClientID string `json:"client_id"`
	Remote   string `json:"remote"`
	// Role is "read" or "write" (as the token allows).
	Role string `json:"role"`
	// Forwarded is set for a connection another coordinator of the cluster
	// forwards here.
	Forwarded bool `json:"forwarded"`
	// HelloLSN is the LSN the client had when it connected; SentLSN the LSN
	// of the last diff written to it; Lag the document's LSN minus SentLSN.
	HelloLSN uint64 `json:"hello_lsn"`
	SentLSN  uint64 `json:"sent_lsn"`
	Lag      uint64 `json:"lag"`
	// Pending counts the mutations it pushed that wait to be applied.
	Pending int64 `json:"pending"`
	// RejectionsQueued counts Rejected frames waiting to be sent to it.
	RejectionsQueued int `json:"rejections_queued"`
	// LastSeq is the last seq of this client the coordinator applied (from
	// the document's clients table): what the client learns is done.
	LastSeq     uint64    `json:"last_seq"`
	ConnectedAt time.Time `json:"connected_at"`
}

// InspectPresence is one presence of a document.
type InspectPresence struct {
	// ID is the coordinator's name for it: the connection, "/", its key.
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	ReadOnly bool   `json:"read_only"`
	// State is its JSON state, as published.
	State json.RawMessage `json:"state"`
	// Expires is when it goes unless its tab refreshes it.
	Expires time.Time `json:"expires"`
}

// InspectDoc is the answer of GET /v1/inspect/docs/{doc}.
type InspectDoc struct {
	InspectDocSummary
	// SchemaVersion is the document's PRAGMA user_version: the mutator's
	// migrations, by its own count.
	SchemaVersion int64          `json:"schema_version"`
	Mutator       InspectMutator `json:"mutator"`
	// ClientList is the connections (at most maxInspectClients), by client
	// ID; Clients counts them all.
	ClientList []InspectClient `json:"client_list"`
	// Presences are what the connections publish of themselves (at most
	// maxInspectClients, by ID; PresenceTotal counts them all), as the
	// others see them: never written to the document.
	Presences     []InspectPresence `json:"presences"`
	PresenceTotal int               `json:"presence_total"`
	// Commits and Rejections are the recent ones since the document was
	// opened, newest first (at most 50 each).
	Commits    []inspectCommit    `json:"commits"`
	Rejections []inspectRejection `json:"rejections"`
	Time       time.Time          `json:"time"`
}

// summary returns d's line of the list.
func (d *document) summary() InspectDocSummary {
	count := d.store.PageCount()
	d.mu.Lock()
	clients := len(d.conns)
	d.mu.Unlock()
	return InspectDocSummary{
		ID: d.id, LSN: d.coord.LSN(), PageCount: count, Bytes: int64(count) * vfs.PageSize,
		Clients: clients, MutatorHash: d.hash,
	}
}

func (s *Server) inspectDocs(w http.ResponseWriter, r *http.Request, claims *Claims) {
	s.mu.Lock()
	var docs []*document
	for id, d := range s.docs {
		if claims.Grants(id) {
			docs = append(docs, d)
		}
	}
	conns := len(s.conns)
	s.mu.Unlock()
	slices.SortFunc(docs, func(a, b *document) int { return strings.Compare(a.id, b.id) })
	out := InspectOverview{OpenMode: s.cfg.Verifier == nil, Total: len(docs), Connections: conns, Time: time.Now(),
		Documents: []InspectDocSummary{}}
	for _, d := range docs[:min(len(docs), maxInspectDocs)] {
		out.Documents = append(out.Documents, d.summary())
	}
	writeInspectJSON(w, out)
}

// openDocFor returns the open document r names, held open until the
// returned release is called; it writes the refusal and returns nil if the
// ID is bad, not granted by claims, or not open. It never opens one: the
// inspector shows what is open, and looking must not create a document.
func (s *Server) openDocFor(w http.ResponseWriter, r *http.Request, claims *Claims) (*document, func()) {
	id := r.PathValue("doc")
	if err := ValidDocID(id); err != nil {
		inspectError(w, http.StatusBadRequest, "bad_request", err.Error())
		return nil, nil
	}
	if !claims.Grants(id) {
		inspectError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("forbidden: %v: %q", ErrNotGranted, id))
		return nil, nil
	}
	s.mu.Lock()
	d := s.docs[id]
	if d != nil && !s.closed {
		d.mu.Lock()
		d.refs++
		d.mu.Unlock()
		// Joining the wait group under s.mu, as serveSync does, makes
		// Close wait for this request before it closes the documents.
		s.wg.Add(1)
	}
	closed := s.closed
	s.mu.Unlock()
	if d == nil || closed {
		inspectError(w, http.StatusNotFound, "not_found", fmt.Sprintf("document %q is not open on this coordinator (a document is open while clients are connected to it, and for a while after)", id))
		return nil, nil
	}
	return d, func() { s.release(d); s.wg.Done() }
}

func (s *Server) inspectDoc(w http.ResponseWriter, r *http.Request, claims *Claims) {
	d, release := s.openDocFor(w, r, claims)
	if d == nil {
		return
	}
	defer release()
	out := InspectDoc{InspectDocSummary: d.summary(), Mutator: mutatorInfo(d), Time: time.Now()}
	if rows, err := d.coord.Query(`PRAGMA user_version`); err == nil && len(rows.Values) == 1 {
		out.SchemaVersion, _ = rows.Values[0][0].(int64)
	}
	d.mu.Lock()
	for c := range d.conns {
		role := string(RoleWrite)
		if c.readOnly {
			role = string(RoleRead)
		}
		c.mu.Lock()
		queued := len(c.rejected)
		c.mu.Unlock()
		out.ClientList = append(out.ClientList, InspectClient{
			ClientID: c.clientID, Remote: c.insp.remote, Role: role, Forwarded: c.forwarded,
			HelloLSN: c.insp.hello, SentLSN: c.insp.sent.Load(), Pending: max(c.queued.Load(), 0),
			RejectionsQueued: queued, ConnectedAt: c.insp.since,
		})
	}
	d.mu.Unlock()
	slices.SortFunc(out.ClientList, func(a, b InspectClient) int {
		return cmp.Or(strings.Compare(a.ClientID, b.ClientID), a.ConnectedAt.Compare(b.ConnectedAt))
	})
	out.ClientList = out.ClientList[:min(len(out.ClientList), maxInspectClients)]
	if out.ClientList == nil {
		out.ClientList = []InspectClient{}
	}
	// The LSN now, not the summary's: a commit in between must not show
	// as a negative lag.
	lsn := d.coord.LSN()
	for i := range out.ClientList {
		c := &out.ClientList[i]
		if c.SentLSN < lsn {
			c.Lag = lsn - c.SentLSN
		}
	}
	s.lastSeqs(d, out.ClientList)
	out.Presences, out.PresenceTotal = d.presence.snapshot(maxInspectClients)
	out.Commits, out.Rejections = d.insp.snapshot()
	writeInspectJSON(w, out)
}

// lastSeqs fills in each client's last applied seq from the document's
// clients table, in one query.
func (s *Server) lastSeqs(d *document, clients []InspectClient) {
	if len(clients) == 0 {
		return
	}
	ids := make([]string, len(clients))
	for i, c := range clients {
		ids[i] = c.ClientID
	}
	seqs, err := d.coord.LastSeqs(ids)
	if err != nil {
		d.log.Debug("inspector: read the clients table", "err", err)
		return
	}
	for i := range clients {
		clients[i].LastSeq = seqs[clients[i].ClientID]
	}
}

// mutatorInfo describes the mutator d runs.
func mutatorInfo(d *document) InspectMutator {
	mm, ok := d.mut.(ModuleMutator)
	if !ok {
		return InspectMutator{Kind: "go"}
	}
	return InspectMutator{Kind: "wasm", Hash: mm.Hash(), ABIVersion: abi.Version, Bytes: len(mm.Bytes()), URL: MutatorPath + mm.Hash() + ".wasm"}
}
