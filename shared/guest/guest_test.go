package guest

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/abi"
)

// fakeHost answers requests with answer, recording the statements it got.
// It stands in for the host imports, which exist only under wasip1.
func fakeHost(t *testing.T, answer func(abi.Statement) abi.Result) *[]string {
	t.Helper()
	var log []string
	old := roundTrip
	roundTrip = func(req []byte) ([]byte, error) {
		stmts, err := abi.DecodeRequest(req, nil)
		if err != nil {
			t.Fatalf("bad request: %v", err)
		}
		var results []abi.Result
		for _, s := range stmts {
			log = append(log, fmt.Sprintf("%s %d", s.SQL, len(s.Params)))
			r := answer(s)
			results = append(results, r)
			if r.Code != 0 {
				break
			}
		}
		return abi.AppendResponse(nil, results), nil
	}
	t.Cleanup(func() { roundTrip = old })
	return &log
}

func ok(abi.Statement) abi.Result { return abi.Result{Changes: 1} }

func TestMutateDispatch(t *testing.T) {
	fakeHost(t, ok)
	Handle("test-ok", func(tx *Tx, args []byte) error {
		_, err := tx.Exec("INSERT", 1)
		return err
	})
	HandleJSON("test-json", func(tx *Tx, a struct{ N int }) error {
		if a.N != 3 {
			return fmt.Errorf("n = %d", a.N)
		}
		return errors.New("handled")
	})
	Handle("test-panic", func(*Tx, []byte) error { panic("boom") })
	Handle("test-empty", func(*Tx, []byte) error { return errors.New("") })
	cases := []struct {
		name, args string
		status     abi.Status
		msg        string
	}{
		{"test-ok", "", abi.StatusOK, ""},
		{"test-json", `{"n": 3}`, abi.StatusError, "handled"},
		{"test-json", `{"n": "x"}`, abi.StatusBadArgs, "bad args: json: cannot unmarshal"},
		{"test-panic", "", abi.StatusPanic, `panic in mutation "test-panic": boom`},
		{"test-empty", "", abi.StatusError, "error without a message"},
		{"test-none", "", abi.StatusUnknown, `unknown mutation "test-none"`},
	}
	for _, tc := range cases {
		status, msg := mutate([]byte(tc.name), []byte(tc.args))
		if status != tc.status || !strings.HasPrefix(msg, tc.msg) {
			t.Errorf("%s %s: %v %q, want %v %q", tc.name, tc.args, status, msg, tc.status, tc.msg)
		}
	}
}

func TestRegisterTwice(t *testing.T) {
	Handle("test-twice", func(*Tx, []byte) error { return nil })
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	Handle("test-twice", func(*Tx, []byte) error { return nil })
}

func TestMigrate(t *testing.T) {
	defer func(m []migration) { migrations = m }(migrations)
	migrations = nil
	Migrate("CREATE a", "CREATE b")
	MigrateFunc(func(tx *Tx) error {
		_, err := tx.Exec("GO c")
		return err
	})
	Migrate("CREATE d")

	for _, tc := range []struct {
		version int64
		want    string
	}{
		{0, "PRAGMA user_version 0|CREATE a 0|PRAGMA user_version = 1 0|CREATE b 0|PRAGMA user_version = 2 0|GO c 0|PRAGMA user_version = 3 0|CREATE d 0|PRAGMA user_version = 4 0"},
		{2, "PRAGMA user_version 0|GO c 0|PRAGMA user_version = 3 0|CREATE d 0|PRAGMA user_version = 4 0"},
		{4, "PRAGMA user_version 0"},
		{9, "PRAGMA user_version 0"}, // a newer schema is left alone
	} {
		log := fakeHost(t, func(s abi.Statement) abi.Result {
			if string(s.SQL) == "PRAGMA user_version" {
				return abi.Result{Columns: []string{"user_version"}, Rows: 1, Values: []abi.Value{{Type: abi.TypeInteger, Int: tc.version}}}
			}
			return abi.Result{}
		})
		if status, msg := migrate(); status != abi.StatusOK {
			t.Fatalf("from %d: %v %s", tc.version, status, msg)
		}
		if got := strings.Join(*log, "|"); got != tc.want {
			t.Errorf("from %d:\n got %s\nwant %s", tc.version, got, tc.want)
		}
	}

	// A failing step is named in the error.
	fakeHost(t, func(s abi.Statement) abi.Result {
		switch string(s.SQL) {
		case "PRAGMA user_version":
			return abi.Result{Columns: []string{"user_version"}, Rows: 1, Values: []abi.Value{{Type: abi.TypeInteger, Int: 0}}}
		case "CREATE b":
			return abi.Result{Code: 1, Message: "syntax error"}
		}
		return abi.Result{}
	})
	if status, msg := migrate(); status != abi.StatusError || msg != "migration 2: syntax error" {
		t.Errorf("got %v %q", status, msg)
	}
}

func TestExecArgs(t *testing.T) {
	var got []abi.Value
	fakeHost(t, func(s abi.Statement) abi.Result {
		got = s.Params
		return abi.Result{}
	})
	s, i, f, bl := "s", 7, 2.5, true
	var nilStr *string
	tx := &Tx{}
	_, err := tx.Exec("X", nil, 1, int8(-2), int32(3), int64(4), uint8(5), uint32(6), uint64(7), float32(0.5), 1.25,
		true, false, "text", []byte{1}, []byte(nil), &s, &i, &f, &bl, nilStr)
	if err != nil {
		t.Fatal(err)
	}
	n, in, r, tx3, b := abi.Value{}, func(v int64) abi.Value { return abi.Value{Type: abi.TypeInteger, Int: v} },
		func(v float64) abi.Value { return abi.Value{Type: abi.TypeReal, Real: v} },
		func(v string) abi.Value { return abi.Value{Type: abi.TypeText, Bytes: []byte(v)} },
		func(v ...byte) abi.Value { return abi.Value{Type: abi.TypeBlob, Bytes: v} }
	want := []abi.Value{n, in(1), in(-2), in(3), in(4), in(5), in(6), in(7), r(0.5), r(1.25),
		in(1), in(0), tx3("text"), b(1), n, tx3("s"), in(7), r(2.5), in(1), n}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if _, err := tx.Exec("X", uint64(math.MaxUint64)); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("uint64 overflow: %v", err)
	}
	if _, err := tx.Exec("X", struct{}{}); err == nil || !strings.Contains(err.Error(), "arg 1: unsupported type struct {}") {
		t.Errorf("struct arg: %v", err)
	}
}

func TestQueryScan(t *testing.T) {
	fakeHost(t, func(abi.Statement) abi.Result {
		return abi.Result{Columns: []string{"n", "i", "r", "t", "b"}, Rows: 2, Values: []abi.Value{
			{}, {Type: abi.TypeInteger, Int: 42}, {Type: abi.TypeReal, Real: 3}, {Type: abi.TypeText, Bytes: []byte("17")}, {Type: abi.TypeBlob, Bytes: []byte{9}},
			{}, {Type: abi.TypeInteger, Int: -1}, {Type: abi.TypeReal, Real: 0.5}, {Type: abi.TypeText, Bytes: []byte("x")}, {Type: abi.TypeBlob, Bytes: []byte{}},
		}}
	})
	tx := &Tx{}
	rows, err := tx.Query("Q")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows.Columns(), []string{"n", "i", "r", "t", "b"}) {
		t.Errorf("columns %v", rows.Columns())
	}
	if !rows.Next() {
		t.Fatal("no first row")
	}
	var (
		a      any
		i      int
		f      float64
		s      string
		b      []byte
		i64    int64
		ri     int32
		parsed int
		bo     bool
	)
	if err := rows.Scan(&a, &i, &f, &s, &b); err != nil {
		t.Fatal(err)
	}
	if a != nil || i != 42 || f != 3 || s != "17" || !reflect.DeepEqual(b, []byte{9}) {
		t.Errorf("row 1: %v %v %v %q %v", a, i, f, s, b)
	}
	if err := rows.Scan(&s, &s, &i64, &parsed, &a); err != nil {
		t.Fatal(err)
	}
	if s != "42" || i64 != 3 || parsed != 17 || !reflect.DeepEqual(a, []byte{9}) {
		t.Errorf("row 1 converted: %q %v %v %#v", s, i64, parsed, a)
	}
	if err := rows.Scan(&i); err == nil {
		t.Error("Scan with too few destinations succeeded")
	}
	if !rows.Next() {
		t.Fatal("no second row")
	}
	if err := rows.Scan(&bo, &ri, &f, &s, &b); err != nil {
		t.Fatal(err)
	}
	if bo || ri != -1 || f != 0.5 || s != "x" || b == nil || len(b) != 0 {
		t.Errorf("row 2: %v %v %v %q %#v", bo, ri, f, s, b)
	}
	if err := rows.Scan(&a, &a, &i, &a, &a); err == nil || !strings.Contains(err.Error(), `column 2 (r)`) {
		t.Errorf("REAL 0.5 into int: %v", err)
	}
	if rows.Next() {
		t.Error("a third row")
	}
	if err := rows.Scan(&a); err == nil {
		t.Error("Scan after the last row succeeded")
	}
}

func TestErrors(t *testing.T) {
	fakeHost(t, func(s abi.Statement) abi.Result {
		if strings.HasPrefix(string(s.SQL), "BAD") {
			return abi.Result{Code: 2067, Message: "UNIQUE constraint failed: t.id"}
		}
		return abi.Result{Changes: 1, LastInsertRowID: 5}
	})
	tx := &Tx{}
	_, err := tx.Exec("BAD")
	var serr *Error
	if !errors.As(err, &serr) || serr.Code != 2067 || serr.Code&0xff != 19 || err.Error() != "UNIQUE constraint failed: t.id" {
		t.Errorf("got %#v", err)
	}
	if err := tx.QueryRow("BAD").Scan(); !errors.As(err, &serr) {
		t.Errorf("QueryRow: %v", err)
	}

	b := tx.Batch()
	b.Exec("A")
	b.Exec("B")
	b.Exec("BAD 3")
	b.Exec("D")
	res, err := b.Run()
	if len(res) != 2 || !errors.As(err, &serr) {
		t.Errorf("batch: %d results, %v", len(res), err)
	}
	if res[0].RowsAffected() != 1 || res[0].LastInsertId() != 5 {
		t.Errorf("result %+v", res[0])
	}
	b = tx.Batch()
	b.Exec("A", struct{}{})
	if _, err := b.Run(); err == nil || !strings.Contains(err.Error(), "batch statement 1") {
		t.Errorf("bad batch arg: %v", err)
	}

	tx.done = true
	if _, err := tx.Exec("A"); !errors.Is(err, ErrTxDone) {
		t.Errorf("after done: %v", err)
	}
}

func TestNoHost(t *testing.T) {
	_, err := (&Tx{}).Exec("SELECT 1")
	if !errors.Is(err, ErrNoHost) {
		t.Fatalf("got %v, want ErrNoHost", err)
	}
}
