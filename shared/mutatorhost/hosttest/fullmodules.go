package hosttest

import (
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
)

// fullModule is a test mutator with Full's mutations ([Full], or [FullAS]
// in another language) and what the suite expects of it where the guest's
// language decides: this table is the one place those expectations differ.
// Every other test and case holds for both modules alike.
type fullModule struct {
	name string
	// failures are the outcomes of [Failures]' cases that differ from
	// Go's, by case name.
	failures map[string]outcome
}

// outcome is how a failure case is rejected.
type outcome struct {
	want string // in the rejection's message
	is   error  // matched by the error Mutate returns; nil: not checked
	// silentGrow: the guest traps when a memory.grow fails, without a
	// word (AssemblyScript's allocator runs unreachable), so only a host
	// that records failed grows tells the memory limit from a trap: on
	// a host with NoGrowRecord the case is a trap.
	silentGrow bool
}

// on returns o as host h must report it.
func (o outcome) on(h Host) outcome {
	if o.silentGrow && h.NoGrowRecord {
		return outcome{want: "mutator trapped: wasm error: ", is: mutatorhost.ErrTrap}
	}
	return o
}

var fullModules = map[string]fullModule{
	Full: {name: Full},
	FullAS: {name: FullAS, failures: map[string]outcome{
		// A throw cannot be caught in AssemblyScript: the SDK's abort
		// handler writes the message to stderr and traps, where a Go
		// guest recovers the panic into status 4. The instance is
		// discarded either way.
		"panic": {`(stderr: panic: boom at `, mutatorhost.ErrTrap, false},
		// The runtime refuses an ArrayBuffer of 1 GiB (its blocks stop
		// short of it) before it asks for any memory: a RangeError, so a
		// trap, and the memory limit never came into it. Go's runtime
		// asks, is refused by memory.grow and says "out of memory".
		"huge allocation": {"(stderr: panic: Invalid length at ~lib/", mutatorhost.ErrTrap, false},
		// Past the limit memory.grow fails and the allocator traps.
		"growing allocation": {"mutator exceeded its memory limit of 32 MiB", mutatorhost.ErrMemoryLimit, true},
	}},
}

// fullModuleOf returns the test mutator called name, failing tb if it has
// no row in fullModules.
func fullModuleOf(tb testing.TB, name string) fullModule {
	tb.Helper()
	m, ok := fullModules[name]
	if !ok {
		tb.Fatalf("no test mutator %q with Full's mutations", name)
	}
	return m
}
