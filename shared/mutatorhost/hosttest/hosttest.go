// Package hosttest is the contract every mutator host must meet (package
// wasmhost on wazero, package wasm/jsmutator on the browser's engine), run
// against each by its own tests: the ABI's features, the limits, the
// errors and their messages, the statement guard's refusals, migrations,
// the instance's life (started on first use, discarded after a failure,
// none once closed), the WASI sandbox's values and the refusal of modules
// that are not mutators. Its benchmarks measure every host the same way.
//
// The suite runs the test mutators of the repository, built from source by
// the host's tests: [Full] (shared/wasmhost/testdata/full), its port to
// AssemblyScript [FullAS] (shared/wasmhost/testdata/full-as, with the SDK
// @sqlsync-go/mutator) and [Sandbox] (wasm/jsmutator/testdata/sandbox).
// The tests of the ABI's features, failures and the instance's life run on
// both Full and FullAS; where the guest's language decides the outcome (a
// panic, a huge allocation) the module's row in one table says what to
// expect.
package hosttest

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// The test mutators the suite asks a host's Load for.
const (
	Full    = "full"    // shared/wasmhost/testdata/full: every feature of the ABI, every way to fail
	FullAS  = "full-as" // shared/wasmhost/testdata/full-as/full.ts: Full in AssemblyScript
	Sandbox = "sandbox" // wasm/jsmutator/testdata/sandbox: records what the WASI sandbox gives it
)

// Host is the mutator host under test.
type Host struct {
	// Compile compiles wasm with limits as the host's Compile does,
	// releasing the module when tb ends if it must be.
	Compile func(tb testing.TB, wasm []byte, limits mutatorhost.Limits) (Module, error)
	// Load returns the bytes of the test mutator name ([Full], [FullAS],
	// [Sandbox]), or skips tb when the host cannot have them.
	Load func(tb testing.TB, name string) []byte
	// Trap is how the host's WebAssembly engine words an out-of-bounds
	// memory access, after "wasm error: ".
	Trap string
	// NoGrowRecord says the host cannot tell that a memory.grow failed
	// (it runs the module as it is, without package interrupt's record),
	// so a guest that then traps without a word, as AssemblyScript's
	// allocator does, has only trapped.
	NoGrowRecord bool
	// WarmUp is how many times [BenchmarkMutation] runs each of its paths
	// before it measures, once per process: an engine that optimizes hot
	// code only after a while (V8) needs it.
	WarmUp int
}

// Module is a module compiled by the host under test.
type Module interface {
	// Mutator returns a new Mutator of the module, logging to log
	// (slog.Default() if nil).
	Mutator(log *slog.Logger) Mutator
}

// Mutator is a host's Mutator: an engine.Mutator that can be closed.
type Mutator interface {
	engine.Mutator
	Close() error
}

// Limits are tight enough for the failure tests to run fast, except the
// time limit: it is generous, so that on a loaded machine no test whose
// subject is another limit (or none) runs into it first.
var Limits = mutatorhost.Limits{
	Timeout:        30 * time.Second,
	MemoryPages:    512, // 32 MiB
	MaxResultBytes: 1 << 20,
}

// timeLimits are Limits with a tight time limit, for the tests about the
// time limit only.
var timeLimits = func() mutatorhost.Limits {
	l := Limits
	l.Timeout = 300 * time.Millisecond
	return l
}()

// timeSlack is how late past its time limit a call may stop on a loaded
// machine; a call that is not stopped runs forever.
const timeSlack = 10 * time.Second

// Run runs the contract suite against h: the tests of Full's mutations on
// [Full], then again on [FullAS] (as subtest "full-as"), then the sandbox's
// and the refusal of bad modules.
func Run(t *testing.T, h Host) {
	runFull(t, h, Full)
	t.Run(FullAS, func(t *testing.T) { runFull(t, h, FullAS) })
	t.Run("Sandbox", func(t *testing.T) { testSandbox(t, h) })
	t.Run("BadModules", func(t *testing.T) { testBadModules(t, h) })
}

// runFull runs the tests of Full's mutations on the test mutator name.
func runFull(t *testing.T, h Host, name string) {
	m := fullModuleOf(t, name)
	t.Run("Features", func(t *testing.T) { testFeatures(t, h, m) })
	t.Run("Failures", func(t *testing.T) { Failures(t, h, name) })
	t.Run("InstanceLifecycle", func(t *testing.T) { testInstanceLifecycle(t, h, m) })
	t.Run("StatementCache", func(t *testing.T) { testStatementCache(t, h, m) })
	t.Run("ClientStatementCache", func(t *testing.T) { testClientStatementCache(t, h, m) })
	t.Run("MutateOutsideTransaction", func(t *testing.T) { testMutateOutsideTransaction(t, h, m) })
	t.Run("ClientTimeLimit", func(t *testing.T) { testClientTimeLimit(t, h, m) })
	t.Run("OutputLogged", func(t *testing.T) { testOutputLogged(t, h, m) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, h, m) })
}

// compile loads the test mutator name and compiles it with limits,
// failing tb if it cannot.
func (h Host) compile(tb testing.TB, name string, limits mutatorhost.Limits) Module {
	tb.Helper()
	mod, err := h.Compile(tb, h.Load(tb, name), limits)
	if err != nil {
		tb.Fatalf("compile %s: %v", name, err)
	}
	return mod
}

// OpenCoordinator opens a coordinator document in memory that runs mut,
// closed when tb ends; the close must succeed (the host finalized what it
// kept prepared on the coordinator's connection).
func OpenCoordinator(tb testing.TB, mut engine.Mutator) *engine.Coordinator {
	tb.Helper()
	c, err := engine.OpenCoordinator(context.Background(), memstore.New(), mut, engine.CoordinatorOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("close the coordinator: %v", err)
		}
	})
	return c
}

// OpenConn opens a plain connection in a transaction, as the engine runs a
// mutator, closed when tb ends.
func OpenConn(tb testing.TB) *sqlite3.Conn {
	tb.Helper()
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if err := conn.Exec(`BEGIN`); err != nil {
		tb.Fatal(err)
	}
	return conn
}

// doc is a coordinator document under test, with its next seq.
type doc struct {
	t     *testing.T
	coord *engine.Coordinator
	seq   uint64
}

func openDoc(t *testing.T, mut engine.Mutator) *doc {
	t.Helper()
	return &doc{t: t, coord: OpenCoordinator(t, mut)}
}

func jsonArgs(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// apply applies one mutation and returns its rejection, or nil.
func (d *doc) apply(name string, args []byte) error {
	d.t.Helper()
	d.seq++
	res, err := d.coord.Apply(context.Background(), []engine.Mutation{{ClientID: "c", Seq: d.seq, Name: name, Args: args}})
	if err != nil {
		d.t.Fatalf("apply %s: %v", name, err)
	}
	if len(res.Applied) != 1 {
		d.t.Fatalf("apply %s: applied %d mutations", name, len(res.Applied))
	}
	if len(res.Rejected) > 0 {
		return res.Rejected[0].Err
	}
	return nil
}

func (d *doc) mustApply(name string, args []byte) {
	d.t.Helper()
	if err := d.apply(name, args); err != nil {
		d.t.Fatalf("%s %s: %v", name, args, err)
	}
}

func (d *doc) query(sql string, args ...any) [][]any {
	d.t.Helper()
	rows, err := d.coord.Query(sql, args...)
	if err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
	return rows.Values
}

// check asserts the document is intact: integrity_check is ok and the
// items ids are exactly want.
func (d *doc) check(want ...string) {
	d.t.Helper()
	if got := d.query(`PRAGMA integrity_check`); len(got) != 1 || got[0][0] != "ok" {
		d.t.Fatalf("integrity_check: %v", got)
	}
	var ids []string
	for _, r := range d.query(`SELECT id FROM items ORDER BY id`) {
		ids = append(ids, r[0].(string))
	}
	if got, w := strings.Join(ids, ","), strings.Join(want, ","); got != w {
		d.t.Fatalf("items %q, want %q", got, w)
	}
}
