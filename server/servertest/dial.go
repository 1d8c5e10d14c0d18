package servertest

import (
	"context"
	"fmt"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
)

// frameLimits decode what the hooks see: any frame a replica may send or
// receive.
var frameLimits = protocol.Limits{MaxFrameBytes: 64 << 20}

// Dialer opens WebSocket transports for a replica (its Dial is a
// client.Dialer) whose frames, decoded, go to hooks first.
type Dialer struct {
	// WebSocket dials; nil is websocket.DefaultDialer.
	WebSocket *websocket.Dialer
	// Read, if set, sees every frame the replica reads that decodes, and
	// its encoded size.
	Read func(f protocol.Frame, size int)
	// Write, if set, sees every frame the replica writes that decodes,
	// before it is sent; an error from it is the Write's, and the frame is
	// not sent.
	Write func(ctx context.Context, f protocol.Frame) error
}

// Dial dials url and returns a transport that closes when ctx ends.
func (d Dialer) Dial(ctx context.Context, url string) (client.Transport, error) {
	wd := d.WebSocket
	if wd == nil {
		wd = websocket.DefaultDialer
	}
	ws, resp, err := wd.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, err
	}
	ws.SetReadLimit(64 << 20)
	return &transport{ws: ws, d: d, stop: context.AfterFunc(ctx, func() { ws.Close() })}, nil
}

// transport is a client.Transport over a WebSocket that shows its frames
// to its Dialer's hooks.
type transport struct {
	ws   *websocket.Conn
	d    Dialer
	wmu  sync.Mutex // one writer at a time, as gorilla requires
	stop func() bool
}

func (t *transport) Read(ctx context.Context) ([]byte, error) {
	_, b, err := t.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if t.d.Read != nil {
		if f, err := protocol.Decode(b, frameLimits); err == nil {
			t.d.Read(f, len(b))
		}
	}
	return b, nil
}

func (t *transport) Write(ctx context.Context, frame []byte) error {
	if t.d.Write != nil {
		if f, err := protocol.Decode(frame, frameLimits); err == nil {
			if err := t.d.Write(ctx, f); err != nil {
				return err
			}
		}
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.ws.WriteMessage(websocket.BinaryMessage, frame)
}

func (t *transport) Close() error {
	t.stop()
	return t.ws.Close()
}

// WireLog records, in order, the Hellos a replica sends and the Diff
// frames it receives (without their pages' data). Its Dial is a
// client.Dialer that records into it.
type WireLog struct {
	mu     sync.Mutex
	events []WireEvent
}

// WireEvent is one Hello sent or one Diff frame received.
type WireEvent struct {
	Hello *protocol.Hello
	Diff  *protocol.Diff
}

// Diff is a whole diff received: its frames joined.
type Diff struct {
	From, To  uint64
	PageCount uint32
	Pages     []uint32 // the page numbers, in the order they came
}

// Dial dials url with websocket.DefaultDialer, recording into w.
func (w *WireLog) Dial(ctx context.Context, url string) (client.Transport, error) {
	return Dialer{Read: w.read, Write: w.write}.Dial(ctx, url)
}

func (w *WireLog) read(f protocol.Frame, _ int) {
	if f.Diff == nil {
		return
	}
	d := *f.Diff
	for i := range d.Pages {
		d.Pages[i].Data = nil
	}
	w.add(WireEvent{Diff: &d})
}

func (w *WireLog) write(_ context.Context, f protocol.Frame) error {
	if f.Hello != nil {
		w.add(WireEvent{Hello: f.Hello})
	}
	return nil
}

func (w *WireLog) add(e WireEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, e)
}

// Len returns the number of events recorded: a mark to read from later.
func (w *WireLog) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// since returns the events from index i on.
func (w *WireLog) since(i int) []WireEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]WireEvent(nil), w.events[min(i, len(w.events)):]...)
}

// Hellos returns the Hellos sent.
func (w *WireLog) Hellos() []protocol.Hello {
	var out []protocol.Hello
	for _, e := range w.since(0) {
		if e.Hello != nil {
			out = append(out, *e.Hello)
		}
	}
	return out
}

// DiffFrames returns the Diff frames received from event index since on.
func (w *WireLog) DiffFrames(since int) []protocol.Diff {
	var out []protocol.Diff
	for _, e := range w.since(since) {
		if e.Diff != nil {
			out = append(out, *e.Diff)
		}
	}
	return out
}

// Diffs returns the Diff frames received from event index since on,
// joined into whole diffs (frames joined by More).
func (w *WireLog) Diffs(since int) []Diff {
	var out []Diff
	var cur *Diff
	for _, f := range w.DiffFrames(since) {
		if cur == nil {
			cur = &Diff{From: f.From, To: f.To, PageCount: f.PageCount}
		}
		for _, p := range f.Pages {
			cur.Pages = append(cur.Pages, p.No)
		}
		if !f.More {
			out = append(out, *cur)
			cur = nil
		}
	}
	return out
}

// AfterHello returns the first Hello sent at or after event index since,
// and the Diff frames received after it.
func (w *WireLog) AfterHello(since int) (*protocol.Hello, []protocol.Diff) {
	var hello *protocol.Hello
	var diffs []protocol.Diff
	for _, e := range w.since(since) {
		switch {
		case e.Hello != nil && hello == nil:
			hello = e.Hello
		case e.Diff != nil && hello != nil:
			diffs = append(diffs, *e.Diff)
		}
	}
	return hello, diffs
}
