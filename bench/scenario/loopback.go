package scenario

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
)

// coordinator is a sqlsync server listening on 127.0.0.1, with its data in
// a scratch directory.
type coordinator struct {
	*servertest.Server
	// URL is the sync endpoint, ws://127.0.0.1:port/v1/sync.
	URL string
	// pool is the run's mutators, which its documents run.
	pool *mutatorPool
}

// startCoordinator starts a server over cfg on a free loopback port (the
// address a cfg.Cluster without a URL advertises), with
// its data in the scratch subdirectory dir, the run's logger, and a mutator
// from the run's pool (mutators) for each document it opens. Close stops
// it, waiting at most 10 s.
func (e *env) startCoordinator(ctx context.Context, dir string, cfg server.Config) (*coordinator, error) {
	pool, err := e.mutators()
	if err != nil {
		return nil, err
	}
	data, err := e.subdir(dir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir, cfg.Logger = data, e.log
	cfg.Mutator = func(string) engine.Mutator { return pool.mustGet(ctx) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start coordinator: %w", err)
	}
	if cfg.Cluster != nil && cfg.Cluster.URL == "" {
		c := *cfg.Cluster
		c.URL = "http://" + ln.Addr().String()
		cfg.Cluster = &c
	}
	srv, err := server.New(cfg)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start coordinator: %w", err)
	}
	s := servertest.Serve(srv, ln)
	return &coordinator{Server: s, URL: s.URL(server.SyncPath), pool: pool}, nil
}

// openReplica opens a replica with a mutator from pool and the run's
// logger; opts says the rest (URL, DocID, StateDir, Dial, ...).
func (e *env) openReplica(ctx context.Context, pool *mutatorPool, opts client.Options) (*client.Doc, error) {
	m, err := pool.get(ctx)
	if err != nil {
		return nil, err
	}
	opts.Mutator, opts.Logger = m, e.log
	return client.Open(ctx, opts)
}

// openLive is openReplica, then waits until the replica has synced (up to
// 30 s) and keeps it live; it closes the replica if that fails.
func (e *env) openLive(ctx context.Context, pool *mutatorPool, opts client.Options) (*client.Doc, error) {
	doc, err := e.openReplica(ctx, pool, opts)
	if err != nil {
		return nil, err
	}
	if err := waitSynced(ctx, doc, 30*time.Second); err != nil {
		doc.Close()
		return nil, err
	}
	keepLive(doc)
	return doc, nil
}

// meter counts what a client receives: the bytes read from its TCP
// connection (WebSocket framing and permessage-deflate included, TCP/IP
// headers not) and, decoded from the frames, the diff pages they carried.
type meter struct {
	tcpRead    atomic.Int64
	tcpWritten atomic.Int64
	diffFrames atomic.Int64
	frameBytes atomic.Int64 // encoded (CBOR) size of the diff frames, before deflate
	pages      atomic.Int64 // pages in the diff frames
	deltas     atomic.Int64 // of which sent as XOR deltas
	// onDiff, if set before the replica dials, sees every diff frame the
	// replica reads, on its reading goroutine.
	onDiff func(*protocol.Diff)
}

// meterSnap is a meter's counts at one moment.
type meterSnap struct {
	tcpRead, tcpWritten, diffFrames, frameBytes, pages, deltas int64
}

func (m *meter) snap() meterSnap {
	return meterSnap{m.tcpRead.Load(), m.tcpWritten.Load(), m.diffFrames.Load(), m.frameBytes.Load(), m.pages.Load(), m.deltas.Load()}
}

func (a meterSnap) sub(b meterSnap) meterSnap {
	return meterSnap{a.tcpRead - b.tcpRead, a.tcpWritten - b.tcpWritten, a.diffFrames - b.diffFrames,
		a.frameBytes - b.frameBytes, a.pages - b.pages, a.deltas - b.deltas}
}

// dial is a client.Dialer with the settings of the client's own WebSocket
// dialer (see clientDialer; a 64 MiB read limit) whose connection m counts.
func (m *meter) dial(ctx context.Context, url string) (client.Transport, error) {
	return servertest.Dialer{WebSocket: clientDialer(m), Read: m.read}.Dial(ctx, url)
}

// read counts a diff frame received and shows it to m.onDiff.
func (m *meter) read(f protocol.Frame, size int) {
	if f.Diff == nil {
		return
	}
	if m.onDiff != nil {
		m.onDiff(f.Diff)
	}
	m.diffFrames.Add(1)
	m.frameBytes.Add(int64(size))
	m.pages.Add(int64(len(f.Diff.Pages)))
	for _, p := range f.Diff.Pages {
		if p.Delta {
			m.deltas.Add(1)
		}
	}
}

// clientDialer returns a WebSocket dialer with the settings of the
// client's own (permessage-deflate offered, 32 KiB buffers) whose
// connections m counts, unless m is nil.
func clientDialer(m *meter) *websocket.Dialer {
	d := &websocket.Dialer{EnableCompression: true, ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
	if m != nil {
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, m: m}, nil
		}
	}
	return d
}

// countingConn counts the bytes read and written through a net.Conn.
type countingConn struct {
	net.Conn
	m *meter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.m.tcpRead.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.m.tcpWritten.Add(int64(n))
	return n, err
}

// wsServer is an HTTP server on 127.0.0.1 that upgrades every request to
// a WebSocket with the coordinator's upgrader settings (permessage-deflate,
// no context takeover, 32 KiB buffers: see server.New) and hands it to a
// handler: the server end of every baseline socket in this package.
type wsServer struct {
	hs  *http.Server
	URL string
}

// startWSServer starts a wsServer whose handler is handle; the WebSocket
// is closed when handle returns.
func startWSServer(handle func(ws *websocket.Conn)) (*wsServer, error) {
	up := websocket.Upgrader{ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10, EnableCompression: true}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start WebSocket server: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.SetReadLimit(64 << 20)
		handle(ws)
	})
	s := &wsServer{hs: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, URL: "ws://" + ln.Addr().String() + "/"}
	go s.hs.Serve(ln)
	return s, nil
}

func (s *wsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.hs.Shutdown(ctx)
}

// startEcho starts a wsServer that echoes every message.
func startEcho() (*wsServer, error) {
	return startWSServer(func(ws *websocket.Conn) {
		for {
			kind, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(kind, b); err != nil {
				return
			}
		}
	})
}

// dialEcho connects to the echo server with the client's dialer settings.
func dialEcho(ctx context.Context, url string) (*websocket.Conn, error) {
	ws, _, err := clientDialer(nil).DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("dial echo server: %w", err)
	}
	ws.SetReadLimit(64 << 20)
	return ws, nil
}

// deflateLink is a WebSocket on loopback that carries messages one way:
// its server end (a wsServer, the coordinator's settings) sends what it is
// given, and its client end, dialled with the client's settings, counts
// the bytes it reads from TCP as a replica's meter does (the handshake,
// WebSocket framing and deflate; not TCP/IP headers). It is the socket of
// the baselines that send, uncompressed before deflate, what sqlsync sends
// otherwise: a compressed baseline for its compressed figure.
type deflateLink struct {
	srv  *wsServer
	ws   *websocket.Conn
	m    meter
	out  chan [][]byte
	stop chan struct{}
}

// openDeflateLink starts a link's server end and dials it.
func openDeflateLink(ctx context.Context) (*deflateLink, error) {
	l := &deflateLink{out: make(chan [][]byte), stop: make(chan struct{})}
	srv, err := startWSServer(func(ws *websocket.Conn) {
		for {
			var msgs [][]byte
			select {
			case msgs = <-l.out:
			case <-l.stop:
				return
			}
			for _, b := range msgs {
				ws.SetWriteDeadline(time.Now().Add(time.Minute))
				if err := ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
					return
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	l.srv = srv
	ws, _, err := clientDialer(&l.m).DialContext(ctx, srv.URL, nil)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("dial WebSocket server: %w", err)
	}
	ws.SetReadLimit(64 << 20)
	l.ws = ws
	return l, nil
}

// send has the server end send msgs, one WebSocket message each, and
// returns the bytes the client end read from TCP until it had them all.
func (l *deflateLink) send(ctx context.Context, msgs [][]byte) (int64, error) {
	before := l.m.tcpRead.Load()
	select {
	case l.out <- msgs:
	case <-ctx.Done():
		return 0, fmt.Errorf("send over WebSocket: %w", ctx.Err())
	}
	l.ws.SetReadDeadline(time.Now().Add(time.Minute))
	for range msgs {
		_, r, err := l.ws.NextReader()
		if err != nil {
			return 0, fmt.Errorf("read from WebSocket: %w", err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return 0, fmt.Errorf("read from WebSocket: %w", err)
		}
	}
	return l.m.tcpRead.Load() - before, nil
}

// read returns the bytes the client end has read from TCP so far, the
// handshake included.
func (l *deflateLink) read() int64 { return l.m.tcpRead.Load() }

func (l *deflateLink) Close() error {
	l.ws.Close()
	close(l.stop)
	return l.srv.Close()
}

// encodeDiffFrames encodes frames, one message each.
func encodeDiffFrames(frames []*protocol.Diff) ([][]byte, error) {
	msgs := make([][]byte, len(frames))
	for i, f := range frames {
		b, err := protocol.Encode(protocol.Frame{Diff: f})
		if err != nil {
			return nil, fmt.Errorf("encode diff frame %d..%d: %w", f.From, f.To, err)
		}
		msgs[i] = b
	}
	return msgs, nil
}

// echoClient measures round trips through an echo server.
type echoClient struct {
	srv *wsServer
	ws  *websocket.Conn
	msg []byte
}

// newEchoClient starts an echo server and connects to it; msg is the
// message each round trip sends.
func newEchoClient(ctx context.Context, msg []byte) (*echoClient, error) {
	srv, err := startEcho()
	if err != nil {
		return nil, err
	}
	ws, err := dialEcho(ctx, srv.URL)
	if err != nil {
		srv.Close()
		return nil, err
	}
	c := &echoClient{srv: srv, ws: ws, msg: msg}
	for range 50 { // warm up
		if _, err := c.rtt(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// rtt sends the message and waits for it to come back.
func (c *echoClient) rtt() (time.Duration, error) {
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, c.msg); err != nil {
		return 0, fmt.Errorf("echo: write: %w", err)
	}
	if _, _, err := c.ws.ReadMessage(); err != nil {
		return 0, fmt.Errorf("echo: read: %w", err)
	}
	return time.Since(start), nil
}

// rtts appends n round trips to ds.
func (c *echoClient) rtts(ds []time.Duration, n int) ([]time.Duration, error) {
	for range n {
		d, err := c.rtt()
		if err != nil {
			return ds, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func (c *echoClient) Close() error {
	c.ws.Close()
	return c.srv.Close()
}

// waitLSN waits until doc's snapshot reaches lsn, for at most d.
func waitLSN(ctx context.Context, doc *client.Doc, lsn uint64, d time.Duration) error {
	ch := make(chan struct{}, 1)
	stop := doc.Watch(func(client.Event) {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	defer stop()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		if doc.Status().LSN >= lsn {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(5 * time.Millisecond): // in case an event raced the check
		case <-timer.C:
			return fmt.Errorf("wait for LSN %d: still at %d after %v", lsn, doc.Status().LSN, d)
		case <-ctx.Done():
			return fmt.Errorf("wait for LSN %d: %w", lsn, ctx.Err())
		}
	}
}

// waitSynced is client.Doc.WaitSynced bounded by d.
func waitSynced(ctx context.Context, doc *client.Doc, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return doc.WaitSynced(ctx)
}

// keepLive subscribes doc to a cheap live query on the todo items, as an
// app that shows its list does. (While this suite was written it also kept
// writers clear of a stale page cache bug in the VFS, since fixed: a
// replica whose own commit grew the file could, at the next rebase, keep
// reading the pages of its dropped local layer; the query's read
// transaction after each mutation made SQLite re-check its cache.)
func keepLive(doc *client.Doc) (stop func()) {
	return doc.Subscribe(`SELECT max(rowid) FROM items`, nil, func(engine.Rows, error) {})
}
