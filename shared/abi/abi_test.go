package abi_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/abi"
)

func TestRequestRoundTrip(t *testing.T) {
	stmts := []abi.Statement{
		{SQL: []byte("INSERT INTO t VALUES (?, ?, ?, ?, ?)"), Params: []abi.Value{
			{},
			{Type: abi.TypeInteger, Int: math.MinInt64},
			{Type: abi.TypeReal, Real: -1.5},
			{Type: abi.TypeText, Bytes: []byte("héllo")},
			{Type: abi.TypeBlob, Bytes: []byte{0, 1, 2}},
		}},
		{Flags: abi.FlagRows, SQL: []byte("SELECT 1")},
	}
	b := abi.AppendRequest(nil, stmts)
	got, err := abi.DecodeRequest(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, stmts) {
		t.Fatalf("got %+v, want %+v", got, stmts)
	}
	// Decoding again into the same slice reuses it.
	again, err := abi.DecodeRequest(b, got)
	if err != nil || !bytes.Equal(abi.AppendRequest(nil, again), b) {
		t.Fatalf("second decode: %+v, %v", again, err)
	}
}

// The encoding is the documented one, byte for byte.
func TestRequestLayout(t *testing.T) {
	b := abi.AppendRequest(nil, []abi.Statement{{Flags: abi.FlagRows, SQL: []byte("S"), Params: []abi.Value{
		{Type: abi.TypeInteger, Int: 2}, {Type: abi.TypeText, Bytes: []byte("x")}, {},
	}}})
	want := []byte{
		1, 0, 0, 0, // count
		1,               // flags
		1, 0, 0, 0, 'S', // sql
		3, 0, 0, 0, // nparams
		1, 2, 0, 0, 0, 0, 0, 0, 0, // INTEGER 2
		3, 1, 0, 0, 0, 'x', // TEXT "x"
		0, // NULL
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x\nwant % x", b, want)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	results := []abi.Result{
		{Changes: 3, LastInsertRowID: 7},
		{Columns: []string{"a", "b"}, Rows: 2, Values: []abi.Value{
			{Type: abi.TypeInteger, Int: 1}, {Type: abi.TypeText, Bytes: []byte("one")},
			{Type: abi.TypeReal, Real: math.Inf(1)}, {},
		}},
		{Code: 2067, Message: "UNIQUE constraint failed: t.a"},
	}
	b := abi.AppendResponse(nil, results)
	got, err := abi.DecodeResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, results) {
		t.Fatalf("got %+v, want %+v", got, results)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := abi.AppendRequest(nil, []abi.Statement{{SQL: []byte("SELECT ?"), Params: []abi.Value{{Type: abi.TypeText, Bytes: []byte("abc")}}}})
	for i := range good {
		if _, err := abi.DecodeRequest(good[:i], nil); !errors.Is(err, abi.ErrTruncated) {
			t.Errorf("truncated at %d: %v", i, err)
		}
	}
	if _, err := abi.DecodeRequest(append(good, 0), nil); !errors.Is(err, abi.ErrTrailing) {
		t.Errorf("trailing byte: %v", err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)-8] = 9 // the value's type
	if _, err := abi.DecodeRequest(bad, nil); !errors.Is(err, abi.ErrBadType) {
		t.Errorf("bad type: %v", err)
	}
	// A huge count in a short buffer fails without allocating for it.
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	if _, err := abi.DecodeRequest(huge, nil); !errors.Is(err, abi.ErrTruncated) {
		t.Errorf("huge count: %v", err)
	}
	if _, err := abi.DecodeResponse(huge); !errors.Is(err, abi.ErrTruncated) {
		t.Errorf("huge count: %v", err)
	}
}

func TestPackError(t *testing.T) {
	ptr, n := abi.UnpackError(abi.PackError(0xdeadbeef, 42))
	if ptr != 0xdeadbeef || n != 42 {
		t.Fatalf("got %x %d", ptr, n)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(abi.AppendRequest(nil, []abi.Statement{{Flags: 1, SQL: []byte("SELECT ?"), Params: []abi.Value{{Type: abi.TypeReal, Real: 1}}}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		stmts, err := abi.DecodeRequest(b, nil)
		if err != nil {
			return
		}
		if again := abi.AppendRequest(nil, stmts); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n% x\n% x", b, again)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(abi.AppendResponse(nil, []abi.Result{
		{Columns: []string{"a"}, Rows: 1, Values: []abi.Value{{Type: abi.TypeBlob, Bytes: []byte{1}}}},
		{Code: 1, Message: "no"},
	}))
	f.Fuzz(func(t *testing.T, b []byte) {
		results, err := abi.DecodeResponse(b)
		if err != nil {
			return
		}
		if again := abi.AppendResponse(nil, results); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n% x\n% x", b, again)
		}
	})
}
