package server

import (
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
)

// maxPageRequests bounds the page requests of a lazy connection waiting
// for its writer; one more closes the connection. A replica asks for the
// pages of one statement at a time.
const maxPageRequests = 16

// heldSet is the pages a lazy replica holds, as far as its connection
// knows: those Hello.Held named and those sent to it since. It may hold
// pages the replica has dropped from its cache since (their changes are
// sent needlessly), never miss one it holds. Only the writer uses it.
type heldSet struct{ words []uint64 }

func (h *heldSet) has(no uint32) bool {
	i := int(no / 64)
	return i < len(h.words) && h.words[i]&(1<<(no%64)) != 0
}

func (h *heldSet) add(no uint32) {
	i := int(no / 64)
	for len(h.words) <= i {
		h.words = append(h.words, 0)
	}
	h.words[i] |= 1 << (no % 64)
}

// newHeldSet reads Hello.Held.
func newHeldSet(held []byte) *heldSet {
	h := &heldSet{}
	for i, b := range held {
		for bit := range 8 {
			if b&(1<<bit) != 0 {
				h.add(uint32(i*8 + bit + 1))
			}
		}
	}
	return h
}

// queuePageRequest hands a page request from the reader to the writer;
// false if the connection has too many waiting (it is closed).
func (c *conn) queuePageRequest(r *protocol.PageRequest) bool {
	select {
	case c.pageReqs <- r:
		c.wake()
		return true
	default:
		c.fail(protocol.CodeLimit, fmt.Sprintf("more than %d page requests waiting", maxPageRequests))
		return false
	}
}

// sendLazyDiff is sendUpdates for a lazy connection: its diff carries only
// the changed pages the replica holds (and, the first time, page 1), so it
// is the connection's own, computed for it and never streamed.
func (c *conn) sendLazyDiff(lsn uint64) (uint64, error) {
	to := c.doc.coord.LSN()
	if to == lsn {
		ok, err := c.sendRejections(lsn)
		if !ok || err != nil {
			return lsn, err
		}
		return lsn, nil
	}
	if !c.held.has(1) {
		c.held.add(1) // every query reads it: save the round trip
	}
	d, err := engine.DiffHeld(c.doc.coord.Database().Store(), lsn, c.held.has)
	if err != nil {
		return lsn, fmt.Errorf("lazy diff from %d: %w", lsn, err)
	}
	if ok, err := c.sendRejections(d.LSN); !ok || err != nil {
		return lsn, err
	}
	for i, f := range syncwire.Frames(d, syncwire.PagesPerFrame) {
		b, err := protocol.Encode(protocol.Frame{Diff: f})
		if err != nil {
			return lsn, fmt.Errorf("encode lazy diff %d..%d: %w", lsn, d.LSN, err)
		}
		c.s.metrics.diffBytes.Add(float64(len(b)))
		c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
		if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
			return lsn, fmt.Errorf("write lazy diff %d..%d, frame %d: %w", lsn, d.LSN, i+1, err)
		}
	}
	return d.LSN, nil
}

// servePages answers the page requests waiting, after the connection's
// diffs: each page unchanged since the request's LSN goes to the replica,
// which holds it from then on.
func (c *conn) servePages(sent uint64) error {
	for {
		var r *protocol.PageRequest
		select {
		case r = <-c.pageReqs:
		default:
			return nil
		}
		if r.LSN > sent {
			c.fail(protocol.CodeBadRequest, fmt.Sprintf("page request at LSN %d, but the replica was sent %d", r.LSN, sent))
			return nil
		}
		lsn, pages, stale, err := engine.ReadPagesAt(c.doc.coord.Database().Store(), r.LSN, r.Pages)
		if err != nil {
			return fmt.Errorf("page request %d: %w", r.ID, err)
		}
		reply := &protocol.PageReply{ID: r.ID, LSN: lsn, Stale: stale}
		for _, p := range pages {
			reply.Pages = append(reply.Pages, protocol.Page{No: p.No, Data: p.Data})
			c.held.add(p.No)
		}
		c.s.metrics.pagesServed.WithLabelValues("sent").Add(float64(len(pages)))
		c.s.metrics.pagesServed.WithLabelValues("stale").Add(float64(len(stale)))
		if err := c.write(protocol.Frame{PageReply: reply}); err != nil {
			return fmt.Errorf("page reply %d: %w", r.ID, err)
		}
	}
}
