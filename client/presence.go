package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"golang.org/x/time/rate"
)

// Presence is one presence of this replica in its document: a small JSON
// state (who is looking, what they edit) that the coordinator fans out to
// the document's other clients, never written to the document. It lasts
// while the replica is connected (re-sent as a heartbeat well within the
// coordinator's timeout) and goes when cleared, when the replica
// disconnects or closes, or when the coordinator stops hearing of it.
// Presence needs Options.Presence and a coordinator that grants it
// (Status.Presence); meanwhile the state is kept and sent once it can be.
type Presence struct {
	d   *Doc
	key string
}

// Peer is a presence of the document as this replica sees it.
type Peer struct {
	// ID names the presence while it lasts: the coordinator's name for
	// another replica's presence, "local/" and the key for another of
	// this replica's own.
	ID string
	// ClientID is the publishing replica's client ID.
	ClientID string
	// ReadOnly says the publisher's token grants reading only.
	ReadOnly bool
	// Local says the presence is another of this replica's own (another
	// browser tab sharing the replica): it never went to the coordinator.
	Local bool
	// Key is a local presence's key.
	Key string
	// State is the presence's JSON value.
	State json.RawMessage
}

// PresenceRefusal is the coordinator's refusal of a presence update (or
// the replica's own, when the state is over the coordinator's limit): the
// presence stays as the others last saw it.
type PresenceRefusal struct {
	Key    string // the presence's key
	Code   string // protocol.PresenceTooLarge, PresenceRate, ...
	Reason string
}

// Error returns the refusal as a message.
func (r *PresenceRefusal) Error() string {
	return fmt.Sprintf("presence refused (%s): %s", r.Code, r.Reason)
}

// ErrPresenceTooLarge reports a presence state over the coordinator's
// limit (Options.Presence's default of 1 KiB until a coordinator says).
var ErrPresenceTooLarge = errors.New("presence state too large")

// ErrPresenceNotJSON reports a presence state that is not JSON.
var ErrPresenceNotJSON = errors.New("presence state is not JSON")

// defaultPresenceLimits are assumed until a coordinator's Welcome says.
var defaultPresenceLimits = protocol.DefaultPresenceLimits()

// presence is a Doc's presence: its own states, the others', and what the
// current connection has still to send.
type presence struct {
	mu       sync.Mutex
	local    map[string]json.RawMessage // this replica's, by key
	dirty    map[string]bool            // keys to send on the connection
	remote   map[string]Peer            // the others', by ID
	limits   protocol.PresenceLimits
	granted  bool   // the connection has presence
	clientID string // the replica's, for its local peers
	watchers map[int]func([]Peer)
	nextID   int
	wake     chan struct{}
}

func newPresence() *presence {
	return &presence{
		local: map[string]json.RawMessage{}, dirty: map[string]bool{}, remote: map[string]Peer{},
		limits: defaultPresenceLimits, watchers: map[int]func([]Peer){}, wake: make(chan struct{}, 1),
	}
}

// Presence returns the replica's own presence (key "").
func (d *Doc) Presence() *Presence { return &Presence{d: d} }

// PresenceOf returns another presence of this replica, named by key (at
// most 64 bytes): the browser's tabs sharing one replica each have one.
// The others see each as a presence of its own; each sees the others as
// Local peers.
func (d *Doc) PresenceOf(key string) *Presence { return &Presence{d: d, key: key} }

// Key returns the presence's key.
func (p *Presence) Key() string { return p.key }

// Set publishes state, JSON-encoded unless it is []byte or
// json.RawMessage (which must hold JSON); nil clears the presence. It
// fails with ErrPresenceTooLarge over the coordinator's size limit and
// with ErrPresenceNotJSON. The update goes out at once when the rate the
// coordinator allows permits, else as soon as it does: a burst of updates
// is coalesced, the last one wins.
func (p *Presence) Set(state any) error {
	if state == nil {
		return p.Clear()
	}
	var raw []byte
	switch s := state.(type) {
	case []byte:
		raw = s
	case json.RawMessage:
		raw = s
	default:
		var err error
		if raw, err = json.Marshal(state); err != nil {
			return fmt.Errorf("set presence: %w", err)
		}
	}
	if len(raw) == 0 {
		return p.Clear()
	}
	if !json.Valid(raw) {
		return fmt.Errorf("set presence: %w", ErrPresenceNotJSON)
	}
	if len(p.key) > 64 {
		return fmt.Errorf("set presence: key is %d bytes, limit 64", len(p.key))
	}
	ps := p.d.presence
	ps.mu.Lock()
	if limit := int(ps.limits.MaxBytes); len(raw) > limit {
		ps.mu.Unlock()
		return fmt.Errorf("set presence: %w: %d bytes, limit %d", ErrPresenceTooLarge, len(raw), limit)
	}
	if old, ok := ps.local[p.key]; ok && string(old) == string(raw) {
		ps.mu.Unlock()
		return nil
	}
	ps.local[p.key] = slices.Clone(raw)
	ps.dirty[p.key] = true
	ps.mu.Unlock()
	ps.changed()
	return nil
}

// Clear withdraws the presence.
func (p *Presence) Clear() error {
	ps := p.d.presence
	ps.mu.Lock()
	_, had := ps.local[p.key]
	delete(ps.local, p.key)
	if had {
		ps.dirty[p.key] = true
	}
	ps.mu.Unlock()
	if had {
		ps.changed()
	}
	return nil
}

// State returns the presence's state, nil if it has none.
func (p *Presence) State() json.RawMessage {
	ps := p.d.presence
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return slices.Clone(ps.local[p.key])
}

// Others returns every presence of the document this replica knows of but
// this one: the other replicas' (while connected) and this replica's other
// ones (Local), ordered by ID.
func (p *Presence) Others() []Peer {
	return others(p.d.Peers(), p.key)
}

// Subscribe calls fn with Others now and after every change of them, until
// the returned function is called. fn runs on the replica's goroutines and
// must not block.
func (p *Presence) Subscribe(fn func(others []Peer)) (cancel func()) {
	key := p.key
	return p.d.WatchPresence(func(all []Peer) { fn(others(all, key)) })
}

func others(all []Peer, key string) []Peer {
	return slices.DeleteFunc(all, func(x Peer) bool { return x.Local && x.Key == key })
}

// Peers returns every presence of the document this replica knows of: the
// other replicas' (while connected; none while offline) and all of its own
// (Local), ordered by ID.
func (d *Doc) Peers() []Peer {
	ps := d.presence
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.peersLocked()
}

func (ps *presence) peersLocked() []Peer {
	out := make([]Peer, 0, len(ps.remote)+len(ps.local))
	for _, p := range ps.remote {
		out = append(out, p)
	}
	for key, state := range ps.local {
		out = append(out, Peer{ID: "local/" + key, ClientID: ps.clientID, Local: true, Key: key, State: state})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// WatchPresence calls fn with Peers now and after every change of them,
// until the returned function is called. fn runs on the replica's
// goroutines and must not block.
func (d *Doc) WatchPresence(fn func(peers []Peer)) (stop func()) {
	ps := d.presence
	ps.mu.Lock()
	id := ps.nextID
	ps.nextID++
	ps.watchers[id] = fn
	peers := ps.peersLocked()
	ps.mu.Unlock()
	fn(peers)
	return func() {
		ps.mu.Lock()
		delete(ps.watchers, id)
		ps.mu.Unlock()
	}
}

// changed wakes the sender and tells the watchers.
func (ps *presence) changed() {
	select {
	case ps.wake <- struct{}{}:
	default:
	}
	ps.notify()
}

// notify calls the watchers with the peers now.
func (ps *presence) notify() {
	ps.mu.Lock()
	ws := slices.Collect(maps.Values(ps.watchers))
	var peers []Peer
	if len(ws) > 0 {
		peers = ps.peersLocked()
	}
	ps.mu.Unlock()
	for _, w := range ws {
		w(slices.Clone(peers))
	}
}

// connected starts a connection granted presence with limits: every
// local presence is to be sent, and the others come in a full snapshot.
// It returns the limits the connection keeps to (limits, defaults filled).
func (ps *presence) connected(limits *protocol.PresenceLimits) protocol.PresenceLimits {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.granted = true
	ps.limits = withPresenceDefaults(limits)
	for key := range ps.local {
		ps.dirty[key] = true
	}
	return ps.limits
}

// disconnected ends the connection: the others' presences are gone for
// this replica until the next.
func (ps *presence) disconnected() {
	ps.mu.Lock()
	had := ps.granted && len(ps.remote) > 0
	ps.granted = false
	clear(ps.remote)
	clear(ps.dirty)
	ps.mu.Unlock()
	if had {
		ps.notify()
	}
}

// apply applies a Presence frame from the coordinator.
func (ps *presence) apply(f *protocol.Presence) {
	ps.mu.Lock()
	if f.Full {
		clear(ps.remote)
	}
	for _, p := range f.Peers {
		ps.remote[p.ID] = Peer{ID: p.ID, ClientID: p.ClientID, ReadOnly: p.ReadOnly, State: json.RawMessage(p.State)}
	}
	for _, id := range f.Gone {
		delete(ps.remote, id)
	}
	ps.mu.Unlock()
	ps.notify()
}

func withPresenceDefaults(l *protocol.PresenceLimits) protocol.PresenceLimits {
	out := defaultPresenceLimits
	if l == nil {
		return out
	}
	fill := func(v *uint32, x uint32) {
		if x != 0 {
			*v = x
		}
	}
	fill(&out.MaxBytes, l.MaxBytes)
	fill(&out.TimeoutMs, l.TimeoutMs)
	fill(&out.IntervalMs, l.IntervalMs)
	fill(&out.Burst, l.Burst)
	fill(&out.MaxPeers, l.MaxPeers)
	fill(&out.MaxKeys, l.MaxKeys)
	return out
}

// presenceFrame handles f if it is a Presence or PresenceRefused frame,
// and reports whether it was.
func (d *Doc) presenceFrame(f protocol.Frame) bool {
	switch {
	case f.Presence != nil:
		d.presence.apply(f.Presence)
	case f.PresenceRefused != nil:
		r := f.PresenceRefused
		d.lg.Warn("presence refused", "key", r.Key, "code", r.Code, "reason", r.Reason)
		d.emit(Event{PresenceRefused: &PresenceRefusal{Key: r.Key, Code: r.Code, Reason: r.Reason}})
	default:
		return false
	}
	return true
}

// presenceEnded ends a connection's part in presence: the others'
// presences are gone for this replica until the next connection.
func (d *Doc) presenceEnded() {
	d.presence.disconnected()
	d.setStatus(func(s *Status) { s.Presence = false })
}

// takeDirty returns a key to send and its state (nil: withdraw it).
func (ps *presence) takeDirty() (key string, state []byte, ok bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.dirty) == 0 {
		return "", nil, false
	}
	keys := slices.Sorted(maps.Keys(ps.dirty))
	key = keys[0]
	delete(ps.dirty, key)
	return key, ps.local[key], true
}

// heartbeat marks the local presences that stale reports to be sent
// again.
func (ps *presence) heartbeat(stale func(key string) bool) {
	ps.mu.Lock()
	for key := range ps.local {
		if stale(key) {
			ps.dirty[key] = true
		}
	}
	ps.mu.Unlock()
}

// presenceLoop sends this replica's presences on the connection t, which
// the coordinator granted presence with limits: each change, and each one
// not sent for a sixth of the timeout again every third of it (the
// heartbeat: so the coordinator hears of each at least every half
// timeout), paced below the coordinator's rate so that none is refused
// for it (half its burst is left for the network's jitter).
func (d *Doc) presenceLoop(ctx context.Context, t Transport, limits protocol.PresenceLimits) error {
	ps := d.presence
	lim := rate.NewLimiter(rate.Every(time.Duration(limits.IntervalMs)*time.Millisecond), max(1, int(limits.Burst)/2))
	every := max(10*time.Millisecond, time.Duration(limits.TimeoutMs)*time.Millisecond/3)
	beat := time.NewTicker(every)
	defer beat.Stop()
	sent := map[string]time.Time{} // when each key was last sent
	stale := func(key string) bool { return time.Since(sent[key]) >= every/2 }
	for {
		ps.mu.Lock()
		pending := len(ps.dirty) > 0
		ps.mu.Unlock()
		if !pending {
			select {
			case <-ps.wake:
			case <-beat.C:
				ps.heartbeat(stale)
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		// Wait for the rate first: an update made meanwhile replaces the
		// one waiting.
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		key, state, ok := ps.takeDirty()
		if !ok {
			continue
		}
		if len(state) > int(limits.MaxBytes) {
			// Set while the limit was not known: not sent, the app is told.
			d.emit(Event{PresenceRefused: &PresenceRefusal{Key: key, Code: protocol.PresenceTooLarge,
				Reason: fmt.Sprintf("presence state is %d bytes, limit %d", len(state), limits.MaxBytes)}})
			continue
		}
		if err := writeFrame(ctx, t, protocol.Frame{PresenceSet: &protocol.PresenceSet{Key: key, State: state}}); err != nil {
			return err
		}
		sent[key] = time.Now()
	}
}
