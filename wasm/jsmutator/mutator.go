//go:build js

package jsmutator

import (
	"context"
	"fmt"
	"log/slog"
	"syscall/js"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
)

// Mutator runs a module's mutations for one document. It implements
// engine.Mutator. It holds one instance of the module, started on first
// use and started again after a call that trapped, timed out or panicked.
// Calls are serialized. Its methods must run on goroutines of their own,
// never inside a function called from JavaScript (starting an instance
// awaits a promise), which is how the engine calls them.
//
// Its Migrate, Mutate and Close are mutatorhost.Slot's, whose rules the
// coordinator's host shares; errors are the guest's (a
// *mutatorhost.GuestError) or the host's verdict on the call
// (mutatorhost.ErrTrap, ErrTimeLimit, …), with the same messages as on the
// coordinator, and calls fail with ErrClosed after Close.
type Mutator struct {
	*mutatorhost.Slot[*instance]
	m *Module
}

var (
	_ engine.Mutator          = (*Mutator)(nil)
	_ engine.StatementCache   = (*Mutator)(nil) // the coordinator keeps statements prepared
	_ engine.EventLoopMutator = (*Mutator)(nil)
)

// InEventLoop reports true: the guest's SQL comes back into Go through a
// call from JavaScript, where a read cannot wait for a page reply (an
// event of the same loop). A lazy replica fetches the pages the guest
// lacks between attempts instead (engine.EventLoopMutator).
func (mu *Mutator) InEventLoop() bool { return true }

// Mutator returns a new Mutator of the module, logging guest output and
// failures to log (slog.Default() if nil). It starts no instance yet.
func (m *Module) Mutator(log *slog.Logger) *Mutator {
	return &Mutator{mutatorhost.NewSlot(m.limits, m.hash, log, &m.spare, m.instantiate), m}
}

// Module returns the module the Mutator runs.
func (mu *Mutator) Module() *Module { return mu.m }

// Migrate runs the guest's migrate export (mutatorhost.Instance).
func (inst *instance) Migrate(ctx context.Context, conn *sqlite3.Conn, timeout time.Duration) error {
	return inst.invoke(ctx, conn, timeout, func(timeout float64) int {
		return inst.migrate.Invoke(timeout).Int()
	})
}

// Mutate runs the guest's mutate export (mutatorhost.Instance).
func (inst *instance) Mutate(ctx context.Context, conn *sqlite3.Conn, timeout time.Duration, name string, args []byte) error {
	return inst.invoke(ctx, conn, timeout, func(timeout float64) int {
		inst.in = append(append(inst.in[:0], name...), args...)
		if len(inst.in) > inst.ioCap {
			inst.io = inst.v.Call("ensureIO", len(inst.in))
			inst.ioCap = inst.io.Length()
		}
		js.CopyBytesToJS(inst.io, inst.in)
		if cap(inst.in) > 1<<20 {
			inst.in = nil
		}
		return inst.mutate.Invoke(len(name), len(args), timeout).Int()
	})
}

// Adopt makes the instance log to log (mutatorhost.Instance).
func (inst *instance) Adopt(log *slog.Logger) {
	inst.log = log
	inst.out.SetLogger(log)
}

// Exec returns the Exec of the instance's calls (mutatorhost.Instance).
func (inst *instance) Exec() *mutatorhost.Exec { return &inst.exec }

// deadline is a context that is done once its time has come, whether or
// not a timer could run: SQLite's progress handler polls Err while a long
// statement runs inside a call from JavaScript.
type deadline struct {
	context.Context
	at time.Time
}

func (d deadline) Deadline() (time.Time, bool) { return d.at, true }

func (d deadline) Err() error {
	if err := mutatorhost.ContextErr(d.Context); err != nil {
		return err
	}
	if !time.Now().Before(d.at) {
		return context.DeadlineExceeded
	}
	return nil
}

// invoke runs call, a call into the guest with the given time limit in
// milliseconds, with conn available to the host imports, and turns its
// outcome into an error.
func (inst *instance) invoke(ctx context.Context, conn *sqlite3.Conn, timeout time.Duration, call func(float64) int) error {
	// The call stops at its time limit or at ctx's deadline, whichever
	// comes first; a timer could not fire while the guest runs, so the
	// guest's tick and SQLite's progress handler both read the clock.
	start := time.Now()
	end := deadline{ctx, start.Add(timeout)}
	if dl, ok := ctx.Deadline(); ok && dl.Before(end.at) {
		end.at = dl
	}
	if err := inst.exec.Begin(conn, inst.limits.MaxResultBytes); err != nil {
		return fmt.Errorf("mutator call: %w", err)
	}
	old := conn.SetInterrupt(end)
	inst.out.Begin()
	r := failTrap
	if cerr := catch(func() { r = call(ms(end.at.Sub(start))) }); cerr != nil {
		inst.v.Set("failure", cerr.Error())
	}
	conn.SetInterrupt(old)
	inst.exec.End()
	timedOut := end.Err() != nil && mutatorhost.ContextErr(ctx) == nil

	if r < 0 || r&1 != 0 {
		inst.takeOutput()
	}
	if r < 0 {
		return mutatorhost.Failure(ctx, r == failTime || timedOut, timeout, inst.limits, inst.out, inst.growFailed(), inst.failure(r))
	}
	n := r >> 1
	if n == 0 {
		return nil
	}
	if timedOut {
		// The guest noticed the interrupted SQL and gave up in time.
		return mutatorhost.TimeLimitError(timeout)
	}
	rec := make([]byte, n)
	js.CopyBytesToGo(rec, inst.io)
	return mutatorhost.DecodeRecord(rec)
}

// catch runs f, turning a JavaScript exception or Go panic into an error.
func catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}
