package mutatorhost

import "time"

// Limits bound what a mutator may use. Zero fields take their defaults.
type Limits struct {
	// Timeout bounds the wall time of one mutation; 0 means 5 s. A mutation
	// over time is stopped (an infinite loop included) and rejected.
	Timeout time.Duration
	// MigrateTimeout bounds the wall time of one migration, and of the
	// start of an instance; 0 means 60 s.
	MigrateTimeout time.Duration
	// MemoryPages caps an instance's linear memory, in 64 KiB pages; 0
	// means 1024 (64 MiB).
	MemoryPages uint32
	// MaxArgsBytes caps the size of a mutation's args; 0 means 1 MiB.
	MaxArgsBytes int
	// MaxResultBytes caps the encoded response of one sqlsync.run call (a
	// query's rows, say); 0 means 8 MiB.
	MaxResultBytes int
	// MaxLogBytes caps the guest output logged per call; 0 means 8 KiB.
	MaxLogBytes int
}

// WithDefaults returns l with its zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = 5 * time.Second
	}
	if l.MigrateTimeout <= 0 {
		l.MigrateTimeout = 60 * time.Second
	}
	if l.MemoryPages == 0 {
		l.MemoryPages = 1024
	}
	if l.MaxArgsBytes <= 0 {
		l.MaxArgsBytes = 1 << 20
	}
	if l.MaxResultBytes <= 0 {
		l.MaxResultBytes = 8 << 20
	}
	if l.MaxLogBytes <= 0 {
		l.MaxLogBytes = 8 << 10
	}
	return l
}

// MaxMemoryPages is WebAssembly's 4 GiB of 32-bit memory, in pages.
const MaxMemoryPages = 65536
