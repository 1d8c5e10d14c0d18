package pendinglog

import "github.com/sqlsync-go/sqlsync/shared/engine"

// Memory is a pending log in memory.
type Memory struct{ *Mirror }

var _ engine.PendingLog = (*Memory)(nil)

// NewMemory returns an empty in-memory log for clientID.
func NewMemory(clientID string) *Memory {
	return &Memory{newMirror(memJournal(clientID), clientID, nil)}
}

// memJournal is the journal of a Memory: there is nothing to keep but the
// Mirror itself.
type memJournal string

func (j memJournal) Load() (string, []engine.Mutation, error) { return string(j), nil, nil }

func (memJournal) Append(engine.Mutation) error { return nil }

func (memJournal) DeleteThrough(uint64, []engine.Mutation, []engine.Mutation) error { return nil }

func (memJournal) Close() error { return nil }
