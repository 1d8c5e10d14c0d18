package mutatorhost

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/abi"
)

// fakeInstance counts its closes.
type fakeInstance struct {
	id     int
	closed int
}

func (f *fakeInstance) Close() { f.closed++ }

// fakeSlot returns a Slot of fake instances and the instances it started.
func fakeSlot() (*Slot[*fakeInstance], *[]*fakeInstance, *error) {
	var started []*fakeInstance
	var startErr error
	s := NewSlot(func(context.Context) (*fakeInstance, error) {
		if startErr != nil {
			return nil, startErr
		}
		inst := &fakeInstance{id: len(started) + 1}
		started = append(started, inst)
		return inst, nil
	}, slog.Default())
	return s, &started, &startErr
}

func txConn(t *testing.T) *sqlite3.Conn {
	t.Helper()
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Exec(`BEGIN`); err != nil {
		t.Fatal(err)
	}
	return conn
}

// The instance is started on first use, survives successes and the
// guest's own errors, and is discarded (closed once) after a recovered
// panic or any other failure; the next call starts a fresh one.
func TestSlotLifecycle(t *testing.T) {
	ctx := context.Background()
	conn := txConn(t)
	s, started, _ := fakeSlot()
	if len(*started) != 0 {
		t.Fatal("an instance was started before the first call")
	}
	trap := errors.New("trapped")
	steps := []struct {
		err    error // what the call returns
		wantID int   // the instance the call runs on
	}{
		{nil, 1},
		{&GuestError{Status: abi.StatusError, Message: "no"}, 1},
		{&GuestError{Status: abi.StatusUnknown, Message: "unknown"}, 1},
		{&GuestError{Status: abi.StatusBadArgs, Message: "bad"}, 1},
		{&GuestError{Status: abi.StatusPanic, Message: "boom"}, 1},
		{nil, 2},
		{trap, 2},
		{TimeLimitError(1), 3},
		{nil, 4},
	}
	for i, st := range steps {
		var ran *fakeInstance
		err := s.Call(ctx, conn, func(inst *fakeInstance) error {
			ran = inst
			return st.err
		})
		if err != st.err {
			t.Fatalf("step %d: Call returned %v, want %v", i, err, st.err)
		}
		if ran.id != st.wantID {
			t.Fatalf("step %d: ran on instance %d, want %d", i, ran.id, st.wantID)
		}
	}
	for _, inst := range *started {
		want := 1 // discarded
		if inst.id == 4 {
			want = 0 // still live
		}
		if inst.closed != want {
			t.Errorf("instance %d closed %d times, want %d", inst.id, inst.closed, want)
		}
	}
	s.Close()
	s.Close()
	if got := (*started)[3].closed; got != 1 {
		t.Errorf("the live instance closed %d times by two Closes, want 1", got)
	}
	if err := s.Call(ctx, conn, func(*fakeInstance) error { t.Fatal("ran after Close"); return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close: %v, want ErrClosed", err)
	}
	if len(*started) != 4 {
		t.Fatalf("%d instances started, want 4", len(*started))
	}
}

// Calls that cannot run start no instance and discard none.
func TestSlotRefusals(t *testing.T) {
	ctx := context.Background()
	s, started, startErr := fakeSlot()
	never := func(*fakeInstance) error { t.Fatal("call ran"); return nil }

	autocommit, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer autocommit.Close()
	if err := s.Call(ctx, autocommit, never); !errors.Is(err, ErrNoTransaction) {
		t.Errorf("outside a transaction: %v, want ErrNoTransaction", err)
	}
	conn := txConn(t)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Call(canceled, conn, never); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v, want context.Canceled", err)
	}
	*startErr = errors.New("start mutator: no")
	if err := s.Call(ctx, conn, never); err != *startErr {
		t.Errorf("failed start: %v, want %v", err, *startErr)
	}
	if len(*started) != 0 {
		t.Fatalf("%d instances started", len(*started))
	}
	// A start that failed is tried again at the next call.
	*startErr = nil
	if err := s.Call(ctx, conn, func(*fakeInstance) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(*started) != 1 {
		t.Fatalf("%d instances started, want 1", len(*started))
	}
}

func TestSpare(t *testing.T) {
	var s Spare[*fakeInstance]
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
}
