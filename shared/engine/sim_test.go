package engine_test

import (
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/enginetest"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// The simulation runs clients and a coordinator over an in-memory network
// that a seeded random source drives: mutations, lost and duplicated
// messages, disconnects, and restarts of clients and of the coordinator.
// At quiescent points it checks the design's five invariants.
//
// SQLSYNC_SIM_SEEDS=N runs N seeds (default 200, 20 with -short);
// SQLSYNC_SIM_SEED=S runs seed S alone; a malformed value fails the test.
func TestSimulation(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	first, seeds, err := enginetest.Seeds(seeds)
	if err != nil {
		t.Fatal(err)
	}
	for seed := first; seed < first+uint64(seeds); seed++ {
		if err := enginetest.Run(seed, 5, 300, testmutator.Mutator{}); err != nil {
			t.Fatalf("seed=%d: %v\nreproduce: SQLSYNC_SIM_SEED=%d go test ./shared/engine -run TestSimulation", seed, err, seed)
		}
	}
}
