package mutatorhost

import (
	"io"
	"math/rand"
)

// WASIModule is the import module of the WASI functions a host grants.
const WASIModule = "wasi_snapshot_preview1"

// GrantedWASI are the WASI functions a mutator may import: what Go, Rust
// and C reactors need to start and print. Hosts give them fixed values: no
// arguments or environment, the wall clock stopped at [Walltime], a fake
// monotonic clock that advances [MonotonicStep] nanoseconds per reading
// (from 0), a deterministic random stream ([NewRandom]), sleeps that return
// at once, and no files (stdout and stderr go to the log).
var GrantedWASI = map[string]bool{
	"args_get": true, "args_sizes_get": true,
	"environ_get": true, "environ_sizes_get": true,
	"clock_res_get": true, "clock_time_get": true,
	"fd_close": true, "fd_fdstat_get": true, "fd_fdstat_set_flags": true,
	"fd_prestat_get": true, "fd_prestat_dir_name": true,
	"fd_seek": true, "fd_write": true,
	"poll_oneoff": true, "proc_exit": true, "random_get": true, "sched_yield": true,
}

// Walltime is the guest's wall clock, in seconds since the Unix epoch:
// 2000-01-01T00:00:00Z, always.
const Walltime = 946684800

// MonotonicStep is how far the guest's monotonic clock advances at each
// reading, in nanoseconds (1 ms); its first reading is 0. wazero's fake
// clock does the same.
const MonotonicStep = 1_000_000

// randomSeed seeds the guest's random stream: wazero's own default (a
// math/rand source seeded with 42), so that every host gives every
// instance the same bytes.
const randomSeed = 42

// NewRandom returns a new reader of the guest's random stream. Every
// instance reads its own, from the start.
func NewRandom() io.Reader {
	return rand.New(rand.NewSource(randomSeed))
}
