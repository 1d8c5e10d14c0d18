package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// hashedModule is the todo mutator presented as a module with the given
// bytes, so that the coordinator announces their hash in Welcome.
type hashedModule struct {
	testmutator.Mutator
	bytes []byte
}

var _ ModuleMutator = hashedModule{}

func (m hashedModule) Hash() string {
	sum := sha256.Sum256(m.bytes)
	return hex.EncodeToString(sum[:])
}

func (m hashedModule) Bytes() []byte { return m.bytes }

// TestMutatorMismatch: a replica whose mutator module is not the one the
// coordinator announces in Welcome keeps taking diffs but pushes nothing,
// says so in its status (MutatorMismatch, CoordinatorMutator, LastError
// naming both hashes), and WaitSynced fails with ErrMutatorMismatch while
// it has pending mutations. Reopened with the coordinator's module, the
// same replica pushes what waited and converges. A replica with no hash (a
// built-in Go mutator) is not compared.
func TestMutatorMismatch(t *testing.T) {
	coordMod := hashedModule{bytes: []byte("the coordinator's module")}
	ts := startServer(t, Config{Mutator: func(string) engine.Mutator { return coordMod }})
	theirs := coordMod.Hash()
	old := hashedModule{bytes: []byte("an older module")}.Hash()

	a := openClient(t, ts, "doc", clientOptions{hash: theirs})
	noHash := openClient(t, ts, "doc", clientOptions{})
	mutate(t, a, "add", testmutator.Args{ID: "a1", Title: "from a"})
	waitSynced(t, a)

	dir := t.TempDir()
	var pushes atomic.Int64 // the Push frames b sends
	countPushes := servertest.Dialer{Write: func(_ context.Context, f protocol.Frame) error {
		if f.Push != nil {
			pushes.Add(1)
		}
		return nil
	}}
	b := openClient(t, ts, "doc", clientOptions{hash: old, stateDir: dir, dial: countPushes.Dial})
	waitFor(t, "b's mismatch status", func() bool { return b.Status().MutatorMismatch })
	s := b.Status()
	if got, want := s.CoordinatorMutator, theirs; got != want {
		t.Fatalf("CoordinatorMutator: got %q, want %q", got, want)
	}
	for _, h := range []string{theirs[:12], old[:12], "reopen"} {
		if !strings.Contains(s.LastError, h) {
			t.Fatalf("LastError %q does not mention %q", s.LastError, h)
		}
	}
	// Diffs still arrive: b has a's row, and with nothing pending it is
	// synced.
	waitSynced(t, b)
	if got, want := queryString(t, b, `SELECT id FROM items ORDER BY id`), "[[a1]]"; got != want {
		t.Fatalf("b's items: got %s, want %s", got, want)
	}

	mutate(t, b, "add", testmutator.Args{ID: "b1", Title: "from b, held"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	err := b.WaitSynced(ctx)
	cancel()
	if !errors.Is(err, client.ErrMutatorMismatch) {
		t.Fatalf("b.WaitSynced: got %v, want ErrMutatorMismatch", err)
	}
	// Others keep writing, b keeps receiving; b's own mutation stays
	// local and pending.
	mutate(t, a, "add", testmutator.Args{ID: "a2", Title: "from a again"})
	mutate(t, noHash, "add", testmutator.Args{ID: "n1", Title: "from a built-in replica"})
	waitSynced(t, a)
	waitSynced(t, noHash)
	if noHash.Status().MutatorMismatch {
		t.Fatal("a replica without a mutator hash reports a mismatch")
	}
	waitFor(t, "b sees a2 and n1", func() bool {
		return queryString(t, b, `SELECT id FROM items ORDER BY id`) == "[[a1] [a2] [b1] [n1]]"
	})
	if got := pushes.Load(); got != 0 {
		t.Fatalf("b sent %d Push frames with a mismatched mutator", got)
	}
	// a was synced before n1 reached the coordinator, perhaps: wait for it.
	waitFor(t, "a sees n1", func() bool {
		return queryString(t, a, `SELECT id FROM items ORDER BY id`) == "[[a1] [a2] [n1]]"
	})
	if got, want := b.Status().Pending, 1; got != want {
		t.Fatalf("b's pending: got %d, want %d", got, want)
	}

	// Reopened with the coordinator's module, b pushes what waited.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := openClient(t, ts, "doc", clientOptions{hash: theirs, stateDir: dir})
	waitConverged(t, ts, "doc", a, noHash, b2)
	if s := b2.Status(); s.MutatorMismatch {
		t.Fatalf("reopened b still reports a mismatch: %+v", s)
	}
	if got, want := queryString(t, a, `SELECT id FROM items ORDER BY id`), "[[a1] [a2] [b1] [n1]]"; got != want {
		t.Fatalf("a's items after b reopened: got %s, want %s", got, want)
	}
}
