package protocol

import (
	"fmt"
	"unicode/utf8"
)

// CapPresence is the capability a client names in Hello.Capabilities to
// take part in presence, and the coordinator names in
// Welcome.Capabilities when it grants it. Only then may the client send
// PresenceSet frames, and only then does the coordinator send it Presence
// and PresenceRefused frames.
const CapPresence = "presence"

// Codes carried in PresenceRefused frames.
const (
	PresenceTooLarge  = "too_large" // the state is over the coordinator's PresenceLimits.MaxBytes
	PresenceRate      = "rate"      // more updates than the coordinator's rate allows
	PresenceForbidden = "forbidden" // the token's role may not publish presence
	PresenceTooMany   = "too_many"  // too many presences on the connection or the document
	PresenceBadState  = "bad_state" // the state is not JSON
)

// maxCapabilities bounds Hello.Capabilities and Welcome.Capabilities.
const maxCapabilities = 16

// maxPresenceKeyBytes bounds PresenceSet.Key and PresenceRefused.Key.
const maxPresenceKeyBytes = 64

// A coordinator's presence limits unless it is told otherwise, and what a
// client assumes until a Welcome says: 1 KiB states, a 30 s timeout, one
// update every 100 ms (10 a second) in bursts of 20, 100 presences per
// document and 16 per connection.
const (
	DefaultPresenceMaxBytes   = 1024
	DefaultPresenceTimeoutMs  = 30000
	DefaultPresenceIntervalMs = 100
	DefaultPresenceBurst      = 20
	DefaultPresenceMaxPeers   = 100
	DefaultPresenceMaxKeys    = 16
)

// DefaultPresenceLimits returns the default limits, as a Welcome carries them.
func DefaultPresenceLimits() PresenceLimits {
	return PresenceLimits{
		MaxBytes: DefaultPresenceMaxBytes, TimeoutMs: DefaultPresenceTimeoutMs, IntervalMs: DefaultPresenceIntervalMs,
		Burst: DefaultPresenceBurst, MaxPeers: DefaultPresenceMaxPeers, MaxKeys: DefaultPresenceMaxKeys,
	}
}

// PresenceLimits is what the coordinator tells a client, in its Welcome,
// of the presence it granted: the client keeps below them so that none of
// its updates is refused.
type PresenceLimits struct {
	// MaxBytes bounds one presence's State.
	MaxBytes uint32 `cbor:"1,keyasint,omitempty"`
	// TimeoutMs: a presence not refreshed for this long is dropped; a
	// client re-sends its state well within it (a heartbeat).
	TimeoutMs uint32 `cbor:"2,keyasint,omitempty"`
	// IntervalMs and Burst are the token bucket of a connection's
	// PresenceSet frames: one token every IntervalMs, at most Burst kept.
	IntervalMs uint32 `cbor:"3,keyasint,omitempty"`
	Burst      uint32 `cbor:"4,keyasint,omitempty"`
	// MaxPeers bounds the presences of a document (every connection's),
	// and so the peers of a Presence frame.
	MaxPeers uint32 `cbor:"5,keyasint,omitempty"`
	// MaxKeys bounds the presences of one connection (its Keys).
	MaxKeys uint32 `cbor:"6,keyasint,omitempty"`
}

// PresenceSet publishes (or, with no State, withdraws) one presence of the
// sending connection. A connection may hold several, one per Key: the
// browser's tabs that share a replica each have their own.
type PresenceSet struct {
	// Key names the presence among the connection's own ("" is one).
	Key string `cbor:"1,keyasint,omitempty"`
	// State is the presence's JSON value; empty withdraws the presence.
	State []byte `cbor:"2,keyasint,omitempty"`
}

// Peer is one presence of another connection to the document.
type Peer struct {
	// ID names the presence among the document's, as long as it lasts:
	// the coordinator's name for the connection, "/", and the Key.
	ID string `cbor:"1,keyasint,omitempty"`
	// ClientID is the publishing replica's client ID (the tabs of one
	// browser share one).
	ClientID string `cbor:"2,keyasint,omitempty"`
	// ReadOnly says the publisher's token grants reading only.
	ReadOnly bool `cbor:"3,keyasint,omitempty"`
	// State is the presence's JSON value, never empty.
	State []byte `cbor:"4,keyasint,omitempty"`
}

// Presence tells the receiver of the other connections' presences: new or
// changed ones in Peers, withdrawn or expired ones in Gone. With Full set,
// Peers is every presence there is, and the receiver forgets the others.
type Presence struct {
	Peers []Peer   `cbor:"1,keyasint,omitempty"`
	Gone  []string `cbor:"2,keyasint,omitempty"`
	Full  bool     `cbor:"3,keyasint,omitempty"`
}

// PresenceRefused tells the receiver that the coordinator refused its
// PresenceSet for Key: the presence stays as it was, and the connection
// and its mutations go on.
type PresenceRefused struct {
	Key    string `cbor:"1,keyasint,omitempty"`
	Code   string `cbor:"2,keyasint,omitempty"` // one of the Presence* codes, or a newer code
	Reason string `cbor:"3,keyasint,omitempty"` // human-readable detail
}

// HasCapability reports whether caps names c.
func HasCapability(caps []string, c string) bool {
	for _, x := range caps {
		if x == c {
			return true
		}
	}
	return false
}

func checkCapabilities(caps []string, lim *Limits) error {
	if len(caps) > maxCapabilities {
		return largef("%d capabilities, limit %d", len(caps), maxCapabilities)
	}
	for i, c := range caps {
		if checkString("capability", c, true, lim, maxNameBytes) != nil {
			// Named with its index only when it fails: no formatting per
			// item of a valid frame.
			return checkString(fmt.Sprintf("capability %d", i), c, true, lim, maxNameBytes)
		}
	}
	return nil
}

func checkKey(k string) error {
	if len(k) > maxPresenceKeyBytes {
		return largef("key is %d bytes, limit %d", len(k), maxPresenceKeyBytes)
	}
	if !utf8.ValidString(k) {
		return badf("key is not valid UTF-8")
	}
	return nil
}

func validatePresenceSet(p *PresenceSet, lim *Limits) error {
	if err := checkKey(p.Key); err != nil {
		return err
	}
	if lim != nil && len(p.State) > lim.MaxPresenceBytes {
		return largef("state is %d bytes, limit %d", len(p.State), lim.MaxPresenceBytes)
	}
	return nil
}

func validatePresence(p *Presence, lim *Limits) error {
	if lim != nil && len(p.Peers)+len(p.Gone) > lim.MaxPresencePeers {
		return largef("%d peers and %d gone, limit %d in all", len(p.Peers), len(p.Gone), lim.MaxPresencePeers)
	}
	for i, peer := range p.Peers {
		if err := checkString("id", peer.ID, true, lim, maxDocIDBytes); err != nil {
			return fmt.Errorf("peer %d: %w", i, err)
		}
		if err := checkString("client id", peer.ClientID, false, lim, maxDocIDBytes); err != nil {
			return fmt.Errorf("peer %d: %w", i, err)
		}
		if len(peer.State) == 0 {
			return badf("peer %d: state is empty", i)
		}
		if lim != nil && len(peer.State) > lim.MaxPresenceBytes {
			return largef("peer %d: state is %d bytes, limit %d", i, len(peer.State), lim.MaxPresenceBytes)
		}
	}
	for i, id := range p.Gone {
		if checkString("gone", id, true, lim, maxDocIDBytes) != nil {
			return checkString(fmt.Sprintf("gone %d", i), id, true, lim, maxDocIDBytes)
		}
	}
	return nil
}

func validatePresenceRefused(r *PresenceRefused, lim *Limits) error {
	if err := checkKey(r.Key); err != nil {
		return err
	}
	if err := checkString("code", r.Code, true, lim, maxNameBytes); err != nil {
		return err
	}
	return checkString("reason", r.Reason, false, lim, maxMessageBytes)
}

// normalizePresence turns empty slices into nil (see normalize).
func normalizePresence(f *Frame) {
	if h := f.Hello; h != nil && len(h.Capabilities) == 0 {
		h.Capabilities = nil
	}
	if w := f.Welcome; w != nil && len(w.Capabilities) == 0 {
		w.Capabilities = nil
	}
	if p := f.PresenceSet; p != nil && len(p.State) == 0 {
		p.State = nil
	}
	if p := f.Presence; p != nil {
		if len(p.Peers) == 0 {
			p.Peers = nil
		}
		if len(p.Gone) == 0 {
			p.Gone = nil
		}
	}
}
