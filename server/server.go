// Package server is the sqlsync coordinator: it serves many documents at
// once, each with a single writer goroutine, over WebSocket, and keeps their
// durable state in a data directory.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hack-pad/hackpadfs"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sqlsync-go/sqlsync/internal/dirlock"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
)

// Config configures a Server. Zero fields take the defaults New documents.
type Config struct {
	// DataDir holds the documents' durable state (required).
	DataDir string
	// Mutator returns the mutator for a document (required). A
	// ModuleMutator's module is served to clients by its hash, so that
	// they run the same code.
	Mutator func(docID string) engine.Mutator
	// Limits bound every frame a client sends.
	Limits protocol.Limits
	// IdleTimeout closes a document this long after its last connection
	// leaves; default 1 minute.
	IdleTimeout time.Duration
	// MutationTimeout bounds one mutation on the coordinator; default 5 s.
	MutationTimeout time.Duration
	// BatchTimeout bounds how long a document's writer starts new
	// mutations in one group commit, so one client's push cannot stall the
	// others; what it leaves out is applied first in the next group
	// commit. Default twice MutationTimeout.
	BatchTimeout time.Duration
	// MaxBatch is the most mutations in one group commit; default 1000.
	MaxBatch int
	// HelloTimeout is how long a new connection has to say Hello; default 10 s.
	HelloTimeout time.Duration
	// WriteTimeout drops a client that does not take a frame in this long;
	// default 30 s.
	WriteTimeout time.Duration
	// Verifier checks access tokens; nil is the open development mode in
	// which every client may read and write every document.
	Verifier *Verifier
	// AllowedOrigins lists the browser origins (scheme://host[:port]),
	// besides the coordinator's own, that may open the sync endpoint and
	// read the mutator endpoints (CORS); "*" allows any. The own origin
	// (an Origin whose host is the request's Host) is always allowed.
	// Requests without an Origin header (not from a browser) are always
	// allowed: tokens guard those. Refusals are logged at Warn.
	AllowedOrigins []string
	// MaxConnsPerDoc bounds the connections to one document; default 1000.
	MaxConnsPerDoc int
	// MaxQueuedPerConn bounds the mutations one connection may have waiting
	// to be applied; default 10000.
	MaxQueuedPerConn int
	// RatePerConn and RateBurst bound the mutations per second one
	// connection may send; defaults 2000/s with bursts of 4000.
	RatePerConn float64
	RateBurst   int
	// MaxDocBytes bounds a document's size: a mutation that would grow it
	// beyond is rejected; default 1 GiB.
	MaxDocBytes int64
	// Cluster, with a JetStreamJournal, lets several coordinators share
	// the documents: one owner each, by lease (see Cluster).
	Cluster *Cluster
	// Journal keeps the documents' pages; default: the local disk under
	// DataDir. DataDir holds the rest of a document's state either way
	// (its client identities and recent rejections).
	Journal Journal
	// Presence bounds the ephemeral presence the connections publish
	// (see PresenceConfig); zero fields take its defaults.
	Presence PresenceConfig
	// Static, if set, serves everything that is not the sync endpoint.
	Static http.Handler
	// Logger receives structured logs; default slog.Default().
	Logger *slog.Logger
}

// Server serves documents. Create it with New; stop it with Close.
type Server struct {
	cfg      Config
	fsys     hackpadfs.FS
	log      *slog.Logger
	upgrader websocket.Upgrader
	metrics  *metrics
	modules  modules
	origins  *origins
	lock     *dirlock.Lock // the data directory's, released by Close
	kept     rejections    // recent rejections, for clients that reconnect
	inspect  inspectState  // the inspector's (inspect.go)

	// afterCommit, if set, is called by a document's writer after each
	// commit, before it queues the commit's rejections: for tests of what
	// connections see in between.
	afterCommit func()

	mu      sync.Mutex
	docs    map[string]*document
	opening map[string]chan struct{} // documents being opened, closed when done
	conns   map[*conn]bool
	closed  bool
	wg      sync.WaitGroup
}

// ErrClosed reports use of a closed server.
var ErrClosed = errors.New("server closed")

// dataLockName is the lock file in the data directory: one coordinator
// per data directory (see package dirlock).
const dataLockName = "lock"

// New returns a server over cfg.DataDir, creating it if needed. It locks
// the data directory until Close: while another process (or another Server
// in this one) holds it, New fails with an error wrapping
// [dirlock.ErrInUse], "data directory D is in use by another process".
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("new server: no data directory")
	}
	if cfg.Mutator == nil {
		return nil, errors.New("new server: no mutator: Config.Mutator must give every document the app's mutator")
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 1000
	}
	if cfg.HelloTimeout == 0 {
		cfg.HelloTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxConnsPerDoc == 0 {
		cfg.MaxConnsPerDoc = 1000
	}
	if cfg.MaxQueuedPerConn == 0 {
		cfg.MaxQueuedPerConn = 10000
	}
	if cfg.RatePerConn == 0 {
		cfg.RatePerConn = 2000
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = max(int(2*cfg.RatePerConn), cfg.Limits.WithDefaults().MaxMutationsPerPush)
	}
	if cfg.MaxDocBytes == 0 {
		cfg.MaxDocBytes = 1 << 30
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	presence, err := cfg.Presence.withDefaults(&cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	cfg.Presence = presence
	fsys, dir, err := dataFS(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	lock, err := dirlock.Acquire(fsys, dataLockName, "data directory "+dir)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if cfg.Journal == nil {
		cfg.Journal = diskJournal{fsys: fsys}
	}
	if cfg.Cluster != nil {
		if _, ok := cfg.Journal.(jetJournal); !ok {
			lock.Release()
			return nil, errors.New("new server: a Cluster needs a JetStreamJournal")
		}
		c := *cfg.Cluster
		if err := c.init(); err != nil {
			lock.Release()
			return nil, fmt.Errorf("new server: %w", err)
		}
		cfg.Cluster = &c
	}
	orig := newOrigins(cfg.AllowedOrigins, cfg.Logger)
	s := &Server{
		cfg:     cfg,
		origins: orig,
		lock:    lock,
		fsys:    fsys,
		log:     cfg.Logger,
		docs:    map[string]*document{},
		opening: map[string]chan struct{}{},
		conns:   map[*conn]bool{},
		metrics: newMetrics(),
		upgrader: websocket.Upgrader{
			ReadBufferSize:    32 << 10,
			WriteBufferSize:   32 << 10,
			EnableCompression: true,
			CheckOrigin:       orig.checkWebSocket,
		},
	}
	if cfg.Verifier == nil {
		s.log.Warn("no token key configured: OPEN DEVELOPMENT MODE, every client may read and write every document")
	}
	return s, nil
}

// SyncPath is the URL path of the WebSocket endpoint.
const SyncPath = "/v1/sync"

// Handler returns the HTTP handler: the sync endpoint, /healthz, /metrics,
// the mutator endpoints (with CORS for the allowed origins), the inspector
// (InspectorPath, InspectAPIPath), and Static.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+SyncPath, s.serveSync)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("GET "+MutatorPath+"{name}", s.origins.cors(s.serveModule))
	mux.HandleFunc("OPTIONS "+MutatorPath+"{name}", s.origins.preflight)
	mux.HandleFunc("GET /v1/docs/{doc}/mutator", s.origins.cors(s.serveDocMutator))
	mux.HandleFunc("OPTIONS /v1/docs/{doc}/mutator", s.origins.preflight)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	s.registerInspector(mux)
	if s.cfg.Static != nil {
		mux.Handle("/", s.cfg.Static)
	}
	return mux
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	type owned struct {
		Doc   string `json:"doc"`
		Epoch uint64 `json:"epoch"` // the lease's revision
		LSN   uint64 `json:"lsn"`
	}
	var leases []owned
	s.mu.Lock()
	docs, conns, closed := len(s.docs), len(s.conns), s.closed
	for id, d := range s.docs {
		if d.lease != nil {
			leases = append(leases, owned{id, d.lease.rev.Load(), d.store.LSN()})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(leases, func(a, b owned) int { return strings.Compare(a.Doc, b.Doc) })
	leases = leases[:min(len(leases), maxHealthLeases)]
	w.Header().Set("Content-Type", "application/json")
	status := "ok"
	if closed {
		status = "shutting down"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	body := map[string]any{"status": status, "documents": docs, "connections": conns}
	if c := s.cfg.Cluster; c != nil {
		body["cluster"] = map[string]any{"node": c.node, "url": c.URL, "lease_ttl_s": c.TTL.Seconds(), "owned": leases}
	}
	json.NewEncoder(w).Encode(body)
}

// maxHealthLeases bounds the owned documents /healthz lists (the first
// by ID).
const maxHealthLeases = 100

// acquire returns the open document id, opening it if needed, and holds it
// open until release.
func (s *Server) acquire(ctx context.Context, id string) (*document, error) {
	if err := ValidDocID(id); err != nil {
		return nil, err
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if d := s.docs[id]; d != nil {
			d.mu.Lock()
			d.refs++
			d.mu.Unlock()
			s.mu.Unlock()
			return d, nil
		}
		if wait := s.opening[id]; wait != nil {
			s.mu.Unlock()
			<-wait
			continue
		}
		wait := make(chan struct{})
		s.opening[id] = wait
		s.mu.Unlock()

		d, err := s.openOwned(ctx, id)
		s.mu.Lock()
		if err == nil && s.closed {
			// Closed meanwhile: shut the store before anyone waiting on
			// the opening (Close among them) goes on.
			s.mu.Unlock()
			d.close()
			s.mu.Lock()
			delete(s.opening, id)
			close(wait)
			s.mu.Unlock()
			return nil, ErrClosed
		}
		delete(s.opening, id)
		close(wait)
		if err == nil {
			d.refs = 1
			s.docs[id] = d
			s.metrics.documents.Set(float64(len(s.docs)))
		}
		s.mu.Unlock()
		return d, err
	}
}

// openOwned opens document id; in a cluster, only once it holds the
// document's lease (else a *notOwnerError), which it then keeps renewed
// until the document closes.
func (s *Server) openOwned(ctx context.Context, id string) (*document, error) {
	if s.cfg.Cluster == nil {
		return openDocument(ctx, s, id)
	}
	l, err := s.cfg.Cluster.take(ctx, id)
	if err != nil {
		return nil, err
	}
	d, err := openDocument(ctx, s, id)
	if err != nil {
		l.release(s.log)
		return nil, err
	}
	d.log.Info("lease taken", "epoch", l.rev.Load())
	d.lease = l
	s.metrics.leases.Inc()
	l.start(d.log, func() { s.metrics.stepDowns.WithLabelValues("lease_lost").Inc(); s.stepDown(d) })
	return d, nil
}

// release lets go of a document; the last release starts its idle timer.
func (s *Server) release(d *document) {
	d.mu.Lock()
	d.refs--
	idle := d.refs == 0
	d.mu.Unlock()
	if !idle {
		return
	}
	time.AfterFunc(s.cfg.IdleTimeout, func() {
		s.mu.Lock()
		d.mu.Lock()
		still := d.refs == 0 && s.docs[d.id] == d
		var closed chan struct{}
		if still {
			delete(s.docs, d.id)
			s.metrics.documents.Set(float64(len(s.docs)))
			// Until the document is closed, acquire waits instead of
			// opening a second store on the same files: the writer may
			// still be committing a push from a client that has left.
			closed = make(chan struct{})
			s.opening[d.id] = closed
		}
		d.mu.Unlock()
		s.mu.Unlock()
		if still {
			if err := d.close(); err != nil {
				s.log.Error("close idle document", "doc", d.id, "err", err)
			}
			s.mu.Lock()
			delete(s.opening, d.id)
			s.mu.Unlock()
			close(closed)
		}
	})
}

// stepDown takes d out of service from its writer, once its journal fenced
// a commit (another coordinator wrote the document): its connections are
// told to reconnect, and the next acquire opens the document afresh from
// the journal, once d is closed.
func (s *Server) stepDown(d *document) {
	closed := make(chan struct{})
	s.mu.Lock()
	mine := s.docs[d.id] == d // else it is being closed already (idle, or shutdown)
	if mine {
		delete(s.docs, d.id)
		s.metrics.documents.Set(float64(len(s.docs)))
		s.opening[d.id] = closed
	}
	s.mu.Unlock()
	d.mu.Lock()
	for c := range d.conns {
		c.fail(protocol.CodeShutdown, "the document moved to another coordinator; reconnect")
	}
	d.mu.Unlock()
	if !mine {
		return
	}
	go func() {
		if err := d.close(); err != nil { // waits for the writer to return
			s.log.Error("close stepped-down document", "doc", d.id, "err", err)
		}
		s.mu.Lock()
		delete(s.opening, d.id)
		s.mu.Unlock()
		close(closed)
	}()
}

// Close ends every connection with a shutdown notice, waits for the
// documents' writers to finish what they hold, closes the documents, and
// releases the data directory.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.fail(protocol.CodeShutdown, "the coordinator is shutting down")
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	s.mu.Lock()
	docs := s.docs
	s.docs = map[string]*document{}
	var busy []chan struct{} // documents being opened, or closed after idling
	for _, w := range s.opening {
		busy = append(busy, w)
	}
	s.mu.Unlock()
	var errs []error
	for _, d := range docs {
		errs = append(errs, d.close())
	}
	// Their stores must be shut before the data directory is let go, or
	// the next coordinator on it finds a document's files still locked.
	for _, w := range busy {
		select {
		case <-w:
		case <-ctx.Done():
		}
	}
	errs = append(errs, s.lock.Release())
	return errors.Join(errs...)
}
