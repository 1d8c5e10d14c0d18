package wasmhost_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
)

// A guest that traps after a memory.grow failed at the memory limit,
// saying nothing, is over the memory limit, and its instance is discarded;
// one whose grow succeeded, or that trapped in a later call than its
// failed grow, only trapped. A module the rewriter could not read has no
// record of a failed grow: its guest only trapped.
func TestGrowFailed(t *testing.T) {
	ctx := context.Background()
	limits := wasmhost.Limits{MemoryPages: 32} // 2 MiB
	pages := func(n int) []byte { return make([]byte, n) }
	mutate := func(t *testing.T, mut *wasmhost.Mutator, name string, args []byte) error {
		t.Helper()
		return mut.Mutate(ctx, hosttest.OpenConn(t), name, args)
	}

	t.Run("rewritten", func(t *testing.T) {
		m, err := wasmhost.Compile(ctx, hosttest.GrowMutator(), limits)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(ctx)
		if !m.Interruptible() {
			t.Fatal("the module was not rewritten")
		}
		mut := m.Mutator(nil)
		defer mut.Close()
		if err := mutate(t, mut, "grow", pages(20)); err != nil {
			t.Fatalf("a grow within the limit: %v", err)
		}
		err = mutate(t, mut, "grow", pages(20)) // 41 pages
		if !errors.Is(err, wasmhost.ErrMemoryLimit) || err.Error() != "mutator exceeded its memory limit of 2 MiB" {
			t.Fatalf("a grow past the limit: got %v, want ErrMemoryLimit", err)
		}
		// A fresh instance (1 page) grows to the limit; the last one (21
		// pages) could not have.
		if err := mutate(t, mut, "grow", pages(31)); err != nil {
			t.Fatalf("the instance was not discarded: %v", err)
		}
		// A failed grow the guest copes with fails nothing; a trap in the
		// next call is a trap, the flag cleared in between.
		if err := mutate(t, mut, "try", pages(1)); err != nil {
			t.Fatalf("a failed grow the guest copes with: %v", err)
		}
		err = mutate(t, mut, "crash", nil)
		if !errors.Is(err, wasmhost.ErrTrap) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("a trap after a failed grow in an earlier call: got %v, want ErrTrap", err)
		}
		// A trap after a grow that succeeded is a trap.
		err = mutate(t, mut, "crash", pages(1))
		if !errors.Is(err, wasmhost.ErrTrap) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("a trap after a grow within the limit: got %v, want ErrTrap", err)
		}
	})

	t.Run("wazero checks", func(t *testing.T) {
		defer wasmhost.UseInterruptFlag(false)()
		m, err := wasmhost.Compile(ctx, hosttest.GrowMutator(), limits)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(ctx)
		mut := m.Mutator(nil)
		defer mut.Close()
		err = mutate(t, mut, "grow", pages(40))
		if !errors.Is(err, wasmhost.ErrTrap) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("a grow past the limit, unrecorded: got %v, want ErrTrap", err)
		}
	})
}
