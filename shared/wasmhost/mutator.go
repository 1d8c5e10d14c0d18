package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/tetratelabs/wazero/sys"
)

// Errors of a mutator call, matched with errors.Is. Each fails that call
// only: the document's transaction goes on, and an instance that may be
// damaged is discarded and started afresh for the next call. They are
// package mutatorhost's, shared with the browser's host.
var (
	ErrUnknownMutation = mutatorhost.ErrUnknownMutation // the guest has no handler of that name
	ErrBadArgs         = mutatorhost.ErrBadArgs         // the guest could not decode the args
	ErrPanic           = mutatorhost.ErrPanic           // the guest recovered from a panic
	ErrTrap            = mutatorhost.ErrTrap            // the guest trapped, exited or broke the ABI
	ErrTimeLimit       = mutatorhost.ErrTimeLimit
	ErrMemoryLimit     = mutatorhost.ErrMemoryLimit
	ErrArgsTooLarge    = mutatorhost.ErrArgsTooLarge
	ErrNoTransaction   = mutatorhost.ErrNoTransaction
	ErrClosed          = mutatorhost.ErrClosed
)

// GuestError is an error the mutator itself reported: its handler's error,
// an unknown mutation name, bad args or a recovered panic. Its message is
// the guest's, unchanged, so it reaches the client as the mutator wrote it.
type GuestError = mutatorhost.GuestError

// Mutator runs a module's mutations for one document. It implements
// engine.Mutator. It holds one instance of the module, started on first
// use and started again after a call that trapped, timed out or panicked.
// Calls are serialized: it is safe for concurrent use, but meant for one
// engine at a time (a document's coordinator, or one client); give each
// document its own so guest state never crosses documents.
type Mutator struct {
	m    *Module
	slot *mutatorhost.Slot[*instance]
	exec mutatorhost.Exec // the call's SQL, under slot's lock
}

var _ engine.Mutator = (*Mutator)(nil)

// Mutator returns a new Mutator of the module, logging guest output and
// failures to log (slog.Default() if nil). It starts no instance yet.
func (m *Module) Mutator(log *slog.Logger) *Mutator {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("mutator", m.hash[:12])
	start := func(ctx context.Context) (*instance, error) {
		if inst, ok := m.spare.Take(); ok {
			inst.out.SetLogger(log)
			return inst, nil
		}
		return m.instantiate(ctx, log)
	}
	return &Mutator{m: m, slot: mutatorhost.NewSlot(start, log)}
}

// Migrate runs the guest's migrate export on conn, inside the engine's
// transaction.
func (mu *Mutator) Migrate(ctx context.Context, conn *sqlite3.Conn) error {
	err := mu.invoke(ctx, conn, mu.m.limits.MigrateTimeout, func(ctx context.Context, inst *instance) error {
		return inst.migrate.CallWithStack(ctx, inst.stack[:])
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Mutate runs the named mutation on conn, inside the engine's transaction
// and savepoint. Errors are the guest's (a *GuestError) or the host's
// verdict on the call (ErrTrap, ErrTimeLimit, …).
func (mu *Mutator) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if err := mu.m.limits.CheckArgs(args); err != nil {
		return err
	}
	return mu.invoke(ctx, conn, mu.m.limits.Timeout, func(ctx context.Context, inst *instance) error {
		namePtr, argsPtr, err := inst.input(ctx, name, args)
		if err != nil {
			return err
		}
		inst.stack = [4]uint64{
			api32(namePtr), api32(uint32(len(name))),
			api32(argsPtr), api32(uint32(len(args))),
		}
		return inst.mutate.CallWithStack(ctx, inst.stack[:])
	})
}

func api32(v uint32) uint64 { return uint64(v) }

// Close stops the Mutator's instance; later calls fail with ErrClosed.
func (mu *Mutator) Close() error {
	mu.slot.Close()
	return nil
}

// invoke runs f, a call into the guest, on the Mutator's instance with
// conn available to the host imports and timeout as its time limit, and
// turns the outcome into an error.
func (mu *Mutator) invoke(ctx context.Context, conn *sqlite3.Conn, timeout time.Duration, f func(context.Context, *instance) error) error {
	return mu.slot.Call(ctx, conn, func(inst *instance) error {
		callCtx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		mu.exec.Begin(conn, mu.m.limits.MaxResultBytes)
		// The host imports find the call's state in the context; SQLite
		// stops a long statement when the context is done.
		old := conn.SetInterrupt(callCtx)
		inst.out.Begin()
		stop := inst.watch(callCtx)
		err := f(context.WithValue(callCtx, callKey{}, &mu.exec), inst)
		stop()
		conn.SetInterrupt(old)
		mu.exec.End()

		timedOut := callCtx.Err() != nil && ctx.Err() == nil
		if err != nil {
			return mutatorhost.Failure(ctx, timedOut, timeout, mu.m.limits, inst.out, trapMessage(err))
		}
		ret := inst.stack[0]
		if ret == 0 {
			return nil
		}
		if timedOut {
			// The guest noticed the interrupted SQL and gave up in time.
			return mutatorhost.TimeLimitError(timeout)
		}
		gerr, err := inst.record(ret)
		if err != nil {
			return err
		}
		return gerr
	})
}

// trapMessage describes how a call into the guest failed: wazero's
// message, or the guest's exit.
func trapMessage(err error) string {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return fmt.Sprintf("exited with code %d", exit.ExitCode())
	}
	return firstLine(err.Error())
}

// input places name and args in guest memory, in the region sqlsync_alloc
// returned, asking for a larger one only when they do not fit.
func (inst *instance) input(ctx context.Context, name string, args []byte) (namePtr, argsPtr uint32, err error) {
	need := uint32(len(name) + len(args))
	if inst.inPtr == 0 || need > inst.inCap {
		size := max(need, 1024)
		inst.stack[0] = api32(size)
		if err := inst.alloc.CallWithStack(ctx, inst.stack[:]); err != nil {
			return 0, 0, err
		}
		ptr := uint32(inst.stack[0])
		if ptr == 0 {
			return 0, 0, fmt.Errorf("%s(%d) returned 0", abi.ExportAlloc, size)
		}
		inst.inPtr, inst.inCap = ptr, size
	}
	if !inst.mem.WriteString(inst.inPtr, name) || !inst.mem.Write(inst.inPtr+uint32(len(name)), args) {
		return 0, 0, fmt.Errorf("%s returned %d, outside memory", abi.ExportAlloc, inst.inPtr)
	}
	return inst.inPtr, inst.inPtr + uint32(len(name)), nil
}

// record reads the error record a call returned.
func (inst *instance) record(ret uint64) (*GuestError, error) {
	ptr, n := abi.UnpackError(ret)
	if n == 0 {
		return nil, fmt.Errorf("%w: empty error record at %d", ErrTrap, ptr)
	}
	b, ok := inst.mem.Read(ptr, min(n, mutatorhost.MaxMessage))
	if !ok {
		return nil, fmt.Errorf("%w: error record at %d+%d lies outside memory", ErrTrap, ptr, n)
	}
	return mutatorhost.DecodeRecord(b), nil
}
