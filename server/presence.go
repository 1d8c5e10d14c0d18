package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"golang.org/x/time/rate"
)

// PresenceConfig bounds presence: the small, ephemeral JSON state each
// connection of a document may publish (who is looking, what they edit)
// and the coordinator fans out to the document's other connections. It is
// never written anywhere: it lives as long as its connection, or until it
// goes unrefreshed for Timeout. Zero fields take the defaults below.
type PresenceConfig struct {
	// Disabled turns presence off: no connection is granted
	// protocol.CapPresence, and clients get no presence frames.
	Disabled bool
	// MaxBytes bounds one presence's JSON state; default 1024. At most
	// the protocol's MaxPresenceBytes (64 KiB), which every client
	// accepts.
	MaxBytes int
	// Timeout drops a presence its connection has not refreshed for this
	// long (clients re-send theirs well within it); default 30 s.
	Timeout time.Duration
	// Rate and Burst bound the presence updates of one connection, all
	// its presences together (a token bucket); defaults 10 per second,
	// bursts of 20. An update over the rate is refused, not delayed.
	Rate  float64
	Burst int
	// MaxPeers bounds the presences of one document, and so what a
	// client is sent at once; default 100, at most the protocol's
	// MaxPresencePeers (256).
	MaxPeers int
	// MaxKeys bounds the presences of one connection (one per browser tab
	// sharing a replica); default 16.
	MaxKeys int
	// DenyReaders refuses presence updates from read-only tokens (they
	// still see the others'). By default a read-only client may publish:
	// a viewer is somebody too, and presence never reaches the document.
	DenyReaders bool
}

// Presence defaults (see PresenceConfig): the protocol's, which clients
// assume until a Welcome says.
const (
	DefaultPresenceMaxBytes = protocol.DefaultPresenceMaxBytes
	DefaultPresenceTimeout  = protocol.DefaultPresenceTimeoutMs * time.Millisecond
	DefaultPresenceRate     = 1000.0 / protocol.DefaultPresenceIntervalMs
	DefaultPresenceBurst    = protocol.DefaultPresenceBurst
	DefaultPresenceMaxPeers = protocol.DefaultPresenceMaxPeers
	DefaultPresenceMaxKeys  = protocol.DefaultPresenceMaxKeys
)

// withDefaults fills p's zero fields and checks them against the
// protocol's bounds; it raises lim.MaxPresenceBytes to p.MaxBytes, so that
// a state over p.MaxBytes is refused with a reason, not decoded as too
// large a frame.
func (p PresenceConfig) withDefaults(lim *protocol.Limits) (PresenceConfig, error) {
	if p.MaxBytes == 0 {
		p.MaxBytes = DefaultPresenceMaxBytes
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultPresenceTimeout
	}
	if p.Rate == 0 {
		p.Rate = DefaultPresenceRate
	}
	if p.Burst == 0 {
		p.Burst = DefaultPresenceBurst
	}
	if p.MaxPeers == 0 {
		p.MaxPeers = DefaultPresenceMaxPeers
	}
	if p.MaxKeys == 0 {
		p.MaxKeys = DefaultPresenceMaxKeys
	}
	proto := protocol.DefaultLimits()
	switch {
	case p.MaxBytes < 0 || p.MaxBytes > proto.MaxPresenceBytes:
		return p, fmt.Errorf("presence: max bytes %d not in 1..%d", p.MaxBytes, proto.MaxPresenceBytes)
	case p.MaxPeers < 0 || p.MaxPeers > proto.MaxPresencePeers:
		return p, fmt.Errorf("presence: max peers %d not in 1..%d", p.MaxPeers, proto.MaxPresencePeers)
	case p.Timeout < 0 || p.Timeout > time.Duration(math.MaxUint32)*time.Millisecond:
		return p, fmt.Errorf("presence: timeout %v out of range", p.Timeout)
	case p.Rate < 0 || p.Burst < 0 || p.MaxKeys < 0:
		return p, errors.New("presence: negative rate, burst or max keys")
	}
	lim.MaxPresenceBytes = max(lim.MaxPresenceBytes, p.MaxBytes)
	return p, nil
}

// limits returns what a Welcome tells a client of p.
func (p PresenceConfig) limits() *protocol.PresenceLimits {
	return &protocol.PresenceLimits{
		MaxBytes:   uint32(p.MaxBytes),
		TimeoutMs:  uint32(max(1, p.Timeout.Milliseconds())),
		IntervalMs: uint32(max(1, math.Ceil(1000/p.Rate))),
		Burst:      uint32(p.Burst),
		MaxPeers:   uint32(p.MaxPeers),
		MaxKeys:    uint32(p.MaxKeys),
	}
}

// maxQueuedRefusals bounds the presence refusals waiting for a
// connection's writer; more are counted, not sent.
const maxQueuedRefusals = 16

// presenceMetrics count presence updates by outcome and the presences
// held.
type presenceMetrics struct {
	updates *prometheus.CounterVec
	peers   prometheus.Gauge
}

func newPresenceMetrics(reg *prometheus.Registry) presenceMetrics {
	m := presenceMetrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sqlsync_presence_updates_total",
			Help: "Presence updates received, by outcome: set, heartbeat, withdrawn, or the refusal's code.",
		}, []string{"outcome"}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sqlsync_presence_peers", Help: "Presences held, all documents together.",
		}),
	}
	reg.MustRegister(m.updates, m.peers)
	return m
}

// presenceHub is a document's presence: every presence its connections
// publish, and for each connection granted protocol.CapPresence what its
// writer has still to send. It never touches the document: a connection's
// reader calls set, its writer calls take, and neither waits on the
// document's writer or on a socket.
type presenceHub struct {
	cfg     PresenceConfig
	metrics presenceMetrics
	log     *slog.Logger

	mu       sync.Mutex
	nextConn uint64
	peers    map[string]*presenceEntry // by Peer.ID
	conns    map[*conn]*presenceConn
}

// presenceEntry is one presence, owned by one connection.
type presenceEntry struct {
	peer     protocol.Peer
	key      string
	owner    *presenceConn
	deadline time.Time
	timer    *time.Timer
}

// presenceConn is a connection's part in its document's presence; its
// fields are the hub's, under hub.mu.
type presenceConn struct {
	c       *conn
	name    string // the prefix of its presences' IDs
	limiter *rate.Limiter
	keys    map[string]*presenceEntry
	// What the writer has still to send: a full snapshot, or the changes
	// since the last frame (a nil peer is gone), and refusals.
	full    bool
	changed map[string]*protocol.Peer
	refused []protocol.PresenceRefused
	dropped int
}

func newPresenceHub(cfg PresenceConfig, m presenceMetrics, log *slog.Logger) *presenceHub {
	return &presenceHub{cfg: cfg, metrics: m, log: log, peers: map[string]*presenceEntry{}, conns: map[*conn]*presenceConn{}}
}

// join makes c, granted presence, a member: its writer sends it a full
// snapshot first, then every change of the others' presences.
func (h *presenceHub) join(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextConn++
	h.conns[c] = &presenceConn{
		c:       c,
		name:    strconv.FormatUint(h.nextConn, 10),
		limiter: rate.NewLimiter(rate.Limit(h.cfg.Rate), h.cfg.Burst),
		keys:    map[string]*presenceEntry{},
		full:    true,
	}
	c.wake()
}

// leave drops c and its presences, which the others are told are gone.
func (h *presenceHub) leave(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pc := h.conns[c]
	if pc == nil {
		return
	}
	for _, e := range pc.keys {
		h.remove(e)
	}
	delete(h.conns, c)
}

// close stops the expiry timers of the presences left.
func (h *presenceHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.peers {
		h.remove(e)
	}
}

// set applies a PresenceSet from c, or queues a PresenceRefused saying
// why not. A refusal changes nothing else: the presence stays as it was,
// the connection goes on. Every update costs a token of the connection's
// bucket, refused or not; one that finds none is refused for the rate, and
// set returns how long the connection's reader must wait before it reads
// on, until the token it borrowed is there: backpressure, so that a client
// writing updates as fast as it can costs the coordinator a decode per
// token, not per frame (bench scenario 11).
func (h *presenceHub) set(c *conn, ps *protocol.PresenceSet) (pause time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pc := h.conns[c]
	if pc == nil {
		return 0
	}
	var code, reason string
	if pc.limiter.Allow() {
		code, reason = h.check(c, ps)
	} else {
		code, reason = protocol.PresenceRate, fmt.Sprintf("more than %g presence updates per second (bursts of %d)", h.cfg.Rate, h.cfg.Burst)
		pause = min(pc.limiter.Reserve().Delay(), time.Second)
	}
	outcome := code
	if code == "" {
		outcome, code, reason = h.apply(pc, ps)
	}
	h.metrics.updates.WithLabelValues(outcome).Inc()
	if code == "" {
		return 0
	}
	c.log.Debug("presence refused", "key", ps.Key, "code", code, "reason", reason)
	if len(pc.refused) >= maxQueuedRefusals {
		pc.dropped++
		return pause
	}
	pc.refused = append(pc.refused, protocol.PresenceRefused{Key: ps.Key, Code: code, Reason: reason})
	c.wake()
	return pause
}

// check returns why ps may not be applied, as far as the update alone
// tells: the role, the size and the JSON.
func (h *presenceHub) check(c *conn, ps *protocol.PresenceSet) (code, reason string) {
	switch {
	case len(ps.State) == 0:
		return "", "" // a withdrawal: always allowed
	case c.readOnly && h.cfg.DenyReaders:
		return protocol.PresenceForbidden, "read-only access: this coordinator does not let read-only clients publish presence"
	case len(ps.State) > h.cfg.MaxBytes:
		return protocol.PresenceTooLarge, fmt.Sprintf("presence state is %d bytes, limit %d", len(ps.State), h.cfg.MaxBytes)
	case !json.Valid(ps.State):
		return protocol.PresenceBadState, "presence state is not valid JSON"
	}
	return "", ""
}

// apply applies ps to pc's presences and returns the outcome, or a
// refusal's code and reason.
func (h *presenceHub) apply(pc *presenceConn, ps *protocol.PresenceSet) (outcome, code, reason string) {
	e := pc.keys[ps.Key]
	switch {
	case len(ps.State) == 0:
		if e != nil {
			h.remove(e)
		}
		return "withdrawn", "", ""
	case e != nil:
		e.deadline = time.Now().Add(h.cfg.Timeout)
		e.timer.Reset(h.cfg.Timeout)
		if bytes.Equal(e.peer.State, ps.State) {
			return "heartbeat", "", ""
		}
		e.peer.State = ps.State
		h.fanOut(e.peer.ID, &e.peer, pc)
		return "set", "", ""
	case len(pc.keys) >= h.cfg.MaxKeys:
		return protocol.PresenceTooMany, protocol.PresenceTooMany, fmt.Sprintf("this connection already has %d presences", len(pc.keys))
	case len(h.peers) >= h.cfg.MaxPeers:
		return protocol.PresenceTooMany, protocol.PresenceTooMany, fmt.Sprintf("the document already has %d presences", len(h.peers))
	}
	e = &presenceEntry{
		peer:     protocol.Peer{ID: pc.name + "/" + ps.Key, ClientID: pc.c.clientID, ReadOnly: pc.c.readOnly, State: ps.State},
		key:      ps.Key,
		owner:    pc,
		deadline: time.Now().Add(h.cfg.Timeout),
	}
	e.timer = time.AfterFunc(h.cfg.Timeout, func() { h.expire(e) })
	pc.keys[ps.Key] = e
	h.peers[e.peer.ID] = e
	h.metrics.peers.Inc()
	h.fanOut(e.peer.ID, &e.peer, pc)
	return "set", "", ""
}

// snapshot returns the document's presences, at most max, by ID, with the
// time each expires unless refreshed, and how many there are.
func (h *presenceHub) snapshot(max int) (out []InspectPresence, total int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := slices.Sorted(maps.Keys(h.peers))
	out = []InspectPresence{}
	for _, id := range ids[:min(len(ids), max)] {
		e := h.peers[id]
		out = append(out, InspectPresence{ID: e.peer.ID, ClientID: e.peer.ClientID, ReadOnly: e.peer.ReadOnly, State: e.peer.State, Expires: e.deadline})
	}
	return out, len(ids)
}

// expire drops e if it has not been refreshed since its timer was set.
func (h *presenceHub) expire(e *presenceEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.peers[e.peer.ID] != e || time.Now().Before(e.deadline) {
		return // gone already, or refreshed (the refresh re-armed the timer)
	}
	h.metrics.updates.WithLabelValues("expired").Inc()
	h.remove(e)
}

// remove drops e and tells the others it is gone.
func (h *presenceHub) remove(e *presenceEntry) {
	e.timer.Stop()
	delete(h.peers, e.peer.ID)
	delete(e.owner.keys, e.key)
	h.metrics.peers.Dec()
	h.fanOut(e.peer.ID, nil, e.owner)
}

// fanOut queues peer (nil: gone) on every member but from and wakes
// their writers. The queue coalesces by ID, so a member that reads slowly
// costs at most one entry per presence; past a bound (presences that come
// and go) it is replaced by a full snapshot.
func (h *presenceHub) fanOut(id string, peer *protocol.Peer, from *presenceConn) {
	var p *protocol.Peer
	if peer != nil {
		cp := *peer // the entry's State slice is never written after: shared
		p = &cp
	}
	for _, pc := range h.conns {
		if pc == from || pc.full {
			continue
		}
		if pc.changed == nil {
			pc.changed = map[string]*protocol.Peer{}
		}
		pc.changed[id] = p
		if len(pc.changed) > 4*h.cfg.MaxPeers {
			pc.full, pc.changed = true, nil
		}
		pc.c.wake()
	}
}

// take returns the frames c's writer has to send: refusals, then a full
// snapshot or the changes since the last frames.
func (h *presenceHub) take(c *conn) []protocol.Frame {
	h.mu.Lock()
	defer h.mu.Unlock()
	pc := h.conns[c]
	if pc == nil {
		return nil
	}
	var out []protocol.Frame
	for i := range pc.refused {
		r := pc.refused[i]
		if i == len(pc.refused)-1 && pc.dropped > 0 {
			r.Reason = truncate(fmt.Sprintf("%s (and %d more updates refused)", r.Reason, pc.dropped), protocol.DefaultLimits().MaxMessageBytes)
		}
		out = append(out, protocol.Frame{PresenceRefused: &r})
	}
	pc.refused, pc.dropped = nil, 0
	switch {
	case pc.full:
		p := &protocol.Presence{Full: true}
		for _, e := range h.peers {
			if e.owner != pc {
				p.Peers = append(p.Peers, e.peer)
			}
		}
		slices.SortFunc(p.Peers, func(a, b protocol.Peer) int { return strings.Compare(a.ID, b.ID) })
		out = append(out, protocol.Frame{Presence: p})
		pc.full, pc.changed = false, nil
	case len(pc.changed) > 0:
		ids := make([]string, 0, len(pc.changed))
		for id := range pc.changed {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		per := protocol.DefaultLimits().MaxPresencePeers // what every client accepts in one frame
		for len(ids) > 0 {
			n := min(len(ids), per)
			p := &protocol.Presence{}
			for _, id := range ids[:n] {
				if peer := pc.changed[id]; peer != nil {
					p.Peers = append(p.Peers, *peer)
				} else {
					p.Gone = append(p.Gone, id)
				}
			}
			out = append(out, protocol.Frame{Presence: p})
			ids = ids[n:]
		}
		pc.changed = nil
	}
	return out
}

// sendPresence sends what the document's presence has for the connection.
func (c *conn) sendPresence() error {
	if !c.presence {
		return nil // not granted: nothing to take, no hub lock to take it under
	}
	for _, f := range c.doc.presence.take(c) {
		if err := c.write(f); err != nil {
			return fmt.Errorf("write %s: %w", f.Kind(), err)
		}
	}
	return nil
}
