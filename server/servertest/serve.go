package servertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// Coordinator is what Serve serves; a *server.Server is one.
type Coordinator interface {
	Handler() http.Handler
	Close(ctx context.Context) error
}

// Server is a Coordinator served over HTTP.
type Server struct {
	// Addr is the host:port it listens on.
	Addr string
	c    Coordinator
	hs   *http.Server
}

// Listen listens on a free 127.0.0.1 port, failing the test if it cannot,
// and closes the listener when the test ends if nothing has. A test
// listens first when the coordinator must know its own address (a cluster
// node's URL), or to wrap the listener (to tune the connections it
// accepts).
func Listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// Serve serves c over HTTP on ln. The Server owns both: Close closes them.
func Serve(c Coordinator, ln net.Listener) *Server {
	s := &Server{Addr: ln.Addr().String(), c: c, hs: &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second}}
	go s.hs.Serve(ln)
	return s
}

// Start is Serve for a test: the server is closed when the test ends, and
// an error in closing it fails the test.
func Start(tb testing.TB, c Coordinator, ln net.Listener) *Server {
	tb.Helper()
	s := Serve(c, ln)
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close server: %v", err)
		}
	})
	return s
}

// URL returns the WebSocket URL of path on s (a sync endpoint's:
// server.SyncPath).
func (s *Server) URL(path string) string { return "ws://" + s.Addr + path }

// Close closes the coordinator, which tells its clients, then the HTTP
// server, waiting at most 10 s in all.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.c.Close(ctx)
	if herr := s.hs.Shutdown(ctx); herr != nil {
		err = errors.Join(err, fmt.Errorf("shut down http: %w", herr))
	}
	return err
}
