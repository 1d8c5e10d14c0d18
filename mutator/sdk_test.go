// Package mutator_test holds the Go tests of the AssemblyScript SDK
// (@sqlsync-go/mutator): they build its test mutators with the SDK's own
// build command and run them on the native host.
package mutator_test

import (
	"context"
	"errors"
	"math"
	"os"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/jsonargs"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost/wasmtest"
)

func TestMain(m *testing.M) {
	wasmtest.PrebuildAS("testdata/args.ts")
	os.Exit(m.Run())
}

// goFields is what testdata/args.ts decodes, as a Go mutator declares it.
type goFields struct {
	S string   `json:"s"`
	I int64    `json:"i"`
	F *float64 `json:"f"`
	B bool     `json:"b"`
	A []any    `json:"a"`
	O struct {
		S string `json:"s"`
	} `json:"o"`
}

// decoded is what either side made of the args.
type decoded struct {
	s, o    string
	i, n    int64
	f       float64
	hasF, b bool
}

// argsHost runs testdata/args.ts's decode mutation on raw args.
type argsHost struct {
	t    testing.TB
	mut  *wasmhost.Mutator
	conn *sqlite3.Conn
}

func newArgsHost(t testing.TB) *argsHost {
	mod, err := wasmhost.Compile(context.Background(), wasmtest.BuildAS(t, "testdata/args.ts"), wasmhost.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(context.Background()) })
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Exec(`BEGIN`); err != nil {
		t.Fatal(err)
	}
	mut := mod.Mutator(nil)
	t.Cleanup(func() { mut.Close() })
	if err := mut.Migrate(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	return &argsHost{t: t, mut: mut, conn: conn}
}

// decode runs the mutation: what the AssemblyScript decoder made of raw,
// or its refusal.
func (h *argsHost) decode(raw []byte) (decoded, error) {
	if err := h.mut.Mutate(context.Background(), h.conn, "decode", raw); err != nil {
		return decoded{}, err
	}
	stmt, _, err := h.conn.Prepare(`SELECT s, i, f, has_f, b, n, o FROM got`)
	if err != nil {
		h.t.Fatal(err)
	}
	defer stmt.Close()
	if !stmt.Step() {
		h.t.Fatalf("decode of %q recorded nothing: %v", raw, stmt.Err())
	}
	d := decoded{s: stmt.ColumnText(0), i: stmt.ColumnInt64(1), f: stmt.ColumnFloat(2), hasF: stmt.ColumnBool(3),
		b: stmt.ColumnBool(4), n: stmt.ColumnInt64(5), o: stmt.ColumnText(6)}
	stmt.Close()
	if err := h.conn.Exec(`DELETE FROM got`); err != nil {
		h.t.Fatal(err)
	}
	return d, nil
}

// goDecode is what the Go SDK makes of raw.
func goDecode(raw []byte) (decoded, error) {
	var g goFields
	if err := jsonargs.Decode(raw, &g); err != nil {
		return decoded{}, err
	}
	d := decoded{s: g.S, i: g.I, b: g.B, n: int64(len(g.A)), o: g.O.S}
	if g.F != nil {
		d.f, d.hasF = *g.F, true
	}
	return d, nil
}

// compare fails t when the two SDKs disagree on raw: one refuses what the
// other takes, or they read different values.
func compare(t *testing.T, h *argsHost, raw []byte) {
	t.Helper()
	want, gerr := goDecode(raw)
	got, aerr := h.decode(raw)
	switch {
	case gerr != nil && aerr != nil:
		if !errors.Is(aerr, mutatorhost.ErrBadArgs) {
			t.Errorf("%q: the AssemblyScript SDK refused it with %v, not as bad args", raw, aerr)
		}
	case gerr != nil:
		t.Errorf("%q: Go refuses it (%v), the AssemblyScript SDK reads %+v", raw, gerr, got)
	case aerr != nil:
		t.Errorf("%q: the AssemblyScript SDK refuses it (%v), Go reads %+v", raw, aerr, want)
	case got != want && !(math.IsNaN(got.f) && math.IsNaN(want.f)):
		t.Errorf("%q: the AssemblyScript SDK reads %+v, Go %+v", raw, got, want)
	}
}

// argsCases are args both SDKs must read alike: accepted with the same
// values, or both refused.
var argsCases = []string{
	`{}`, `null`, ` {"s": "x"} `, `{"s": "a\"b\\c\/d\b\f\n\r\t"}`, `{"s": "\u00e9\u2603\ud83d\ude00"}`,
	`{"s": "h\u00e9llo w\u00f6rld"}`, "{\"s\": \"h\xc3\xa9\"}",
	`{"S": "upper"}`, `{"s": "a", "s": "b"}`, `{"s": "a", "S": "b"}`, `{"s": null}`, `{"s": 5}`, `{"s": true}`,
	`{"i": 0}`, `{"i": -0}`, `{"i": 42}`, `{"i": -9223372036854775808}`, `{"i": 9223372036854775807}`,
	`{"i": 9223372036854775808}`, `{"i": -9223372036854775809}`, `{"i": 1.0}`, `{"i": 1e3}`, `{"i": "1"}`, `{"i": 01}`,
	`{"f": 0.1}`, `{"f": 33.333333333333336}`, `{"f": 1e-7}`, `{"f": -2.5E+3}`, `{"f": 5e-324}`, `{"f": 1.7976931348623157e308}`,
	`{"f": 1e400}`, `{"f": -1e400}`, `{"f": 123456789012345678901234567890}`, `{"f": null}`, `{"f": "1"}`, `{"f": .5}`, `{"f": 1.}`, `{"f": -}`,
	`{"b": true}`, `{"b": false}`, `{"b": 1}`, `{"b": nul}`,
	`{"a": []}`, `{"a": [1, "x", null, {}, []]}`, `{"a": "x"}`, `{"a": null}`, `{"a": [1,]}`,
	`{"o": {"s": "in"}}`, `{"o": {"S": "in"}}`, `{"o": null}`, `{"o": "x"}`, `{"o": []}`,
	`{"x": {"deep": [1, 2, {"y": null}]}, "s": "after"}`,
	`[]`, `"s"`, `5`, `true`, ``, ` `, `{`, `{"s": `, `{"s": "x"`, `{"s" "x"}`, `{s: "x"}`, `{"s": "x",}`, `{"s": "x"} x`,
	"{\"s\": \"a\tb\"}", `{"s": "\x"}`, `{"s": "\u12"}`, `{"s": "\uzzzz"}`, `{"s": "\ud800"}`, `{"s": "\ud800x"}`, `{"s": "\udc00\ud800"}`,
	"{\"s\": \"\xff\"}", "{\"s\": \"\xc3\"}", "{\"s\": \"\xed\xa0\x80\"}", "\xef\xbb\xbf{}",
}

// The AssemblyScript SDK reads JSON args as the Go SDK does.
func TestArgsLikeGo(t *testing.T) {
	h := newArgsHost(t)
	for _, c := range argsCases {
		compare(t, h, []byte(c))
	}
}

// FuzzArgsLikeGo looks for args the two SDKs read differently.
func FuzzArgsLikeGo(f *testing.F) {
	for _, c := range argsCases {
		f.Add([]byte(c))
	}
	h := newArgsHost(f)
	f.Fuzz(func(t *testing.T, raw []byte) { compare(t, h, raw) })
}
