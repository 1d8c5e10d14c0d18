package engine

import (
	"context"
	"errors"
	"fmt"

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

// run runs m through mut inside a savepoint, rolling it back and returning a
// *RejectedError if the mutator fails.
func (s *savepoints) run(ctx context.Context, mut Mutator, m Mutation) error {
	conn := s.conn
	if err := s.begin.Exec(); err != nil {
		return fmt.Errorf("mutation %s: savepoint: %w", m.ID(), err)
	}
	old := conn.SetInterrupt(ctx)
	err := callMutator(ctx, conn, mut, m)
	conn.SetInterrupt(old)
	if err == nil {
		if err := s.release.Exec(); err != nil {
			return fmt.Errorf("mutation %s: release: %w", m.ID(), err)
		}
		return nil
	}
	if rbErr := errors.Join(s.rollback.Exec(), s.release.Exec()); rbErr != nil {
		return fmt.Errorf("mutation %s: roll back after %v: %w", m.ID(), err, rbErr)
	}
	return &RejectedError{Seq: m.Seq, Name: m.Name, Message: err.Error()}
}

// runAll runs ms in one savepoint. If one fails it rolls all of them back
// and reports done false, for the caller to run them one by one.
func (s *savepoints) runAll(ctx context.Context, mut Mutator, ms []Mutation) (done bool, err error) {
	if err := s.begin.Exec(); err != nil {
		return false, fmt.Errorf("replay: savepoint: %w", err)
	}
	old := s.conn.SetInterrupt(ctx)
	defer s.conn.SetInterrupt(old)
	for _, m := range ms {
		if callMutator(ctx, s.conn, mut, m) != nil {
			if err := errors.Join(s.rollback.Exec(), s.release.Exec()); err != nil {
				return false, fmt.Errorf("replay: roll back: %w", err)
			}
			return false, nil
		}
	}
	if err := s.release.Exec(); err != nil {
		return false, fmt.Errorf("replay: release: %w", err)
	}
	return true, nil
}
