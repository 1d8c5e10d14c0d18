package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// savepoints holds the statements that wrap each mutation, prepared once per
// connection: parsing them anew for every mutation cost a sixth of the
// coordinator's time per mutation.
type savepoints struct {
	conn                     *sqlite3.Conn
	begin, release, rollback *sqlite3.Stmt
}

func prepareSavepoints(conn *sqlite3.Conn) (*savepoints, error) {
	s := &savepoints{conn: conn}
	for _, p := range []struct {
		stmt **sqlite3.Stmt
		sql  string
	}{{&s.begin, `SAVEPOINT mutation`}, {&s.release, `RELEASE mutation`}, {&s.rollback, `ROLLBACK TO mutation`}} {
		stmt, _, err := conn.Prepare(p.sql)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("prepare %s: %w", p.sql, err)
		}
		*p.stmt = stmt
	}
	return s, nil
}

// close finalizes the statements; the connection cannot close before.
func (s *savepoints) close() error {
	var errs []error
	for _, st := range []*sqlite3.Stmt{s.begin, s.release, s.rollback} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// errDeferredFK is a mutation that leaves a deferred foreign key constraint
// violated: the COMMIT of its transaction would fail.
var errDeferredFK = errors.New("FOREIGN KEY constraint failed (a deferred constraint, checked at commit)")

// deferredViolations reports whether the transaction holds violated deferred
// constraints, which would make its COMMIT fail. Every mutation is checked
// before its savepoint is released, so at the start of each one there are
// none, and any found are that mutation's own.
func (s *savepoints) deferredViolations() (bool, error) {
	n, _, err := s.conn.Status(sqlite3.DBSTATUS_DEFERRED_FKS, false)
	return n > 0, err
}

// brokenTxError is a mutation after which the transaction cannot go on:
// SQLite rolled the whole transaction back (a write interrupted by the time
// limit, running out of memory), or the mutator ended it.
type brokenTxError struct {
	index int // in the batch, where there is one
	err   error
}

func (e *brokenTxError) Error() string { return e.err.Error() }
func (e *brokenTxError) Unwrap() error { return e.err }

// run runs m through mut inside a savepoint. If the mutator fails, or
// leaves a deferred constraint violated, it rolls m back and returns a
// *RejectedError. If m broke the transaction it returns a *brokenTxError;
// any other error means the savepoint machinery itself failed.
func (s *savepoints) run(ctx context.Context, mut Mutator, m Mutation) error {
	conn := s.conn
	if err := s.begin.Exec(); err != nil {
		return fmt.Errorf("mutation %s: savepoint: %w", m.ID(), err)
	}
	old := conn.SetInterrupt(ctx)
	err := callMutator(ctx, conn, mut, m)
	conn.SetInterrupt(old)
	if conn.GetAutocommit() {
		if err == nil {
			err = errors.New("the mutator ended the transaction")
		}
		return &brokenTxError{err: err}
	}
	if err == nil {
		var bad bool
		if bad, err = s.deferredViolations(); err == nil && bad {
			err = errDeferredFK
		}
	}
	if err == nil {
		if err := s.release.Exec(); err != nil {
			return fmt.Errorf("mutation %s: release: %w", m.ID(), err)
		}
		return nil
	}
	if rbErr := errors.Join(s.rollback.Exec(), s.release.Exec()); rbErr != nil {
		if conn.GetAutocommit() {
			return &brokenTxError{err: err}
		}
		return fmt.Errorf("mutation %s: roll back after %v: %w", m.ID(), err, rbErr)
	}
	return &RejectedError{Seq: m.Seq, Name: m.Name, Message: err.Error()}
}

// runAll runs ms in one savepoint, each with its own time limit. If one
// fails, or they leave a deferred constraint violated, it rolls all of them
// back and reports done false, for the caller to run them one by one. If one
// broke the transaction it returns a *brokenTxError (without an index).
func (s *savepoints) runAll(ctx context.Context, mut Mutator, ms []Mutation, timeout time.Duration) (done bool, err error) {
	if err := s.begin.Exec(); err != nil {
		return false, fmt.Errorf("replay: savepoint: %w", err)
	}
	old := s.conn.SetInterrupt(ctx)
	defer s.conn.SetInterrupt(old)
	failed := false
	for _, m := range ms {
		mctx, cancel := withTimeout(ctx, timeout)
		s.conn.SetInterrupt(mctx)
		err := callMutator(mctx, s.conn, mut, m)
		cancel()
		if s.conn.GetAutocommit() {
			if err == nil {
				err = errors.New("the mutator ended the transaction")
			}
			return false, &brokenTxError{index: -1, err: fmt.Errorf("mutation %s: %w", m.ID(), err)}
		}
		if err != nil {
			failed = true
			break
		}
	}
	s.conn.SetInterrupt(ctx)
	if !failed {
		bad, err := s.deferredViolations()
		if err != nil {
			return false, fmt.Errorf("replay: %w", err)
		}
		failed = bad
	}
	if failed {
		if err := errors.Join(s.rollback.Exec(), s.release.Exec()); err != nil {
			return false, fmt.Errorf("replay: roll back: %w", err)
		}
		return false, nil
	}
	if err := s.release.Exec(); err != nil {
		return false, fmt.Errorf("replay: release: %w", err)
	}
	return true, nil
}

// withTimeout is context.WithTimeout, where 0 means no limit.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
