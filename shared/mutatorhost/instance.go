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
// holds it.
type Instance interface {
	// Close stops the instance and frees what it holds. It is called once,
	// after the instance's last call.
	Close()
}

// Slot holds the instance a host's Mutator runs its calls on, and is the
// one place of its rules: there is none until the first call, which
// starts one; a call that may have damaged it discards it, and the next
// call starts a fresh one; Close discards it for good. Calls are
// serialized. Make one with [NewSlot].
type Slot[I Instance] struct {
	start func(context.Context) (I, error)
	log   *slog.Logger

	mu     sync.Mutex
	inst   I
	live   bool // inst is a started instance, not yet discarded
	closed bool
}

// NewSlot returns a Slot that starts instances with start, and logs each
// discarded one to log at debug level.
func NewSlot[I Instance](start func(context.Context) (I, error), log *slog.Logger) *Slot[I] {
	return &Slot[I]{start: start, log: log}
}

// Call runs call on the instance, starting one first if there is none,
// and returns call's error. It runs nothing, and fails, when the Slot is
// closed ([ErrClosed]), when conn is outside a transaction
// ([ErrNoTransaction]: the engine runs a mutator inside its own), or when
// ctx is done. After call, the instance lives on only if call succeeded
// or returned the guest's own error ([GuestError]) other than a recovered
// panic, whose globals may be half-updated; anything else (a trap, the
// time or memory limit, a broken ABI, a canceled call) discards it.
func (s *Slot[I]) Call(ctx context.Context, conn *sqlite3.Conn, call func(I) error) error {
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
		inst, err := s.start(ctx)
		if err != nil {
			return err
		}
		s.inst, s.live = inst, true
	}
	err := call(s.inst)
	if err != nil && !survives(err) {
		s.discard()
		s.log.Debug("mutator call failed; instance discarded", "err", err)
	}
	return err
}

// survives reports whether an instance may serve another call after one
// that ended with err.
func survives(err error) bool {
	var gerr *GuestError
	return errors.As(err, &gerr) && gerr.Status != abi.StatusPanic
}

// Close discards the instance; later calls fail with ErrClosed. It may be
// called more than once.
func (s *Slot[I]) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.discard()
}

func (s *Slot[I]) discard() {
	if s.live {
		s.inst.Close()
		var none I
		s.inst, s.live = none, false
	}
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

// Take returns the spare, once: ok is false once it has been taken.
func (s *Spare[I]) Take() (inst I, ok bool) {
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

// CheckArgs returns ErrArgsTooLarge if args exceed l.MaxArgsBytes.
func (l Limits) CheckArgs(args []byte) error {
	if len(args) > l.MaxArgsBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrArgsTooLarge, len(args), l.MaxArgsBytes)
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
// guest ran out of memory (out says so); else the guest trapped, as trap
// describes (the engine's message, or "exited with code N"). The guest's
// stderr, from out, ends the message.
func Failure(ctx context.Context, timedOut bool, timeout time.Duration, limits Limits, out *Output, trap string) error {
	switch {
	case ContextErr(ctx) != nil:
		return fmt.Errorf("mutator call: %w", ContextErr(ctx))
	case timedOut:
		return TimeLimitError(timeout)
	case out.OutOfMemory():
		return fmt.Errorf("%w of %d MiB%s", ErrMemoryLimit, limits.MemoryPages/16, out.Summary())
	}
	return fmt.Errorf("%w: %s%s", ErrTrap, trap, out.Summary())
}
