package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

func init() {
	RegisterMutator("todo", func(context.Context, Config) (engine.Mutator, error) { return testmutator.Mutator{}, nil })
}

func open(t *testing.T) (*Doc, *events) {
	t.Helper()
	ev := &events{}
	d, err := Open(context.Background(), Config{DocID: "doc", Mutator: "todo"}, State{Kind: "memory"}, nil, ev.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, ev
}

type events struct {
	mu   sync.Mutex
	list []map[string]any
}

func (e *events) add(b []byte) {
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		panic(err)
	}
	e.mu.Lock()
	e.list = append(e.list, v)
	e.mu.Unlock()
}

func code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return ""
}

func TestMutateQuery(t *testing.T) {
	d, ev := open(t)
	ctx := context.Background()
	if _, err := d.Mutate(ctx, "add", []byte(`{"id":"1","title":"milk"}`)); err != nil {
		t.Fatal(err)
	}
	got, err := d.Query(ctx, `SELECT id, title, done, 1.5 AS f, x'00ff' AS b, NULL AS n, 1e999 AS inf FROM items WHERE id = ?`, []byte(`["1"]`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"columns":["id","title","done","f","b","n","inf"],"rows":[["1","milk",0,1.5,{"$blob":"AP8="},null,1e999]]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	_, err = d.Mutate(ctx, "fail", []byte(`{"message":"nope"}`))
	if code(err) != "rejected" || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("fail mutation: %v (code %q)", err, code(err))
	}
	if _, err := d.Query(ctx, `DELETE FROM items`, nil); code(err) != "not_read_only" {
		t.Fatalf("write through query: %v", err)
	}
	if _, err := d.Query(ctx, `SELECT ?`, []byte(`[{"x":1}]`)); code(err) != "bad_request" {
		t.Fatalf("bad param: %v", err)
	}
	var st Status
	if err := json.Unmarshal(d.Status(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.Storage != "memory" || st.State != "offline" || st.ClientID == "" {
		t.Fatalf("status %+v", st)
	}
	// The status event may come from the replica's sync goroutine, which
	// can compute the change before the mutation's own notification and
	// emit it just after: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev.mu.Lock()
		n := len(ev.list)
		last := map[string]any{}
		if n > 0 {
			last = ev.list[n-1]
		}
		ev.mu.Unlock()
		if n > 0 && last["type"] == "status" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status event after a mutation: %d events, last %v", n, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestParams(t *testing.T) {
	got, err := DecodeParams([]byte(`[null, true, 3, 2.5, "s", {"$blob":"AQI="}, 9007199254740993]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []any{nil, true, int64(3), 2.5, "s", []byte{1, 2}, int64(9007199254740993)}
	for i := range want {
		if g, w := got[i], want[i]; !equal(g, w) {
			t.Fatalf("param %d: got %#v, want %#v", i, g, w)
		}
	}
	for _, bad := range []string{`{}`, `[[1]]`, `[{"$blob":1}]`, `[{"$blob":"!"}]`} {
		if _, err := DecodeParams([]byte(bad)); err == nil {
			t.Errorf("DecodeParams(%s) succeeded", bad)
		}
	}
}

func equal(a, b any) bool {
	if x, ok := a.([]byte); ok {
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	}
	return a == b
}

func TestSubscribe(t *testing.T) {
	d, _ := open(t)
	ctx := context.Background()
	var mu sync.Mutex
	var calls []string
	id, err := d.Subscribe(`SELECT count(*) AS n FROM items WHERE NOT deleted`, nil, func(rows []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			calls = append(calls, "error: "+err.Error())
			return
		}
		calls = append(calls, string(rows))
	})
	if err != nil {
		t.Fatal(err)
	}
	// The re-runs come after Mutate returns (Config runs the client with
	// NotifyAfterMutate): wait for each before the next step.
	waitCalls := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			got := len(calls)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d subscription calls, want %d", got, n)
			}
		}
	}
	d.Mutate(ctx, "add", []byte(`{"id":"1","title":"a"}`))
	waitCalls(2)
	d.Mutate(ctx, "rename", []byte(`{"id":"1","title":"b"}`)) // same count: no call
	d.Unsubscribe(id)
	d.Mutate(ctx, "add", []byte(`{"id":"2","title":"c"}`))
	time.Sleep(50 * time.Millisecond) // room for a call that must not come
	mu.Lock()
	defer mu.Unlock()
	want := []string{`{"columns":["n"],"rows":[[0]]}`, `{"columns":["n"],"rows":[[1]]}`}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
}

func TestUnknownMutator(t *testing.T) {
	_, err := Open(context.Background(), Config{DocID: "d", Mutator: "nope"}, State{}, nil, func([]byte) {})
	if code(err) != "bad_request" {
		t.Fatalf("unknown mutator: %v", err)
	}
}

// TestStoreAndLog opens a document over a given store and pending log, as
// the browser does with IndexedDB, and reopens it over the same ones.
func TestStoreAndLog(t *testing.T) {
	store, log := &keepOpen{Store: memstore.New()}, pendinglog.NewMemory("client-1")
	ctx := context.Background()
	d, err := Open(ctx, Config{DocID: "d", Mutator: "todo"}, State{Store: store, Log: log, Kind: "indexeddb"}, nil, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	if d.ClientID() != "client-1" {
		t.Fatalf("client ID %q", d.ClientID())
	}
	if _, err := d.Mutate(ctx, "add", []byte(`{"id":"1","title":"a"}`)); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if store.closes != 1 {
		t.Fatalf("store closed %d times", store.closes)
	}
	d, err = Open(ctx, Config{DocID: "d", Mutator: "todo"}, State{Store: store, Log: log, Kind: "indexeddb"}, nil, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.Query(ctx, `SELECT count(*) FROM items`, nil)
	if err != nil || !strings.Contains(string(rows), "[[1]]") {
		t.Fatalf("after reopen: %s, %v", rows, err)
	}
}

// keepOpen counts Close calls and survives them, standing in for a durable
// store that is opened again.
type keepOpen struct {
	vfs.Store
	closes int
}

func (k *keepOpen) Close() error { k.closes++; return nil }

// TestLocalFailuresInStatus: a pending mutation that fails when the replica
// replays it on open is listed in the status JSON (localFailed,
// localFailures), and the replica opens.
func TestLocalFailuresInStatus(t *testing.T) {
	store, log := &keepOpen{Store: memstore.New()}, pendinglog.NewMemory("client-1")
	// Recorded as if it had passed locally before: it fails on replay.
	for _, m := range []engine.Mutation{
		{ClientID: "client-1", Seq: 1, Name: "add", Args: []byte(`{"id":"1","title":"a"}`)},
		{ClientID: "client-1", Seq: 2, Name: "fail", Args: []byte(`{"message":"gone"}`)},
	} {
		if err := log.Append(m); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Open(context.Background(), Config{DocID: "d", Mutator: "todo"}, State{Store: store, Log: log, Kind: "indexeddb"}, nil, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var st map[string]any
	if err := json.Unmarshal(d.Status(), &st); err != nil {
		t.Fatal(err)
	}
	failures, _ := json.Marshal(st["localFailures"])
	if st["localFailed"] != 1.0 || st["pending"] != 2.0 || string(failures) != `[{"message":"gone","name":"fail","seq":2}]` {
		t.Fatalf("status %v", st)
	}
	// None: an empty list, not null.
	d2, _ := open(t)
	if err := json.Unmarshal(d2.Status(), &st); err != nil {
		t.Fatal(err)
	}
	if failures, _ := json.Marshal(st["localFailures"]); st["localFailed"] != 0.0 || string(failures) != `[]` {
		t.Fatalf("status without failures %v", st)
	}
}

func TestEncodeRowsIntegers(t *testing.T) {
	rows := engine.Rows{Columns: []string{"v"}, Values: [][]any{
		{int64(9007199254740991)}, {int64(-9007199254740991)},
		{int64(9007199254740992)}, {int64(-9223372036854775808)}, {int64(9223372036854775807)},
	}}
	got := string(EncodeRows(rows))
	want := `{"columns":["v"],"rows":[[9007199254740991],[-9007199254740991],` +
		`[{"$int":"9007199254740992"}],[{"$int":"-9223372036854775808"}],[{"$int":"9223372036854775807"}]]}`
	if got != want {
		t.Fatalf("EncodeRows:\n got %s\nwant %s", got, want)
	}
}

// TestQueueOnly: a document opened with no mutator at all (no module, no
// registered name) opens queue-only and says so in its status: a mutation
// is recorded as pending without running, so no query sees it yet.
func TestQueueOnly(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, Config{DocID: "q"}, State{Kind: "memory"}, nil, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Mutate(ctx, "add", []byte(`{"id":"1","title":"milk"}`)); err != nil {
		t.Fatal(err)
	}
	var s Status
	if err := json.Unmarshal(d.Status(), &s); err != nil {
		t.Fatal(err)
	}
	if !s.QueueOnly || s.Pending != 1 {
		t.Fatalf("status %+v: want queueOnly with 1 pending", s)
	}
	got, err := d.Query(ctx, `SELECT count(*) AS n FROM sqlite_schema WHERE name = 'items'`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"columns":["n"],"rows":[[0]]}`; string(got) != want {
		t.Fatalf("the mutation ran locally: %s", got)
	}
}
