package pendinglog

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/sqlsync-go/sqlsync/shared/engine"
)

// ErrCorrupt reports a log whose header or middle fails its checks.
var ErrCorrupt = errors.New("pendinglog: corrupt log")

// Journal is the durable record under a [Mirror]: a file, an IndexedDB
// database, or nothing (see [Memory]). The Mirror calls it under its lock,
// one call at a time, and keeps every rule about the list of mutations
// itself; a journal only stores.
type Journal interface {
	// Load returns the client ID and the recorded mutations in the order
	// they were appended. A new journal makes its client ID (NewClientID)
	// and stores it before Load returns. The Mirror calls Load once.
	Load() (clientID string, ms []engine.Mutation, err error)
	// Append records m durably before it returns. A failed Append leaves
	// nothing that a later Load could take for m.
	Append(m engine.Mutation) error
	// DeleteThrough forgets the records of dropped, the mutations with seq
	// at or below through (at least one); rest are those that stay, in seq
	// order, for a journal that rewrites itself. A journal may keep dropped
	// records a while, to amortise its work: Load then returns them again,
	// and the engine drops them by the snapshot's last seq.
	DeleteThrough(through uint64, dropped, rest []engine.Mutation) error
	// Close releases the journal. Calls after Close fail, but Close itself
	// may be called again.
	Close() error
}

// Mirror is a pending log: the pending mutations in memory, in seq order,
// over a Journal that keeps them durably. It holds the rules every backend
// shares: appends in increasing seq order, Trim by a prefix of the list, and
// every mutation stamped with the log's client ID.
type Mirror struct {
	j  Journal
	id string

	mu  sync.Mutex
	log []engine.Mutation // +checklocks:mu
}

var _ engine.PendingLog = (*Mirror)(nil)

// NewMirror loads j and returns the log over it.
func NewMirror(j Journal) (*Mirror, error) {
	id, ms, err := j.Load()
	if err != nil {
		return nil, err
	}
	return newMirror(j, id, ms), nil
}

// newMirror returns the log over j, which holds ms for client id.
func newMirror(j Journal, id string, ms []engine.Mutation) *Mirror {
	for i := range ms {
		ms[i].ClientID = id
	}
	return &Mirror{j: j, id: id, log: ms}
}

// NewClientID returns a fresh random client ID.
func NewClientID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ClientID returns the client's ID.
func (m *Mirror) ClientID() string { return m.id }

// Load returns the recorded mutations.
func (m *Mirror) Load() ([]engine.Mutation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.log), nil
}

// Append records mu durably, with the log's client ID. Its seq must be above
// every recorded one: Trim forgets a prefix of the list.
func (m *Mirror) Append(mu engine.Mutation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.log); n > 0 && mu.Seq <= m.log[n-1].Seq {
		return fmt.Errorf("pendinglog: append %d: not above the last recorded seq %d", mu.Seq, m.log[n-1].Seq)
	}
	mu.ClientID = m.id
	if err := m.j.Append(mu); err != nil {
		return fmt.Errorf("pendinglog: append %d: %w", mu.Seq, err)
	}
	m.log = append(m.log, mu)
	return nil
}

// Trim forgets the mutations with seq at or below through.
func (m *Mirror) Trim(through uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := 0
	for i < len(m.log) && m.log[i].Seq <= through {
		i++
	}
	if i == 0 {
		return nil
	}
	rest := slices.Clone(m.log[i:])
	if err := m.j.DeleteThrough(through, m.log[:i], rest); err != nil {
		return fmt.Errorf("pendinglog: trim through %d: %w", through, err)
	}
	m.log = rest
	return nil
}

// Close closes the journal.
func (m *Mirror) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.j.Close()
}
