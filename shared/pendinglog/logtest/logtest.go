// Package logtest is the contract every durable [engine.PendingLog] must
// meet, run against each implementation by its own tests (the file log on
// each file system, the browser's IndexedDB log).
package logtest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/engine"
)

// Log is a pending log that can be closed.
type Log interface {
	engine.PendingLog
	Close() error
}

// Opener opens the log under test. Each call after the first reopens the
// same durable log, which must show everything recorded before.
type Opener func(t *testing.T) Log

// Run runs the contract suite; fresh returns an Opener for a new, empty log.
func Run(t *testing.T, fresh func(t *testing.T) Opener) {
	t.Run("AppendTrimReopen", func(t *testing.T) {
		open := fresh(t)
		l := open(t)
		id := l.ClientID()
		if id == "" {
			t.Fatal("empty client ID")
		}
		if got, err := l.Load(); err != nil || len(got) != 0 {
			t.Fatalf("new log: Load() = %v, %v", got, err)
		}
		for seq := uint64(1); seq <= 10; seq++ {
			if err := l.Append(mutation(seq)); err != nil {
				t.Fatalf("append %d: %v", seq, err)
			}
		}
		if err := l.Trim(3); err != nil {
			t.Fatalf("trim: %v", err)
		}
		checkTail(t, l, 4, 10)
		if err := l.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		l = open(t)
		if got := l.ClientID(); got != id {
			t.Fatalf("client ID %q after reopen, want %q", got, id)
		}
		checkTail(t, l, 4, 10)
		if err := l.Trim(10); err != nil {
			t.Fatalf("trim all: %v", err)
		}
		if err := l.Append(mutation(11)); err != nil {
			t.Fatalf("append after trim: %v", err)
		}
		l.Close()
		l = open(t)
		defer l.Close()
		checkTail(t, l, 11, 11)
	})
	t.Run("DistinctClientIDs", func(t *testing.T) {
		a, b := fresh(t)(t), fresh(t)(t)
		defer a.Close()
		defer b.Close()
		if a.ClientID() == b.ClientID() {
			t.Fatalf("two new logs share client ID %q", a.ClientID())
		}
	})
	t.Run("BinaryArgs", func(t *testing.T) {
		open := fresh(t)
		l := open(t)
		args := []byte{0, 1, 2, 0xff, 0xfe, 0}
		if err := l.Append(engine.Mutation{ClientID: l.ClientID(), Seq: 1, Name: "bin", Args: args}); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(engine.Mutation{ClientID: l.ClientID(), Seq: 2, Name: "empty"}); err != nil {
			t.Fatal(err)
		}
		l.Close()
		l = open(t)
		defer l.Close()
		got, err := l.Load()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || !bytes.Equal(got[0].Args, args) || got[0].Name != "bin" || len(got[1].Args) != 0 || got[1].Name != "empty" {
			t.Fatalf("reloaded %+v", got)
		}
	})
}

func mutation(seq uint64) engine.Mutation {
	return engine.Mutation{Seq: seq, Name: "add", Args: []byte(fmt.Sprintf(`{"id":"%d"}`, seq))}
}

// checkTail checks that the log ends with seqs from..to in order. Logs may
// keep trimmed mutations for a while (the engine drops them by last_seq), so
// only the tail is checked, and that nothing at or below a trim point
// follows it.
func checkTail(t *testing.T, l Log, from, to uint64) {
	t.Helper()
	got, err := l.Load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var seqs []uint64
	for _, m := range got {
		seqs = append(seqs, m.Seq)
	}
	var want []uint64
	for s := from; s <= to; s++ {
		want = append(want, s)
	}
	if len(seqs) < len(want) || !slices.Equal(seqs[len(seqs)-len(want):], want) {
		t.Fatalf("log holds seqs %v, want it to end with %v", seqs, want)
	}
	if !slices.IsSorted(seqs) {
		t.Fatalf("log seqs out of order: %v", seqs)
	}
	last := got[len(got)-1]
	if last.Name != "add" || string(last.Args) != fmt.Sprintf(`{"id":"%d"}`, to) {
		t.Fatalf("last mutation %+v", last)
	}
}
