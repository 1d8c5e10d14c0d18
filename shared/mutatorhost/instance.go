package mutatorhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/abi"
)

// Instance is one running copy of a module, with its own memory, as a host
// holds it: the host's own part of a call into the guest. A [Slot] calls
// its methods one at a time.
type Instance interface {
	// Migrate runs the guest's migrate export on conn, stopping it after
	// timeout, and returns the guest's error (a *GuestError) or the host's
	// verdict on the call ([Failure], [TimeLimitError], ErrTrap, …).
	Migrate(ctx context.Context, conn *sqlite3.Conn, timeout time.Duration) error
	// Mutate runs the named mutation as Migrate runs the migration.
	Mutate(ctx context.Context, conn *sqlite3.Conn, timeout time.Duration, name string, args []byte) error
	// Adopt passes the instance to a new owner, which logs to log: a
	// module's spare, taken by a Mutator.
	Adopt(log *slog.Logger)
	// Exec returns the Exec that runs the guest's SQL in the instance's
	// calls: the Slot tells it which connection it may keep statements
	// on, and finalizes them.
	Exec() *Exec
	// Close stops the instance and frees what it holds. It is called once,
	// after the instance's last call.
	Close()
}

// Slot is a host's Mutator but for the calls into the guest, which its
// instances make: the one place of the rules both hosts follow. It holds
// the Mutator's instance: none until the first call, which takes the
// module's spare or starts one; a call that may have damaged it discards
// it, and the next call starts a fresh one; Close discards it for good. It
// applies the limits that are not the guest's to keep (the size of args,
// the time limit of a mutation or a migration). Calls are serialized: it
// is safe for concurrent use. A host's Mutator embeds one, made with
// [NewSlot], for its Migrate, Mutate and Close.
//
// On the connection CacheStatements names, the instance keeps the guest's
// statements prepared from one call to the next (see [Exec.Keep]);
// ForgetStatements finalizes them, and must run before that connection
// closes. Slot implements engine.StatementCache so: the engine's
// coordinator opts its connection in.
type Slot[I Instance] struct {
	limits Limits
	log    *slog.Logger
	spare  *Spare[I]
	start  func(context.Context, *slog.Logger) (I, error)

	mu     sync.Mutex
	inst   I
	live   bool          // inst is a started instance, not yet discarded
	keep   *sqlite3.Conn // the connection statements may be kept on
	watch  func(sql []byte, kept bool)
	closed bool
}

// NewSlot returns a Slot of the module whose hash is hash, under limits
// (zero fields take their defaults), that takes spare's instance first,
// then starts instances with start. Its instances, and the Slot itself when it
// discards one, log to log (slog.Default() if nil), at debug level.
func NewSlot[I Instance](limits Limits, hash string, log *slog.Logger, spare *Spare[I], start func(context.Context, *slog.Logger) (I, error)) *Slot[I] {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("mutator", hash[:min(12, len(hash))])
	return &Slot[I]{limits: limits.WithDefaults(), log: log, spare: spare, start: start}
}

// Migrate runs the guest's migration on conn, inside the engine's
// transaction, within Limits.MigrateTimeout.
func (s *Slot[I]) Migrate(ctx context.Context, conn *sqlite3.Conn) error {
	err := s.call(ctx, conn, func(inst I) error { return inst.Migrate(ctx, conn, s.limits.MigrateTimeout) })
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Mutate runs the named mutation on conn, inside the engine's transaction
// and savepoint, within Limits.Timeout; args larger than
// Limits.MaxArgsBytes fail with ErrArgsTooLarge before anything runs.
func (s *Slot[I]) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	if len(args) > s.limits.MaxArgsBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrArgsTooLarge, len(args), s.limits.MaxArgsBytes)
	}
	return s.call(ctx, conn, func(inst I) error { return inst.Mutate(ctx, conn, s.limits.Timeout, name, args) })
}

// call runs f on the instance, starting one first if there is none, and
// returns f's error. It runs nothing, and fails, when the Slot is closed
// ([ErrClosed]), when conn is outside a transaction ([ErrNoTransaction]:
// the engine runs a mutator inside its own), or when ctx is done. After f,
// the instance lives on only if f succeeded or returned the guest's own
// error ([GuestError]) other than a recovered panic, whose globals may be
// half-updated; anything else (a trap, the time or memory limit, a broken
// ABI, a canceled call) discards it.
func (s *Slot[I]) call(ctx context.Context, conn *sqlite3.Conn, f func(I) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if conn.GetAutocommit() {
		return ErrNoTransaction
	}
	if err := ContextErr(ctx); err != nil {
		return fmt.Errorf("mutator call: %w", err)
	}
	if !s.live {
		inst, ok := s.spare.Take()
		if ok {
			inst.Adopt(s.log)
		} else {
			var err error
			if inst, err = s.start(ctx, s.log); err != nil {
				return err
			}
		}
		s.inst, s.live = inst, true
	}
	exec := s.inst.Exec()
	if exec.keep != s.keep {
		if err := exec.Keep(s.keep); err != nil {
			return errors.Join(fmt.Errorf("mutator call: %w", err), s.discard())
		}
	}
	exec.watch = s.watch
	err := f(s.inst)
	if err != nil && !survives(err) {
		// The call's error is the mutation's; a statement that would not
		// finalize is only logged.
		derr := s.discard()
		s.log.Debug("mutator call failed; instance discarded", "err", err, "finalize_err", derr)
	}
	return err
}

// survives reports whether an instance may serve another call after one
// that ended with err.
func survives(err error) bool {
	var gerr *GuestError
	return errors.As(err, &gerr) && gerr.Status != abi.StatusPanic
}

// CacheStatements lets the instance keep the statements the guest prepares
// on conn from one call to the next, until ForgetStatements(conn), which
// the caller promises to run before conn closes (a connection cannot close
// while statements prepared on it are not finalized). Statements kept on
// the previous such connection are finalized at the next call: a Mutator
// serves one engine at a time.
func (s *Slot[I]) CacheStatements(conn *sqlite3.Conn) {
	s.CacheStatementsWatched(conn, nil)
}

// CacheStatementsWatched is CacheStatements with watch told of each
// statement the guest runs on conn, before it is prepared (kept false) or
// run from the cache (kept true), on the calling goroutine: what a replica
// needs to credit a kept statement with what its authorizer saw when the
// statement was prepared.
func (s *Slot[I]) CacheStatementsWatched(conn *sqlite3.Conn, watch func(sql []byte, kept bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep, s.watch = conn, watch
}

// ForgetStatements finalizes the statements kept on conn and keeps none on
// it from now on: to run before conn closes.
func (s *Slot[I]) ForgetStatements(conn *sqlite3.Conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keep == conn {
		s.keep, s.watch = nil, nil
	}
	if !s.live {
		return nil
	}
	if err := s.inst.Exec().Forget(conn); err != nil {
		return fmt.Errorf("mutator: %w", err)
	}
	return nil
}

// Close discards the instance, finalizing the statements it kept; later
// calls fail with ErrClosed. It may be called more than once. Close the
// Mutator after its engine, or on the engine's goroutine: finalizing uses
// the connection.
func (s *Slot[I]) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.keep, s.watch = nil, nil
	if err := s.discard(); err != nil {
		return fmt.Errorf("close mutator: %w", err)
	}
	return nil
}

// discard finalizes the statements the instance kept, then closes it. A
// call discards its instance on the call's own connection, where the
// statements are kept (see Exec.Begin).
func (s *Slot[I]) discard() error {
	if !s.live {
		return nil
	}
	err := s.inst.Exec().Close()
	s.inst.Close()
	var none I
	s.inst, s.live = none, false
	return err
}

// Spare holds the instance a module starts at load, to check that it
// starts, until the module's first Mutator takes it.
type Spare[I Instance] struct {
	mu   sync.Mutex
	inst I
	ok   bool
}

// Put keeps inst as the spare.
func (s *Spare[I]) Put(inst I) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inst, s.ok = inst, true
}

// Take returns the spare, once: ok is false once it has been taken, or
// if s is nil.
func (s *Spare[I]) Take() (inst I, ok bool) {
	if s == nil {
		return inst, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok = s.inst, s.ok
	var none I
	s.inst, s.ok = none, false
	return inst, ok
}

// ContextErr is ctx.Err(), or context.DeadlineExceeded once ctx's
// deadline has passed even if its timer has not fired yet (in the
// browser, no timer fires while Go code runs).
func ContextErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// TimeLimitError is the error of a call stopped at its time limit,
// timeout.
func TimeLimitError(timeout time.Duration) error {
	return fmt.Errorf("%w of %v", ErrTimeLimit, timeout)
}

// Failure is the host's verdict on a call into the guest that did not
// return normally, in the order that decides it: the caller's ctx ended
// (its error); the call's time limit, timeout, passed (timedOut); the
// guest ran out of memory: a memory.grow failed during the call
// (growFailed, the flag of package interrupt, false for a module the
// rewriter could not read) or its stderr says so (out: a Go runtime's
// "out of memory"); else the guest trapped, as trap describes (the
// engine's message, or "exited with code N"). The guest's stderr, from
// out, ends the message.
func Failure(ctx context.Context, timedOut bool, timeout time.Duration, limits Limits, out *Output, growFailed bool, trap string) error {
	switch {
	case ContextErr(ctx) != nil:
		return fmt.Errorf("mutator call: %w", ContextErr(ctx))
	case timedOut:
		return TimeLimitError(timeout)
	case growFailed || out.OutOfMemory():
		return fmt.Errorf("%w of %d MiB%s", ErrMemoryLimit, limits.MemoryPages/16, out.Summary())
	}
	return fmt.Errorf("%w: %s%s", ErrTrap, trap, out.Summary())
}
