//go:build js

package jsmutator_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest"
	"github.com/sqlsync-go/sqlsync/wasm/jsmutator"
)

// A guest that traps after a memory.grow failed at the memory limit (the
// maximum the rewriter gave its memory), saying nothing, is over the
// memory limit, and its instance is discarded; one whose grow succeeded,
// or that trapped in a later call than its failed grow, only trapped.
func TestGrowFailed(t *testing.T) {
	ctx := context.Background()
	m, err := jsmutator.Compile(ctx, hosttest.GrowMutator(), mutatorhost.Limits{MemoryPages: 32}) // 2 MiB
	if err != nil {
		t.Fatal(err)
	}
	if !m.Bounded() {
		t.Fatal("the module was not rewritten")
	}
	mut := m.Mutator(nil)
	defer mut.Close()
	pages := func(n int) []byte { return make([]byte, n) }
	mutate := func(name string, args []byte) error {
		return mut.Mutate(ctx, hosttest.OpenConn(t), name, args)
	}
	if err := mutate("grow", pages(20)); err != nil {
		t.Fatalf("a grow within the limit: %v", err)
	}
	err = mutate("grow", pages(20)) // 41 pages
	if !errors.Is(err, mutatorhost.ErrMemoryLimit) || err.Error() != "mutator exceeded its memory limit of 2 MiB" {
		t.Fatalf("a grow past the limit: got %v, want ErrMemoryLimit", err)
	}
	// A fresh instance (1 page) grows to the limit; the last one (21
	// pages) could not have.
	if err := mutate("grow", pages(31)); err != nil {
		t.Fatalf("the instance was not discarded: %v", err)
	}
	// A failed grow the guest copes with fails nothing; a trap in the next
	// call is a trap, the flag cleared in between.
	if err := mutate("try", pages(1)); err != nil {
		t.Fatalf("a failed grow the guest copes with: %v", err)
	}
	err = mutate("crash", nil)
	if !errors.Is(err, mutatorhost.ErrTrap) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("a trap after a failed grow in an earlier call: got %v, want ErrTrap", err)
	}
	err = mutate("crash", pages(1))
	if !errors.Is(err, mutatorhost.ErrTrap) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("a trap after a grow within the limit: got %v, want ErrTrap", err)
	}
}
