package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
//
// Its Migrate, Mutate and Close are mutatorhost.Slot's, whose rules the
// browser's host shares; errors are the guest's (a *GuestError) or the
// host's verdict on the call (ErrTrap, ErrTimeLimit, …), and calls fail
// with ErrClosed after Close.
type Mutator struct {
	*mutatorhost.Slot[*instance]
}

var (
	_ engine.Mutator        = (*Mutator)(nil)
	_ engine.StatementCache = (*Mutator)(nil) // the coordinator keeps statements prepared
)

// Mutator returns a new Mutator of the module, logging guest output and
// failures to log (slog.Default() if nil). It starts no instance yet.
func (m *Module) Mutator(log *slog.Logger) *Mutator {
	return &Mutator{mutatorhost.NewSlot(m.limits, m.hash, log, &m.spare, m.instantiate)}
}

// Migrate runs the guest's migrate export (mutatorhost.Instance).
func (inst *instance) Migrate(ctx context.Context, conn *sqlite3.Conn, timeout time.Duration) error {
	return inst.invoke(ctx, conn, timeout, func(ctx context.Context) error {
		return inst.migrate.CallWithStack(ctx, inst.stack[:])
	})
}

// Mutate runs the guest's mutate export (mutatorhost.Instance).
func (inst *instance) Mutate(ctx context.Context, conn *sqlite3.Conn, timeout time.Duration, name string, args []byte) error {
	return inst.invoke(ctx, conn, timeout, func(ctx context.Context) error {
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

// Adopt makes the instance log to log (mutatorhost.Instance).
func (inst *instance) Adopt(log *slog.Logger) { inst.out.SetLogger(log) }

// Exec returns the Exec of the instance's calls (mutatorhost.Instance).
func (inst *instance) Exec() *mutatorhost.Exec { return &inst.exec }

// invoke runs f, a call into the guest, with conn available to the host
// imports and timeout as its time limit, and turns the outcome into an
// error.
func (inst *instance) invoke(ctx context.Context, conn *sqlite3.Conn, timeout time.Duration, f func(context.Context) error) error {
	if err := inst.exec.Begin(conn, inst.limits.MaxResultBytes); err != nil {
		return fmt.Errorf("mutator call: %w", err)
	}
	// The engine gives each mutation a deadline of its own, usually the
	// nearer one: then ctx is the call's context as it is, since
	// WithTimeout would only wrap it in a context canceled with it (a
	// tenth of the host's cost of a call).
	callCtx := ctx
	if dl, ok := ctx.Deadline(); !ok || !dl.Before(time.Now().Add(timeout)) {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// The host imports find the call's state in the context; SQLite stops
	// a long statement when the context is done.
	old := conn.SetInterrupt(callCtx)
	inst.out.Begin()
	inst.clearGrowFailed()
	stop := inst.watch(callCtx)
	err := f(context.WithValue(callCtx, callKey{}, &inst.exec))
	stop()
	conn.SetInterrupt(old)
	inst.exec.End()

	timedOut := callCtx.Err() != nil && ctx.Err() == nil
	if err != nil {
		return mutatorhost.Failure(ctx, timedOut, timeout, inst.limits, inst.out, inst.growFailed(), trapMessage(err))
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
}

// trapMessage describes how a call into the guest failed: wazero's
// message, or the guest's exit.
func trapMessage(err error) string {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return fmt.Sprintf("exited with code %d", exit.ExitCode())
	}
	msg := err.Error()
	if fn := trapFunction(msg); fn != "" {
		return firstLine(msg) + " in " + fn
	}
	return firstLine(msg)
}

// trapFunction returns the name of the guest function a trap happened in,
// from wazero's stack trace: the innermost frame the module's name section
// names, past the frames of AssemblyScript's library (~lib/: its runtime,
// the SDK's abort handler), or "" if none.
func trapFunction(msg string) string {
	_, trace, ok := strings.Cut(msg, "\nwasm stack trace:\n")
	if !ok {
		return ""
	}
	for line := range strings.Lines(trace) {
		// Frames are "\tmodule.function(params) results", the module's
		// name possibly empty; "\t\t" lines below a frame give offsets.
		if strings.HasPrefix(line, "\t\t") {
			continue
		}
		_, frame, _ := strings.Cut(strings.TrimSpace(line), ".")
		if i := strings.LastIndexByte(frame, '('); i > 0 {
			frame = frame[:i]
		}
		if frame == "" || frame[0] == '$' {
			return ""
		}
		if !strings.HasPrefix(frame, "~lib/") {
			return frame
		}
	}
	return ""
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
