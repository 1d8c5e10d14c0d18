//go:build !js

package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/gorilla/websocket"
)

// wsTransport is a Transport over a gorilla WebSocket connection.
type wsTransport struct {
	ws   *websocket.Conn
	wmu  sync.Mutex
	stop func() bool
}

func dialWebSocket(ctx context.Context, url string) (Transport, error) {
	dialer := websocket.Dialer{EnableCompression: true, ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
	ws, resp, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, err
	}
	ws.SetReadLimit(64 << 20)
	t := &wsTransport{ws: ws}
	// Closing the socket when ctx ends unblocks a pending Read or Write.
	t.stop = context.AfterFunc(ctx, func() { ws.Close() })
	return t, nil
}

func (t *wsTransport) Read(ctx context.Context) ([]byte, error) {
	_, b, err := t.ws.ReadMessage()
	return b, err
}

func (t *wsTransport) Write(ctx context.Context, frame []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.ws.WriteMessage(websocket.BinaryMessage, frame)
}

func (t *wsTransport) Close() error {
	t.stop()
	return t.ws.Close()
}
