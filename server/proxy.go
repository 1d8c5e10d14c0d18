package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
)

// forwardedHeader marks a connection one coordinator forwards to another
// (the document's owner): the receiver never forwards it again, so a stale
// lease naming the forwarder itself cannot make a loop.
const forwardedHeader = "Sqlsync-Forwarded"

// forward relays the connection, whose hello is h, to the coordinator at
// url that owns its document: the owner runs the whole protocol (it checks
// the token again, orders rejections before diffs, binds identities), this
// node only copies frames both ways until either side ends. An owner that
// cannot be reached is a refusal to retry: its lease runs out, and a node
// takes the document over.
func (c *conn) forward(ctx context.Context, url string, h protocol.Frame) (code, reason string) {
	hello, err := protocol.Encode(h)
	if err != nil {
		return protocol.CodeInternal, "the hello could not be forwarded"
	}
	dialer := websocket.Dialer{HandshakeTimeout: c.s.cfg.HelloTimeout, EnableCompression: true}
	header := http.Header{forwardedHeader: {"1"}}
	up, _, err := dialer.DialContext(ctx, "ws"+strings.TrimPrefix(url, "http")+SyncPath, header)
	if err != nil {
		c.log.Warn("the document's owner is unreachable", "owner", url, "err", err)
		return protocol.CodeShutdown, "the document's coordinator is unreachable; retry"
	}
	defer up.Close()
	c.ws.SetReadLimit(int64(c.s.cfg.Limits.MaxFrameBytes) + 1) // the owner refuses larger ones
	if err := up.WriteMessage(websocket.BinaryMessage, hello); err != nil {
		return protocol.CodeShutdown, "the document's coordinator is unreachable; retry"
	}
	c.s.metrics.forwarded.Inc()
	defer c.s.metrics.forwarded.Dec()
	c.ws.SetReadDeadline(time.Time{})
	var once sync.Once
	done := make(chan struct{})
	stop := func() { once.Do(func() { close(done); up.Close(); c.ws.Close() }) }
	// An owner that stops answering (dead, or paused) must not hold the
	// client forever: it is pinged every TTL/2 and dropped after twice
	// TTL of silence, by when its lease has run out and this node can
	// take the document over when the client reconnects.
	ttl := c.s.cfg.Cluster.TTL
	alive := func() { up.SetReadDeadline(time.Now().Add(2 * ttl)) }
	alive()
	up.SetPongHandler(func(string) error { alive(); return nil })
	go func() {
		t := time.NewTicker(ttl / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				up.WriteControl(websocket.PingMessage, nil, time.Now().Add(ttl))
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owner to client
		defer wg.Done()
		defer stop()
		pipe(up, c.ws, c.s.cfg.WriteTimeout, alive)
	}()
	pipe(c.ws, up, c.s.cfg.WriteTimeout, func() {}) // client to owner
	stop()
	wg.Wait()
	return "", ""
}

// pipe copies messages from src to dst until either fails, calling read
// after each message read.
func pipe(src, dst *websocket.Conn, writeTimeout time.Duration, read func()) {
	for {
		kind, b, err := src.ReadMessage()
		if err != nil {
			return
		}
		read()
		dst.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := dst.WriteMessage(kind, b); err != nil {
			return
		}
	}
}
