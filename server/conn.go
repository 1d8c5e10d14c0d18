package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
	"golang.org/x/time/rate"
)

// maxQueuedRejections bounds the rejections waiting for a slow client.
const maxQueuedRejections = 10000

// conn is one client's WebSocket connection to one document. The reader
// goroutine hands pushes to the document; the writer goroutine sends, when
// woken, the rejections and the diff the client lacks. Wakes coalesce, so a
// slow client costs one pending diff, never a growing queue.
type conn struct {
	s        *Server
	ws       *websocket.Conn
	doc      *document
	clientID string
	log      *slog.Logger
	wakeCh   chan struct{}
	done     chan struct{}

	readOnly bool
	presence bool // granted protocol.CapPresence (see presence.go)
	stream   bool // granted protocol.CapStream (see sendStream)
	// lazy: granted protocol.CapLazy (see lazy.go); held is what the
	// replica holds and pageReqs its page requests for the writer.
	lazy     bool
	held     *heldSet
	pageReqs chan *protocol.PageRequest
	// resume is where the client's broken stream stands, from its Hello;
	// the writer takes it for the first diff it sends.
	resume    *engine.StreamPos
	forwarded bool // from another coordinator (see forward)
	limiter   *rate.Limiter
	queued    atomic.Int64 // mutations handed to the document, not yet applied
	insp      connStats    // what the inspector shows

	mu        sync.Mutex
	rejected  []protocol.Rejected
	closeWith *protocol.Close
}

func (s *Server) serveSync(w http.ResponseWriter, r *http.Request) {
	// Join the wait group under the lock Close takes before it waits, so
	// that Close waits for this connection or this connection sees it
	// closed: an Add racing with Wait could let Close return, and close the
	// documents, while the connection goes on.
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if closed {
		http.Error(w, "the coordinator is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &conn{
		s: s, ws: ws, log: s.log.With("remote", r.RemoteAddr),
		wakeCh: make(chan struct{}, 1), done: make(chan struct{}),
		limiter:   rate.NewLimiter(rate.Limit(s.cfg.RatePerConn), s.cfg.RateBurst),
		forwarded: r.Header.Get(forwardedHeader) != "",
	}
	c.insp.remote, c.insp.since = r.RemoteAddr, time.Now()
	if code, reason := c.serve(r.Context()); code != "" {
		c.log.Info("connection refused", "code", code, "reason", reason)
		c.writeClose(code, reason)
	}
	ws.Close()
}

// serve handles the Hello and then runs the connection until it ends. A
// nonempty code is a refusal still to be sent.
func (c *conn) serve(ctx context.Context) (code, reason string) {
	c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.HelloTimeout))
	f, code, reason := c.read()
	if code == "gone" {
		return "", ""
	}
	if code != "" {
		return code, reason
	}
	h := f.Hello
	if h == nil {
		return protocol.CodeBadRequest, "the first frame must be hello, got " + f.Kind()
	}
	if h.Version != protocol.Version {
		return protocol.CodeVersion, fmt.Sprintf("protocol version %d is not supported; this coordinator speaks %d", h.Version, protocol.Version)
	}
	if h.ClientID == "" {
		return protocol.CodeBadRequest, "hello has no client ID"
	}
	if err := ValidDocID(h.DocID); err != nil {
		return protocol.CodeBadRequest, err.Error()
	}
	// The token is checked before the document is even opened: nothing of
	// it leaves the server for a client it was not granted to.
	claims, err := c.s.cfg.Verifier.Verify(h.Token, h.DocID)
	switch {
	case errors.Is(err, ErrNotGranted):
		return protocol.CodeForbidden, err.Error()
	case err != nil:
		return protocol.CodeUnauthorized, err.Error()
	}
	c.readOnly = claims.Role == RoleRead
	if claims.ExpiresAt != nil {
		// A token that expires mid-session ends the session.
		t := time.AfterFunc(time.Until(claims.ExpiresAt.Time), func() {
			c.fail(protocol.CodeUnauthorized, "token expired")
		})
		defer t.Stop()
	}
	doc, err := c.s.acquire(ctx, h.DocID)
	var notOwner *notOwnerError
	switch {
	case errors.As(err, &notOwner) && c.forwarded:
		return protocol.CodeShutdown, "this coordinator does not own the document; retry"
	case errors.As(err, &notOwner):
		return c.forward(ctx, notOwner.url, f)
	case errors.Is(err, ErrBadDocID):
		return protocol.CodeBadRequest, err.Error()
	case errors.Is(err, ErrClosed):
		return protocol.CodeShutdown, "the coordinator is shutting down"
	case err != nil:
		c.log.Error("open document", "doc", h.DocID, "err", err)
		return protocol.CodeInternal, "the document could not be opened"
	}
	defer c.s.release(doc)
	// The client ID is public (every replica's __sqlsync_clients lists
	// it): the secret proves the client owns it, before it may push.
	bound, err := doc.ids.check(h.ClientID, h.Secret)
	switch {
	case errors.Is(err, ErrIdentity):
		c.log.Warn("identity refused", "doc", h.DocID, "client", h.ClientID, "err", err)
		return protocol.CodeIdentity, fmt.Sprintf("%v (client %s): a replica must keep the secret it was created with, or start afresh with a new client ID", err, h.ClientID)
	case err != nil:
		c.log.Error("check client identity", "doc", h.DocID, "client", h.ClientID, "err", err)
		return protocol.CodeInternal, "the client's identity could not be checked"
	case !bound:
		c.log.Debug("client without a secret: its ID is not bound", "doc", h.DocID, "client", h.ClientID)
	}
	if lsn := doc.coord.LSN(); h.LSN > lsn {
		return protocol.CodeBadRequest, fmt.Sprintf("client is at LSN %d but the document is at %d: its snapshot is not from this coordinator", h.LSN, lsn)
	}
	c.doc, c.clientID = doc, h.ClientID
	c.s.metrics.connections.Inc()
	defer c.s.metrics.connections.Dec()
	c.log = c.log.With("doc", doc.id, "client", h.ClientID)

	c.s.mu.Lock()
	closed := c.s.closed
	if !closed {
		c.s.conns[c] = true
	}
	c.s.mu.Unlock()
	if closed {
		return protocol.CodeShutdown, "the coordinator is shutting down"
	}
	c.insp.hello = h.LSN
	c.insp.sent.Store(h.LSN)
	// Joining queues the rejections the client missed (it was offline,
	// or its last connection dropped before they went out), to go before
	// the first diff.
	full := doc.join(c, h.LSN, c.s.cfg.MaxConnsPerDoc)
	if full {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		return protocol.CodeLimit, fmt.Sprintf("the document already has %d connections", c.s.cfg.MaxConnsPerDoc)
	}
	defer func() {
		doc.mu.Lock()
		delete(doc.conns, c)
		doc.mu.Unlock()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	}()
	c.log.Debug("connected", "lsn", h.LSN)
	welcome := &protocol.Welcome{Version: protocol.Version, LSN: doc.coord.LSN(), MutatorHash: doc.hash}
	if c.presence = !c.s.cfg.Presence.Disabled && protocol.HasCapability(h.Capabilities, protocol.CapPresence); c.presence {
		welcome.Capabilities, welcome.Presence = []string{protocol.CapPresence}, c.s.cfg.Presence.limits()
	}
	if c.lazy = protocol.HasCapability(h.Capabilities, protocol.CapLazy); c.lazy {
		// A lazy replica's diffs carry only what it holds: small, and
		// its own, so never streamed.
		welcome.Capabilities = append(welcome.Capabilities, protocol.CapLazy)
		c.held, c.pageReqs = newHeldSet(h.Held), make(chan *protocol.PageRequest, maxPageRequests)
	}
	if c.stream = !c.lazy && protocol.HasCapability(h.Capabilities, protocol.CapStream); c.stream {
		welcome.Capabilities = append(welcome.Capabilities, protocol.CapStream)
		if r := h.Resume; r != nil {
			c.resume = &engine.StreamPos{Since: r.Since, Begin: r.Begin, After: r.After}
		}
	}
	if err := c.write(protocol.Frame{Welcome: welcome}); err != nil {
		return "", ""
	}
	if c.presence {
		doc.presence.join(c) // its writer sends the others' presences first
		defer doc.presence.leave(c)
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.readLoop()
	}()
	c.writeLoop(h.LSN)
	c.ws.Close() // ends the reader if it is still going
	<-readerDone
	return "", ""
}

// read reads and decodes one frame; a nonempty code ends the connection.
//
// The frame size limit is enforced here rather than with SetReadLimit:
// gorilla answers a frame over that limit with its own WebSocket close and
// then refuses every write, so the client would never get the Close frame
// saying why.
func (c *conn) read() (protocol.Frame, string, string) {
	kind, r, err := c.ws.NextReader()
	if err != nil {
		return protocol.Frame{}, "gone", err.Error()
	}
	if kind != websocket.BinaryMessage {
		return protocol.Frame{}, protocol.CodeBadFrame, "frames must be binary"
	}
	limit := c.s.cfg.Limits.MaxFrameBytes
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return protocol.Frame{}, "gone", err.Error()
	}
	if len(data) > limit {
		return protocol.Frame{}, protocol.CodeLimit, fmt.Sprintf("frame larger than %d bytes", limit)
	}
	f, err := protocol.Decode(data, c.s.cfg.Limits)
	switch {
	case errors.Is(err, protocol.ErrTooLarge):
		return protocol.Frame{}, protocol.CodeLimit, err.Error()
	case err != nil:
		return protocol.Frame{}, protocol.CodeBadFrame, err.Error()
	}
	return f, "", ""
}

func (c *conn) readLoop() {
	// Pushes waiting for the rate limit, at most maxRateDelay's worth.
	paced := make(chan pacedPush, 1024)
	go c.pace(paced)
	for {
		c.ws.SetReadDeadline(time.Time{})
		f, code, reason := c.read()
		if code == "gone" {
			c.finish()
			return
		}
		if code != "" {
			c.fail(code, reason)
			return
		}
		if f.PresenceSet != nil && c.presence {
			// Refusals are queued, never fatal; over the rate, the
			// connection is read again only once its rate allows.
			if pause := c.doc.presence.set(c, f.PresenceSet); pause > 0 {
				select {
				case <-time.After(pause):
				case <-c.done:
					return
				}
			}
			continue
		}
		if f.PageRequest != nil && c.lazy {
			if !c.queuePageRequest(f.PageRequest) {
				return
			}
			continue
		}
		if f.Push == nil {
			c.fail(protocol.CodeBadRequest, "after hello a client may only push (or, with the presence capability, set presence; with the lazy one, request pages), got "+f.Kind())
			return
		}
		n := len(f.Push.Mutations)
		now := time.Now()
		r := c.limiter.ReserveN(now, n)
		if !r.OK() {
			c.fail(protocol.CodeLimit, fmt.Sprintf("rate limit: a push of %d mutations is more than the burst of %d", n, c.s.cfg.RateBurst))
			return
		}
		if r.DelayFrom(now) > c.maxRateDelay() {
			r.CancelAt(now)
			c.fail(protocol.CodeLimit, fmt.Sprintf("rate limit: more than %g mutations per second", c.s.cfg.RatePerConn))
			return
		}
		if q := c.queued.Add(int64(n)); q > int64(c.s.cfg.MaxQueuedPerConn) {
			c.fail(protocol.CodeLimit, fmt.Sprintf("more than %d mutations waiting to be applied", c.s.cfg.MaxQueuedPerConn))
			return
		}
		muts := make([]engine.Mutation, n)
		for i, m := range f.Push.Mutations {
			muts[i] = engine.Mutation{ClientID: c.clientID, Seq: m.Seq, Name: m.Name, Args: m.Args}
			if c.readOnly {
				muts[i].Refused = "read-only access: this client may not mutate the document"
			}
		}
		select {
		case paced <- pacedPush{push{from: c, muts: muts}, now.Add(r.DelayFrom(now))}:
		case <-c.done:
			return
		}
	}
}

// pacedPush is a push and when the rate limit lets it reach the document.
type pacedPush struct {
	push
	at time.Time
}

// maxRateDelay is how far ahead of its rate a connection may get before it
// is closed. The rate limit is backpressure: a push over the rate waits
// (pace) until its tokens are there, and a client that sends its next push
// only once the coordinator has applied the last one (package client does)
// is never further ahead than one burst. One that keeps sending without
// waiting gets further ahead with every push and is closed.
func (c *conn) maxRateDelay() time.Duration {
	return time.Duration(float64(c.s.cfg.RateBurst)/c.s.cfg.RatePerConn*float64(time.Second)) + time.Second
}

// pace hands pushes to the document, in order, each when the rate limit
// allows.
func (c *conn) pace(in <-chan pacedPush) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		var p pacedPush
		select {
		case p = <-in:
		case <-c.done:
			return
		}
		if d := time.Until(p.at); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-c.done:
				return
			}
		}
		select {
		case c.doc.in <- p.push:
		case <-c.done:
			return
		}
	}
}

// writeLoop sends what the client lacks each time the connection is woken.
func (c *conn) writeLoop(lsn uint64) {
	c.wake()
	for {
		select {
		case <-c.wakeCh:
		case <-c.done:
		}
		c.mu.Lock()
		closeWith := c.closeWith
		c.mu.Unlock()
		if closeWith == nil {
			var err error
			if lsn, err = c.sendUpdates(lsn); err != nil {
				c.log.Info("send diff", "err", err)
				return
			}
			if c.lazy {
				if err := c.servePages(lsn); err != nil {
					c.log.Info("serve pages", "err", err)
					return
				}
			}
			if err := c.sendPresence(); err != nil {
				c.log.Info("send presence", "err", err)
				return
			}
			c.insp.sent.Store(lsn)
		}
		select {
		case <-c.done:
			// Read again: fail may have run since the read above.
			c.mu.Lock()
			closeWith = c.closeWith
			c.mu.Unlock()
			if closeWith != nil {
				c.writeClose(closeWith.Code, closeWith.Reason)
			}
			return
		default:
		}
	}
}

// sendUpdates sends the queued rejections and then the fast-forward diff
// from lsn, if the document moved on, and returns the LSN the client now
// has.
//
// The diff is the document's (diffCache): the connections at the same LSN
// share one, computed, encoded and deflated once; a large one is streamed
// to each connection that takes streams (sendStream). The rejections are
// this connection's own.
//
// Rejections go first: the diff that follows shows the rejected mutations
// as applied, and the client reports them. So every rejection of the
// commits the diff spans must be queued before the rejections are taken:
// a commit is visible a moment before the document's writer has queued its
// rejections, and the diff waits for that (waitPublished).
func (c *conn) sendUpdates(lsn uint64) (uint64, error) {
	if c.lazy {
		return c.sendLazyDiff(lsn)
	}
	to := c.doc.coord.LSN()
	resume := c.resume
	c.resume = nil
	if to != lsn && resume != nil {
		return c.sendStream(lsn, resume)
	}
	var d *diffEntry
	target := lsn
	if to != lsn {
		// Every connection at lsn shares one diff; one too large to send
		// whole is streamed to those that take streams, and prepared whole
		// (shared again) for the others.
		var ok bool
		for _, whole := range []bool{false, true} {
			prepare := func(from uint64) (uint64, []preparedFrame, error) { return c.doc.prepareDiff(from, whole) }
			if d, ok = c.doc.diffs.get(lsn, to, whole, prepare, c.done); !ok {
				return lsn, nil // ending
			}
			if d.err != nil {
				return lsn, d.err
			}
			if d.frames != nil {
				break
			}
			if c.stream {
				return c.sendStream(lsn, nil)
			}
		}
		target = d.lsn
	}
	if ok, err := c.sendRejections(target); !ok || err != nil {
		return lsn, err
	}
	if d == nil {
		return lsn, nil
	}
	for i, f := range d.frames {
		c.s.metrics.diffBytes.Add(float64(f.size))
		c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
		if err := c.ws.WritePreparedMessage(f.msg); err != nil {
			return lsn, fmt.Errorf("write diff %d..%d, frame %d of %d: %w", lsn, d.lsn, i+1, len(d.frames), err)
		}
	}
	return d.lsn, nil
}

// sendRejections sends the queued rejections, once every rejection of the
// commits up to target is queued; ok is false if the connection is ending.
func (c *conn) sendRejections(target uint64) (ok bool, err error) {
	if !c.doc.waitPublished(target, c.done) {
		return false, nil
	}
	c.mu.Lock()
	rejected := c.rejected
	c.rejected = nil
	c.mu.Unlock()
	for _, r := range rejected {
		if err := c.write(protocol.Frame{Rejected: &r}); err != nil {
			return false, err
		}
	}
	return true, nil
}

// errEnding ends a stream when the connection ends.
var errEnding = errors.New("connection ending")

// sendStream streams the diff from lsn (see protocol.Stream), reading each
// frame's pages out of the store as it goes, so that the connection holds
// one frame however large the diff; with resume it goes on with the
// stream the client staged in part. It is the client's own: no other
// connection shares it, as diffs sent whole are shared.
func (c *conn) sendStream(lsn uint64, resume *engine.StreamPos) (uint64, error) {
	frames := 0
	to, err := c.doc.coord.Stream(lsn, resume, syncwire.StreamPagesPerFrame, func(f engine.StreamFrame) error {
		if f.Last {
			// As for a whole diff: the rejections it shows go first.
			if ok, err := c.sendRejections(f.LSN); !ok || err != nil {
				return cmp.Or(err, errEnding)
			}
		}
		if frames == 0 {
			event := "started"
			if resume != nil && f.StreamPos == *resume {
				event = "resumed"
			}
			c.s.metrics.streams.WithLabelValues(event).Inc()
			c.log.Debug("stream diff", "from", lsn, "event", event, "pass_pages", f.PassPages, "after", f.After)
		}
		b, err := protocol.Encode(protocol.Frame{Diff: syncwire.StreamFrame(lsn, f)})
		if err != nil {
			return fmt.Errorf("encode frame %d: %w", frames+1, err)
		}
		c.s.metrics.streamPages.Add(float64(len(f.Pages)))
		c.s.metrics.diffBytes.Add(float64(len(b)))
		c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
		if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
			return fmt.Errorf("write frame %d: %w", frames+1, err)
		}
		frames++
		select {
		case <-c.done:
			return errEnding
		default:
			return nil
		}
	})
	switch {
	case errors.Is(err, errEnding):
		return lsn, nil
	case err != nil:
		return lsn, fmt.Errorf("stream diff from %d: %w", lsn, err)
	}
	c.s.metrics.streams.WithLabelValues("finished").Inc()
	return to, nil
}

// write encodes f and sends it. Diff frames go out prepared, in
// sendUpdates.
func (c *conn) write(f protocol.Frame) error {
	b, err := protocol.Encode(f)
	if err != nil {
		return fmt.Errorf("encode %s: %w", f.Kind(), err)
	}
	c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

// writeClose sends a Close frame and the WebSocket close with the reason.
func (c *conn) writeClose(code, reason string) {
	c.write(protocol.Frame{Close: &protocol.Close{Code: code, Reason: reason}})
	msg := websocket.FormatCloseMessage(websocket.ClosePolicyViolation, truncate(code+": "+reason, 120))
	c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// wake asks the writer to send what the client lacks.
func (c *conn) wake() {
	select {
	case c.wakeCh <- struct{}{}:
	default:
	}
}

// reject queues a rejection for the client.
func (c *conn) reject(r protocol.Rejected) {
	c.mu.Lock()
	over := len(c.rejected) >= maxQueuedRejections
	if !over {
		c.rejected = append(c.rejected, r)
	}
	c.mu.Unlock()
	if over {
		c.fail(protocol.CodeLimit, "too many rejections waiting: the client is not reading")
	}
}

// fail ends the connection with a Close frame.
func (c *conn) fail(code, reason string) {
	c.mu.Lock()
	if c.closeWith == nil {
		c.closeWith = &protocol.Close{Code: code, Reason: reason}
		c.s.metrics.refused.WithLabelValues(code).Inc()
		if code != protocol.CodeShutdown {
			c.log.Info("closing connection", "code", code, "reason", reason)
		}
	}
	c.mu.Unlock()
	c.finish()
}

// finish ends the connection's loops.
func (c *conn) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
	default:
		close(c.done)
	}
}
