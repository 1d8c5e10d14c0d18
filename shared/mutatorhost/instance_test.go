package mutatorhost_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest"
)

// fakeInstance is an instance whose mutations fail as outcomes says.
type fakeInstance struct {
	id       int
	adopted  bool
	closed   int
	timeouts []time.Duration // of its calls
	exec     mutatorhost.Exec
}

var errTrap = errors.New("trapped")

// outcomes are the fake mutations, by name.
var outcomes = map[string]error{
	"ok":      nil,
	"error":   &mutatorhost.GuestError{Status: abi.StatusError, Message: "no"},
	"unknown": &mutatorhost.GuestError{Status: abi.StatusUnknown, Message: "unknown"},
	"badargs": &mutatorhost.GuestError{Status: abi.StatusBadArgs, Message: "bad"},
	"panic":   &mutatorhost.GuestError{Status: abi.StatusPanic, Message: "boom"},
	"trap":    errTrap,
	"time":    mutatorhost.TimeLimitError(time.Second),
}

func (f *fakeInstance) Migrate(_ context.Context, _ *sqlite3.Conn, timeout time.Duration) error {
	f.timeouts = append(f.timeouts, timeout)
	return nil
}

func (f *fakeInstance) Mutate(_ context.Context, conn *sqlite3.Conn, timeout time.Duration, name string, args []byte) error {
	f.timeouts = append(f.timeouts, timeout)
	if name == "sql" {
		// Runs args as SQL through the instance's Exec, as a guest's
		// request would.
		if err := f.exec.Begin(conn, 1<<20); err != nil {
			return err
		}
		defer f.exec.End()
		_, _, err := f.exec.Run(abi.AppendRequest(nil, []abi.Statement{{SQL: args, Flags: abi.FlagRows}}), 1<<20)
		return err
	}
	return outcomes[name]
}

func (f *fakeInstance) Adopt(*slog.Logger) { f.adopted = true }

func (f *fakeInstance) Exec() *mutatorhost.Exec { return &f.exec }

func (f *fakeInstance) Close() { f.closed++ }

var fakeLimits = mutatorhost.Limits{Timeout: time.Second, MigrateTimeout: time.Minute, MaxArgsBytes: 10}.WithDefaults()

// fake is a Slot of fake instances, with the instances it started, a
// spare, and what start fails with.
type fake struct {
	slot     *mutatorhost.Slot[*fakeInstance]
	spare    mutatorhost.Spare[*fakeInstance]
	started  []*fakeInstance
	startErr error
}

func newFake() *fake {
	f := &fake{}
	f.slot = mutatorhost.NewSlot(fakeLimits, "0123456789abcdef", nil, &f.spare, func(context.Context, *slog.Logger) (*fakeInstance, error) {
		if f.startErr != nil {
			return nil, f.startErr
		}
		inst := &fakeInstance{id: len(f.started) + 1}
		f.started = append(f.started, inst)
		return inst, nil
	})
	return f
}

// The instance is started on first use (the spare first), survives
// successes and the guest's own errors, and is discarded (closed once)
// after a recovered panic or any other failure; the next call starts a
// fresh one. Migrations and mutations get their own time limits.
func TestSlotLifecycle(t *testing.T) {
	ctx := context.Background()
	conn := hosttest.OpenConn(t)
	f := newFake()
	spare := &fakeInstance{id: 0}
	f.spare.Put(spare)
	if err := f.slot.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if !spare.adopted || len(f.started) != 0 {
		t.Fatalf("the first call did not take the spare: adopted %v, %d started", spare.adopted, len(f.started))
	}
	steps := []struct {
		name   string
		wantID int // the instance the call runs on
	}{
		{"ok", 0},
		{"error", 0},
		{"unknown", 0},
		{"badargs", 0},
		{"panic", 0},
		{"ok", 1},
		{"trap", 1},
		{"time", 2},
		{"ok", 3},
	}
	all := []*fakeInstance{spare}
	for i, st := range steps {
		err := f.slot.Mutate(ctx, conn, st.name, nil)
		if err != outcomes[st.name] {
			t.Fatalf("step %d: Mutate returned %v, want %v", i, err, outcomes[st.name])
		}
		all = append(all[:1], f.started...)
		last := all[len(all)-1]
		if last.id != st.wantID || len(last.timeouts) == 0 || last.timeouts[len(last.timeouts)-1] != fakeLimits.Timeout {
			t.Fatalf("step %d: the last instance is %d with calls of %v, want %d and a call of %v", i, last.id, last.timeouts, st.wantID, fakeLimits.Timeout)
		}
	}
	if got := spare.timeouts[0]; got != fakeLimits.MigrateTimeout {
		t.Errorf("migration's time limit %v, want %v", got, fakeLimits.MigrateTimeout)
	}
	for _, inst := range all {
		want := 1 // discarded
		if inst.id == 3 {
			want = 0 // still live
		}
		if inst.closed != want {
			t.Errorf("instance %d closed %d times, want %d", inst.id, inst.closed, want)
		}
	}
	f.slot.Close()
	f.slot.Close()
	if got := all[3].closed; got != 1 {
		t.Errorf("the live instance closed %d times by two Closes, want 1", got)
	}
	if err := f.slot.Mutate(ctx, conn, "ok", nil); !errors.Is(err, mutatorhost.ErrClosed) {
		t.Fatalf("Mutate after Close: %v, want ErrClosed", err)
	}
	if err := f.slot.Migrate(ctx, conn); !errors.Is(err, mutatorhost.ErrClosed) || !strings.HasPrefix(err.Error(), "migrate: ") {
		t.Fatalf("Migrate after Close: %v, want migrate: ErrClosed", err)
	}
	if len(f.started) != 3 {
		t.Fatalf("%d instances started, want 3", len(f.started))
	}
}

// On the connection CacheStatements names, the instance keeps the guest's
// statements; ForgetStatements, discarding the instance and Close each
// finalize them, so that the connection can close.
func TestSlotStatements(t *testing.T) {
	ctx := context.Background()
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(`BEGIN`); err != nil {
		t.Fatal(err)
	}
	f := newFake()
	kept := func() int {
		t.Helper()
		n := stmtsOn(conn)
		if last := f.started[len(f.started)-1]; last.exec.Kept() != n {
			t.Fatalf("the instance keeps %d statements, the connection has %d", last.exec.Kept(), n)
		}
		return n
	}
	sql := func(q string) {
		t.Helper()
		if err := f.slot.Mutate(ctx, conn, "sql", []byte(q)); err != nil {
			t.Fatal(err)
		}
	}
	sql(`SELECT 1`)
	if n := kept(); n != 0 {
		t.Fatalf("kept %d statements without CacheStatements", n)
	}
	f.slot.CacheStatements(conn)
	sql(`SELECT 1`)
	sql(`SELECT 2`)
	if n := kept(); n != 2 {
		t.Fatalf("kept %d statements, want 2", n)
	}
	// A discarded instance's statements are finalized.
	if err := f.slot.Mutate(ctx, conn, "trap", nil); err != errTrap {
		t.Fatal(err)
	}
	if n := stmtsOn(conn); n != 0 || f.started[0].exec.Kept() != 0 {
		t.Fatalf("%d statements left by the discarded instance", n)
	}
	sql(`SELECT 1`)
	if n := kept(); n != 1 || len(f.started) != 2 {
		t.Fatalf("the next instance kept %d statements, want 1", n)
	}
	if err := f.slot.ForgetStatements(conn); err != nil {
		t.Fatal(err)
	}
	if n := kept(); n != 0 {
		t.Fatalf("%d statements left after ForgetStatements", n)
	}
	sql(`SELECT 1`)
	if n := kept(); n != 0 {
		t.Fatalf("kept %d statements after ForgetStatements", n)
	}
	f.slot.CacheStatements(conn)
	sql(`SELECT 1`)
	if n := kept(); n != 1 {
		t.Fatalf("kept %d statements, want 1", n)
	}
	if err := f.slot.Close(); err != nil {
		t.Fatal(err)
	}
	if n := kept(); n != 0 {
		t.Fatalf("%d statements left after Close", n)
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("close the connection: %v", err)
	}
}

func stmtsOn(conn *sqlite3.Conn) int {
	n := 0
	for range conn.Stmts() {
		n++
	}
	return n
}

// Calls that cannot run start no instance and discard none.
func TestSlotRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	autocommit, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer autocommit.Close()
	if err := f.slot.Mutate(ctx, autocommit, "ok", nil); !errors.Is(err, mutatorhost.ErrNoTransaction) {
		t.Errorf("outside a transaction: %v, want ErrNoTransaction", err)
	}
	conn := hosttest.OpenConn(t)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.slot.Mutate(canceled, conn, "ok", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v, want context.Canceled", err)
	}
	past, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if err := f.slot.Mutate(past, conn, "ok", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past deadline: %v, want context.DeadlineExceeded", err)
	}
	err = f.slot.Mutate(ctx, conn, "ok", []byte("eleven byte"))
	if !errors.Is(err, mutatorhost.ErrArgsTooLarge) || err.Error() != "mutation args exceed the size limit: 11 bytes, the limit is 10" {
		t.Errorf("large args: %v", err)
	}
	f.startErr = errors.New("start mutator: no")
	if err := f.slot.Mutate(ctx, conn, "ok", nil); err != f.startErr {
		t.Errorf("failed start: %v, want %v", err, f.startErr)
	}
	if len(f.started) != 0 {
		t.Fatalf("%d instances started", len(f.started))
	}
	// A start that failed is tried again at the next call.
	f.startErr = nil
	if err := f.slot.Mutate(ctx, conn, "ok", nil); err != nil {
		t.Fatal(err)
	}
	if len(f.started) != 1 {
		t.Fatalf("%d instances started, want 1", len(f.started))
	}
}

func TestSpare(t *testing.T) {
	var s mutatorhost.Spare[*fakeInstance]
	if _, ok := s.Take(); ok {
		t.Fatal("an empty Spare gave an instance")
	}
	inst := &fakeInstance{id: 1}
	s.Put(inst)
	if got, ok := s.Take(); !ok || got != inst {
		t.Fatalf("Take = %v, %v; want the instance put", got, ok)
	}
	if _, ok := s.Take(); ok {
		t.Fatal("the spare was taken twice")
	}
	var none *mutatorhost.Spare[*fakeInstance]
	if _, ok := none.Take(); ok {
		t.Fatal("a nil Spare gave an instance")
	}
}

// Failure's verdict: the caller's context, then the time limit, then the
// memory limit (a failed memory.grow, or a Go runtime's "out of memory"),
// else a trap; the guest's stderr ends the message.
func TestFailure(t *testing.T) {
	limits := mutatorhost.Limits{MemoryPages: 32}.WithDefaults()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name       string
		ctx        context.Context
		timedOut   bool
		growFailed bool
		stderr     string
		want       string
		is         error
	}{
		{"trap", context.Background(), false, false, "", "mutator trapped: wasm error: unreachable", mutatorhost.ErrTrap},
		{"trap with stderr", context.Background(), false, false, "abort: bad index\n", "mutator trapped: wasm error: unreachable (stderr: abort: bad index)", mutatorhost.ErrTrap},
		{"failed grow", context.Background(), false, true, "", "mutator exceeded its memory limit of 2 MiB", mutatorhost.ErrMemoryLimit},
		{"failed grow with stderr", context.Background(), false, true, "abort: allocation failed\n", "mutator exceeded its memory limit of 2 MiB (stderr: abort: allocation failed)", mutatorhost.ErrMemoryLimit},
		{"Go out of memory", context.Background(), false, false, "fatal error: out of memory\n", "mutator exceeded its memory limit of 2 MiB (stderr: fatal error: out of memory)", mutatorhost.ErrMemoryLimit},
		{"time limit first", context.Background(), true, true, "", "mutator exceeded its time limit of 1s", mutatorhost.ErrTimeLimit},
		{"canceled first", canceled, true, true, "", "mutator call: context canceled", context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := mutatorhost.NewOutput(slog.Default(), limits.MaxLogBytes)
			out.Begin()
			out.Stream(mutatorhost.Stderr).Write([]byte(tc.stderr))
			err := mutatorhost.Failure(tc.ctx, tc.timedOut, time.Second, limits, out, tc.growFailed, "wasm error: unreachable")
			if err == nil || err.Error() != tc.want || !errors.Is(err, tc.is) {
				t.Errorf("got %v, want %q matching %v", err, tc.want, tc.is)
			}
		})
	}
}
