//go:build js

package jsmutator

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall/js"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
)

// Mutator runs a module's mutations for one document. It implements
// engine.Mutator. It holds one instance of the module, started on first
// use and started again after a call that trapped, timed out or panicked.
// Calls are serialized. Its methods must run on goroutines of their own,
// never inside a function called from JavaScript (starting an instance
// awaits a promise), which is how the engine calls them.
type Mutator struct {
	m   *Module
	log *slog.Logger

	mu     sync.Mutex
	inst   *instance // nil until first use and after a discard
	closed bool
}

var _ engine.Mutator = (*Mutator)(nil)

// Mutator returns a new Mutator of the module, logging guest output and
// failures to log (slog.Default() if nil). It starts no instance yet.
func (m *Module) Mutator(log *slog.Logger) *Mutator {
	if log == nil {
		log = slog.Default()
	}
	return &Mutator{m: m, log: log.With("mutator", m.hash[:12])}
}

// Module returns the module the Mutator runs.
func (mu *Mutator) Module() *Module { return mu.m }

// Migrate runs the guest's migrate export on conn, inside the engine's
// transaction.
func (mu *Mutator) Migrate(ctx context.Context, conn *sqlite3.Conn) error {
	err := mu.invoke(ctx, conn, mu.m.limits.MigrateTimeout, func(inst *instance, timeout float64) int {
		return inst.migrate.Invoke(timeout).Int()
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Mutate runs the named mutation on conn, inside the engine's transaction
// and savepoint. Errors are the guest's (a *mutatorhost.GuestError) or the
// host's verdict on the call (mutatorhost.ErrTrap, ErrTimeLimit, …), with
// the same messages as on the coordinator.
func (mu *Mutator) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if len(args) > mu.m.limits.MaxArgsBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", mutatorhost.ErrArgsTooLarge, len(args), mu.m.limits.MaxArgsBytes)
	}
	return mu.invoke(ctx, conn, mu.m.limits.Timeout, func(inst *instance, timeout float64) int {
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

// Close drops the Mutator's instance; later calls fail with ErrClosed.
func (mu *Mutator) Close() error {
	mu.mu.Lock()
	defer mu.mu.Unlock()
	mu.closed = true
	mu.discard()
	return nil
}

func (mu *Mutator) discard() {
	if mu.inst != nil {
		mu.inst.release()
		mu.inst = nil
	}
}

// deadline is a context that is done once its time has come, whether or
// not a timer could run: SQLite's progress handler polls Err while a long
// statement runs inside a call from JavaScript.
type deadline struct {
	context.Context
	at time.Time
}

func (d deadline) Deadline() (time.Time, bool) { return d.at, true }

func (d deadline) Err() error {
	if err := ctxErr(d.Context); err != nil {
		return err
	}
	if !time.Now().Before(d.at) {
		return context.DeadlineExceeded
	}
	return nil
}

// invoke runs call, a call into the guest with the given time limit, with
// conn available to the host imports, and turns its outcome into an error.
func (mu *Mutator) invoke(ctx context.Context, conn *sqlite3.Conn, timeout time.Duration, call func(*instance, float64) int) (err error) {
	mu.mu.Lock()
	defer mu.mu.Unlock()
	if mu.closed {
		return mutatorhost.ErrClosed
	}
	if conn.GetAutocommit() {
		return mutatorhost.ErrNoTransaction
	}
	if err := ctxErr(ctx); err != nil {
		return fmt.Errorf("mutator call: %w", err)
	}
	if mu.inst == nil {
		inst := mu.m.takeSpare()
		if inst != nil {
			inst.log = mu.log
			inst.out.SetLogger(mu.log)
		} else if inst, err = mu.m.instantiate(ctx, mu.log); err != nil {
			return err
		}
		mu.inst = inst
	}
	inst := mu.inst

	// The call stops at its time limit or at ctx's deadline, whichever
	// comes first; a timer could not fire while the guest runs, so the
	// guest's tick and SQLite's progress handler both read the clock.
	start := time.Now()
	end := deadline{ctx, start.Add(timeout)}
	if dl, ok := ctx.Deadline(); ok && dl.Before(end.at) {
		end.at = dl
	}
	inst.exec.Begin(conn, mu.m.limits.MaxResultBytes)
	old := conn.SetInterrupt(end)
	inst.out.Begin()
	r := failTrap
	if cerr := catch(func() { r = call(inst, ms(end.at.Sub(start))) }); cerr != nil {
		inst.v.Set("failure", cerr.Error())
	}
	conn.SetInterrupt(old)
	inst.exec.End()
	timedOut := end.Err() != nil && ctxErr(ctx) == nil

	if r < 0 || r&1 != 0 {
		inst.takeOutput()
	}
	if r < 0 {
		err = mu.classify(ctx, r, timedOut, timeout, inst)
		mu.discard()
		mu.log.Debug("mutator call failed; instance discarded", "err", err)
		return err
	}
	n := r >> 1
	if n == 0 {
		return nil
	}
	if timedOut {
		// The guest noticed the interrupted SQL and gave up in time.
		mu.discard()
		return fmt.Errorf("%w of %v", mutatorhost.ErrTimeLimit, timeout)
	}
	rec := make([]byte, n)
	js.CopyBytesToGo(rec, inst.io)
	gerr := mutatorhost.DecodeRecord(rec)
	if gerr.Status == abi.StatusPanic {
		mu.discard() // recovered, but its globals may be half-updated
	}
	return gerr
}

// classify turns a failed call into the host's verdict, as wasmhost does.
func (mu *Mutator) classify(ctx context.Context, r int, timedOut bool, timeout time.Duration, inst *instance) error {
	switch {
	case ctxErr(ctx) != nil:
		return fmt.Errorf("mutator call: %w", ctxErr(ctx))
	case r == failTime || timedOut:
		return fmt.Errorf("%w of %v", mutatorhost.ErrTimeLimit, timeout)
	case inst.out.OutOfMemory():
		return fmt.Errorf("%w of %d MiB%s", mutatorhost.ErrMemoryLimit, mu.m.limits.MemoryPages/16, inst.out.Summary())
	}
	return fmt.Errorf("%w: %s%s", mutatorhost.ErrTrap, inst.failure(r), inst.out.Summary())
}

// ctxErr is ctx.Err(), or context.DeadlineExceeded once ctx's deadline has
// passed even if its timer has not fired yet.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
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
