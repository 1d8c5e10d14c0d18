//go:build js

package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"
	"time"
)

// jsTransport is a Transport over the browser's WebSocket, in binary
// (arraybuffer) mode. The socket's event handlers run on the JS event loop
// and must not block: they only queue what arrived and wake the reader.
type jsTransport struct {
	ws    js.Value
	funcs []js.Func

	mu     sync.Mutex
	frames [][]byte      // received, not yet read
	err    error         // set once the socket failed or closed
	wake   chan struct{} // signalled (without blocking) on every change
	stop   func() bool
	closed bool
}

// maxBufferedBytes bounds what Write lets the browser buffer before it waits
// for the socket to drain.
const maxBufferedBytes = 8 << 20

func dialWebSocket(ctx context.Context, url string) (Transport, error) {
	ctor := js.Global().Get("WebSocket")
	if ctor.IsUndefined() {
		return nil, errors.New("dial websocket: this JavaScript environment has no WebSocket")
	}
	var ws js.Value
	if err := catchJS(func() { ws = ctor.New(url) }); err != nil {
		return nil, fmt.Errorf("dial websocket %s: %w", url, err)
	}
	ws.Set("binaryType", "arraybuffer")
	t := &jsTransport{ws: ws, wake: make(chan struct{}, 1)}
	opened := make(chan struct{})
	var openOnce sync.Once
	t.on("open", func(js.Value) { openOnce.Do(func() { close(opened) }) })
	t.on("message", func(ev js.Value) {
		data := ev.Get("data")
		if !data.InstanceOf(js.Global().Get("ArrayBuffer")) {
			t.fail(errors.New("websocket: text frame from coordinator"))
			return
		}
		arr := js.Global().Get("Uint8Array").New(data)
		b := make([]byte, arr.Get("length").Int())
		js.CopyBytesToGo(b, arr)
		t.mu.Lock()
		t.frames = append(t.frames, b)
		t.mu.Unlock()
		t.signal()
	})
	t.on("error", func(js.Value) { t.fail(errors.New("websocket error")) })
	t.on("close", func(ev js.Value) {
		t.fail(fmt.Errorf("websocket closed (code %d%s)", ev.Get("code").Int(), reasonSuffix(ev.Get("reason").String())))
	})
	// Closing the socket when ctx ends unblocks a pending Read or Write.
	t.stop = context.AfterFunc(ctx, func() { t.fail(ctx.Err()); t.closeSocket() })
	for {
		select {
		case <-opened:
			return t, nil
		case <-t.wake:
			t.mu.Lock()
			err := t.err
			t.mu.Unlock()
			if err != nil {
				t.Close()
				return nil, fmt.Errorf("dial websocket %s: %w", url, err)
			}
		}
	}
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// on registers a handler for the socket's event.
func (t *jsTransport) on(event string, f func(js.Value)) {
	fn := js.FuncOf(func(this js.Value, args []js.Value) any {
		f(args[0])
		return nil
	})
	t.funcs = append(t.funcs, fn)
	t.ws.Call("addEventListener", event, fn)
}

func (t *jsTransport) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// fail records the first error that ends the connection.
func (t *jsTransport) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
	t.signal()
}

func (t *jsTransport) Read(ctx context.Context) ([]byte, error) {
	for {
		t.mu.Lock()
		if len(t.frames) > 0 {
			b := t.frames[0]
			t.frames[0] = nil
			t.frames = t.frames[1:]
			more := len(t.frames) > 0
			t.mu.Unlock()
			if more {
				t.signal() // another reader wait may be pending
			}
			return b, nil
		}
		err := t.err
		t.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-t.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (t *jsTransport) Write(ctx context.Context, frame []byte) error {
	t.mu.Lock()
	err := t.err
	t.mu.Unlock()
	if err != nil {
		return err
	}
	arr := js.Global().Get("Uint8Array").New(len(frame))
	js.CopyBytesToJS(arr, frame)
	if err := catchJS(func() { t.ws.Call("send", arr) }); err != nil {
		return fmt.Errorf("websocket send: %w", err)
	}
	// The browser buffers without bound: wait for a backlog to drain so a
	// long push cannot exhaust memory.
	for t.ws.Get("bufferedAmount").Int() > maxBufferedBytes {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close closes the socket and releases its handlers.
func (t *jsTransport) Close() error {
	t.stop()
	t.fail(errors.New("websocket closed"))
	t.closeSocket()
	return nil
}

func (t *jsTransport) closeSocket() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.mu.Unlock()
	catchJS(func() { t.ws.Call("close") })
	for i, ev := range []string{"open", "message", "error", "close"} {
		if i < len(t.funcs) {
			t.ws.Call("removeEventListener", ev, t.funcs[i])
			t.funcs[i].Release()
		}
	}
}

// catchJS runs f, turning a JavaScript exception it throws into an error.
func catchJS(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if jsErr, ok := r.(js.Error); ok {
				err = jsErr
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}
