package scenario

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// Mutator is a mutator implementation the scenarios can run. Every
// implementation must honour the todo contract of package testmutator
// (add, rename, toggle, bulk, ... with its JSON args), since the scenarios
// drive that workload.
type Mutator struct {
	// Name is how the -mutator flag names it.
	Name string
	// New returns a mutator for one replica or document, under the run's
	// configuration. If the returned mutator is an io.Closer, the scenario
	// closes it when done.
	New func(ctx context.Context, cfg *Config) (engine.Mutator, error)
}

var (
	mutatorsMu sync.Mutex
	mutators   = map[string]Mutator{}
)

// RegisterMutator makes m available to the scenarios. Implementations
// register themselves from an init function of their own file, so that the
// suite builds whether or not their package exists yet.
func RegisterMutator(m Mutator) {
	mutatorsMu.Lock()
	defer mutatorsMu.Unlock()
	mutators[m.Name] = m
}

// MutatorNames returns the names of the registered mutators, "go" first.
func MutatorNames() []string {
	mutatorsMu.Lock()
	defer mutatorsMu.Unlock()
	var names []string
	for n := range mutators {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "go":
			return -1
		case b == "go":
			return 1
		}
		return strings.Compare(a, b)
	})
	return names
}

// lookupMutator returns the mutator implementation called name.
func lookupMutator(name string) (Mutator, error) {
	mutatorsMu.Lock()
	defer mutatorsMu.Unlock()
	m, ok := mutators[name]
	if !ok {
		return Mutator{}, fmt.Errorf("no mutator %q (have %s)", name, strings.Join(keys(mutators), ", "))
	}
	return m, nil
}

func keys(m map[string]Mutator) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func init() {
	RegisterMutator(Mutator{
		Name: "go",
		New: func(context.Context, *Config) (engine.Mutator, error) {
			return testmutator.Mutator{}, nil
		},
	})
}

// mutatorPool hands out mutators of one implementation and closes those that
// need closing.
type mutatorPool struct {
	impl Mutator
	cfg  *Config
	mu   sync.Mutex
	open []io.Closer
}

// mutators returns the pool of the run's mutator (Config.Mutator), made on
// first use; runOne closes it when the scenario ends.
func (e *env) mutators() (*mutatorPool, error) {
	if e.pool == nil {
		impl, err := lookupMutator(e.cfg.Mutator)
		if err != nil {
			return nil, err
		}
		e.pool = &mutatorPool{impl: impl, cfg: &e.cfg}
	}
	return e.pool, nil
}

// get returns a new mutator for one replica or document.
func (p *mutatorPool) get(ctx context.Context) (engine.Mutator, error) {
	m, err := p.impl.New(ctx, p.cfg)
	if err != nil {
		return nil, fmt.Errorf("new %s mutator: %w", p.impl.Name, err)
	}
	if c, ok := m.(io.Closer); ok {
		p.mu.Lock()
		p.open = append(p.open, c)
		p.mu.Unlock()
	}
	return m, nil
}

// mustGet is get for callers that cannot return an error (the server's
// mutator hook); a failure yields a mutator that rejects everything.
func (p *mutatorPool) mustGet(ctx context.Context) engine.Mutator {
	m, err := p.get(ctx)
	if err != nil {
		return failingMutator{err}
	}
	return m
}

// close closes every mutator handed out.
func (p *mutatorPool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for _, c := range p.open {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	p.open = nil
	return first
}

// failingMutator stands in for a mutator that could not be made.
type failingMutator struct{ err error }

func (f failingMutator) Migrate(context.Context, *sqlite3.Conn) error { return f.err }

func (f failingMutator) Mutate(context.Context, *sqlite3.Conn, string, []byte) error { return f.err }
