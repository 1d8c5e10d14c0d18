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
	c.s.metrics.connections.Inc()
	defer c.s.metrics.connections.Dec()
	c.ws.SetReadDeadline(time.Time{})
	var once sync.Once
	stop := func() { once.Do(func() { up.Close(); c.ws.Close() }) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owner to client
		defer wg.Done()
		defer stop()
		pipe(up, c.ws, c.s.cfg.WriteTimeout)
	}()
	pipe(c.ws, up, c.s.cfg.WriteTimeout) // client to owner
	stop()
	wg.Wait()
	return "", ""
}

// pipe copies messages from src to dst until either fails.
func pipe(src, dst *websocket.Conn, writeTimeout time.Duration) {
	for {
		kind, b, err := src.ReadMessage()
		if err != nil {
			return
		}
		dst.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := dst.WriteMessage(kind, b); err != nil {
			return
		}
	}
}
