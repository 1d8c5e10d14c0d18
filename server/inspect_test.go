package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// inspectTestSecret signs the tokens of the inspector's tests.
var inspectTestSecret = []byte("inspector-test-secret-0123456789abcdef")

// inspectGet GETs path on ts with token (none if ""), returning the status
// and the body decoded into out (if not nil), failing the test on an
// error.
func inspectGet(t *testing.T, ts *testServer, path, token string, out any) int {
	t.Helper()
	return inspectDo(t, ts, http.MethodGet, path, token, "", nil, out)
}

// inspectDo sends a request to ts with token (none if "") and header
// (may be nil) and decodes the answer into out.
func inspectDo(t *testing.T, ts *testServer, method, path, token, body string, header http.Header, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+ts.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %v\n%s", method, path, resp.StatusCode, err, b)
		}
	}
	return resp.StatusCode
}

// apiError is the inspector API's error answer.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// mintTest signs a token for docs with role, valid for ttl.
func mintTest(t *testing.T, secret []byte, role Role, ttl time.Duration, docs ...string) string {
	t.Helper()
	tok, err := Mint(secret, docs, role, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// openDoc connects a raw client to docID so that it is open, and returns
// the connection, past its Welcome and first diff.
func openDoc(t *testing.T, ts *testServer, docID, clientID, token string) *rawConn {
	t.Helper()
	c := dialRaw(t, ts)
	h := hello(docID, clientID)
	h.Hello.Token = token
	c.Send(h)
	c.ExpectWelcome()
	if f := c.Next(); f.Diff == nil {
		t.Fatalf("after the welcome: %s, want the document's diff", f.Kind())
	}
	return c
}

// TestInspectAuth: with a token key, the inspector's API refuses requests
// without a token (401), with a bad, foreign or expired one (401), with a
// token of another role (403) and cross-origin requests (403), each with a
// message saying why; a token with role admin gets in and sees the
// documents it grants. The page itself, which holds no data, is served.
func TestInspectAuth(t *testing.T) {
	v, err := NewHMACVerifier(inspectTestSecret)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Verifier: v})
	writer := mintTest(t, inspectTestSecret, RoleWrite, time.Hour, "*")
	openDoc(t, ts, "team-a-list", "c1", writer)
	openDoc(t, ts, "team-b-list", "c2", writer)

	admin := mintTest(t, inspectTestSecret, RoleAdmin, time.Hour, "*")
	// An admin token syncs as a writer.
	openDoc(t, ts, "team-a-list", "c3", admin)
	refusals := []struct {
		name, token string
		header      http.Header
		status      int
		want        string
	}{
		{"no token", "", nil, http.StatusUnauthorized, "no token"},
		{"garbage", "not-a-jwt", nil, http.StatusUnauthorized, "invalid token"},
		{"another key", mintTest(t, []byte("another-secret-0123456789abcdefghijkl"), RoleAdmin, time.Hour, "*"), nil, http.StatusUnauthorized, "invalid token"},
		{"expired", mintTest(t, inspectTestSecret, RoleAdmin, -time.Minute, "*"), nil, http.StatusUnauthorized, "token expired"},
		{"write role", writer, nil, http.StatusForbidden, `role is not admin: it is "write"`},
		{"read role", mintTest(t, inspectTestSecret, RoleRead, time.Hour, "*"), nil, http.StatusForbidden, "needs a token with role admin"},
		{"cross-origin", admin, http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden, "cross-origin"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			for _, path := range []string{"/v1/inspect/docs", "/v1/inspect/docs/team-a-list"} {
				var e apiError
				if got := inspectDo(t, ts, http.MethodGet, path, r.token, "", r.header, &e); got != r.status || !strings.Contains(e.Error, r.want) {
					t.Errorf("GET %s: %d %+v, want %d and an error saying %q", path, got, e, r.status, r.want)
				}
			}
			var e apiError
			body := `{"sql": "SELECT 1"}`
			if got := inspectDo(t, ts, http.MethodPost, "/v1/inspect/docs/team-a-list/query", r.token, body, r.header, &e); got != r.status {
				t.Errorf("console: %d %+v, want %d", got, e, r.status)
			}
		})
	}

	var o InspectOverview
	if got := inspectGet(t, ts, "/v1/inspect/docs", admin, &o); got != http.StatusOK {
		t.Fatalf("admin: %d", got)
	}
	if o.OpenMode || o.Total != 2 || len(o.Documents) != 2 || o.Documents[0].ID != "team-a-list" || o.Documents[1].ID != "team-b-list" {
		t.Errorf("admin sees %+v, want both documents, not in open mode", o)
	}
	var d InspectDoc
	inspectGet(t, ts, "/v1/inspect/docs/team-a-list", admin, &d)
	if len(d.ClientList) != 2 || d.ClientList[0].Role != "write" || d.ClientList[1].Role != "write" {
		t.Errorf("clients of team-a-list: %+v, want c1 and the admin's c3, both writers", d.ClientList)
	}
	// A same-origin request (the page's own) is welcome.
	if got := inspectDo(t, ts, http.MethodGet, "/v1/inspect/docs", admin, "", http.Header{"Origin": {"http://" + ts.addr}}, nil); got != http.StatusOK {
		t.Errorf("same-origin request: %d, want 200", got)
	}

	// An admin of team a's documents sees only those.
	teamA := mintTest(t, inspectTestSecret, RoleAdmin, time.Hour, "team-a-*")
	if inspectGet(t, ts, "/v1/inspect/docs", teamA, &o); o.Total != 1 || o.Documents[0].ID != "team-a-list" {
		t.Errorf("team a's admin sees %+v, want team-a-list only", o.Documents)
	}
	var e apiError
	if got := inspectGet(t, ts, "/v1/inspect/docs/team-b-list", teamA, &e); got != http.StatusForbidden || !strings.Contains(e.Error, "does not grant") {
		t.Errorf("team a's admin on team b's document: %d %+v, want 403", got, e)
	}
	if got := inspectGet(t, ts, "/v1/inspect/docs/team-a-list", teamA, nil); got != http.StatusOK {
		t.Errorf("team a's admin on its document: %d, want 200", got)
	}

	// The page is served without a token: it holds no data.
	resp, err := http.Get("http://" + ts.addr + InspectorPath)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<h1>sqlsync inspector</h1>") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("page: %d %q, CSP %q", resp.StatusCode, page[:min(len(page), 200)], resp.Header.Get("Content-Security-Policy"))
	}
	for _, asset := range []string{"/inspector/inspector.js", "/inspector/inspector.css"} {
		resp, err := http.Get("http://" + ts.addr + asset)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", asset, resp.StatusCode)
		}
	}
}

// TestInspectOpenMode: without a token key the inspector needs no token,
// but answers loopback only: a request from elsewhere, or naming another
// host (a page that rebound its DNS name to 127.0.0.1), is refused.
func TestInspectOpenMode(t *testing.T) {
	ts := startServer(t, Config{})
	var o InspectOverview
	if got := inspectGet(t, ts, "/v1/inspect/docs", "", &o); got != http.StatusOK || !o.OpenMode {
		t.Fatalf("loopback in open mode: %d %+v, want 200 in open mode", got, o)
	}
	var e apiError
	req, _ := http.NewRequest(http.MethodGet, "http://"+ts.addr+"/v1/inspect/docs", nil)
	req.Host = "rebound.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(e.Error, "loopback") {
		t.Errorf("Host rebound.example: %d %+v, want 403 saying loopback only", resp.StatusCode, e)
	}
	for _, path := range []string{"/v1/inspect/docs", InspectorPath} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = "192.0.2.7:40000"
		ts.Handler().ServeHTTP(rec, r)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "loopback") {
			t.Errorf("%s from 192.0.2.7: %d %s, want 403 saying loopback only", path, rec.Code, rec.Body)
		}
	}
	for _, host := range []string{"127.0.0.1:8080", "localhost", "[::1]:80", "LOCALHOST:1"} {
		if !loopbackHost(host) {
			t.Errorf("loopbackHost(%q) = false", host)
		}
	}
	for _, host := range []string{"example.com", "127.0.0.1.example.com:80", "10.0.0.1"} {
		if loopbackHost(host) {
			t.Errorf("loopbackHost(%q) = true", host)
		}
	}
	if got := inspectGet(t, ts, "/v1/inspect/nothing", "", &e); got != http.StatusNotFound || e.Code != "not_found" {
		t.Errorf("unknown endpoint: %d %+v, want a JSON 404", got, e)
	}
	if got := inspectGet(t, ts, "/v1/inspect/docs/absent", "", &e); got != http.StatusNotFound || !strings.Contains(e.Error, "not open") {
		t.Errorf("a document not open: %d %+v, want 404 saying so", got, e)
	}
	if got := inspectGet(t, ts, "/v1/inspect/docs/..", "", &e); got == http.StatusOK {
		t.Errorf("document ..: %d, want a refusal", got)
	}
}

// TestInspectFigures: after known mutations, the inspector shows the
// document's LSN and size as the coordinator has them, the commits with
// their mutations and pages changed, the rejection with its message, and
// each client with its LSN, lag and pending mutations: while a commit is
// not yet published, the client that pushed it lags by one LSN and has its
// mutations pending; once it is, neither.
func TestInspectFigures(t *testing.T) {
	committed, resume := make(chan struct{}, 1), make(chan struct{})
	var armed atomic.Bool
	ts := startServer(t, Config{})
	ts.Server.afterCommit = func() {
		if armed.Load() {
			committed <- struct{}{}
			<-resume
		}
	}
	alice := openDoc(t, ts, "doc", "alice", "")
	bob := openDoc(t, ts, "doc", "bob", "")

	// Three adds in one push: one group commit.
	var muts []protocol.Mutation
	for i, title := range []string{"milk", "bread", "eggs"} {
		muts = append(muts, protocol.Mutation{Seq: uint64(i + 1), Name: "add", Args: testmutator.Args{ID: title, Title: title}.Encode()})
	}
	armed.Store(true)
	alice.Send(protocol.Frame{Push: &protocol.Push{Mutations: muts}})
	<-committed
	var d InspectDoc
	if got := inspectGet(t, ts, "/v1/inspect/docs/doc", "", &d); got != http.StatusOK {
		t.Fatalf("GET doc: %d", got)
	}
	a := findClient(t, d, "alice")
	if a.Lag != 1 || a.Pending != 3 || a.SentLSN+1 != d.LSN {
		t.Errorf("while the commit is not published: alice %+v at document LSN %d, want lag 1 and 3 pending", a, d.LSN)
	}
	armed.Store(false)
	close(resume)
	lsn := untilDiff(t, alice, 0)
	untilDiff(t, bob, lsn)

	// A mutation the mutator rejects.
	bob.Send(pushFrame(1, "fail", testmutator.Args{Message: "not today"}))
	var rejected *protocol.Rejected
	for rejected == nil {
		f := bob.Next()
		rejected = f.Rejected
	}
	lsn = untilDiff(t, bob, 0)
	untilDiff(t, alice, lsn)

	waitFor(t, "the clients to be sent the last diff", func() bool {
		inspectGet(t, ts, "/v1/inspect/docs/doc", "", &d)
		return findClient(t, d, "alice").SentLSN == lsn && findClient(t, d, "bob").SentLSN == lsn
	})
	var pages uint32
	ts.coordinator(t, "doc", func(c *engine.Coordinator) { pages = c.Database().Store().PageCount() })
	if d.ID != "doc" || d.LSN != lsn || d.PageCount != pages || d.Bytes != int64(pages)*vfs.PageSize || d.Clients != 2 {
		t.Errorf("document %+v, want LSN %d, %d pages, 2 clients", d.InspectDocSummary, lsn, pages)
	}
	if d.Mutator.Kind != "go" || d.SchemaVersion == 0 {
		t.Errorf("mutator %+v, schema version %d: want the built-in Go mutator, migrated", d.Mutator, d.SchemaVersion)
	}
	for _, name := range []string{"alice", "bob"} {
		c := findClient(t, d, name)
		if c.Lag != 0 || c.Pending != 0 || c.Role != "write" || c.Remote == "" || c.HelloLSN != 0 {
			t.Errorf("client %s: %+v, want no lag, nothing pending", name, c)
		}
	}
	if a, b := findClient(t, d, "alice"), findClient(t, d, "bob"); a.LastSeq != 3 || b.LastSeq != 1 {
		t.Errorf("last seqs: alice %d, bob %d, want 3 and 1", a.LastSeq, b.LastSeq)
	}
	if len(d.Commits) != 2 {
		t.Fatalf("commits: %+v, want two", d.Commits)
	}
	fail, adds := d.Commits[0], d.Commits[1]
	if fail.LSN != lsn || fail.Applied != 1 || fail.Rejected != 1 || fmt.Sprint(fail.Mutations) != "[{bob 1 fail}]" {
		t.Errorf("newest commit %+v, want bob's rejected fail at LSN %d", fail, lsn)
	}
	if adds.LSN != fail.FromLSN || adds.Applied != 3 || adds.Rejected != 0 || adds.PagesChanged == 0 || adds.PageCount == 0 ||
		fmt.Sprint(adds.Mutations) != "[{alice 1 add} {alice 2 add} {alice 3 add}]" {
		t.Errorf("commit of the adds %+v, want alice's three adds with pages changed", adds)
	}
	if len(d.Rejections) != 1 {
		t.Fatalf("rejections: %+v, want one", d.Rejections)
	}
	if r := d.Rejections[0]; r.Client != "bob" || r.Seq != 1 || r.Name != "fail" || r.Message != rejected.Message || !strings.Contains(r.Message, "not today") || r.LSN != lsn {
		t.Errorf("rejection %+v, want bob's fail saying %q", r, rejected.Message)
	}

	var o InspectOverview
	inspectGet(t, ts, "/v1/inspect/docs", "", &o)
	if len(o.Documents) != 1 || o.Documents[0] != d.InspectDocSummary || o.Connections != 2 {
		t.Errorf("list %+v, want the document as its own view has it, 2 connections", o)
	}
}

// findClient returns client id's line of d.
func findClient(t *testing.T, d InspectDoc, id string) InspectClient {
	t.Helper()
	for _, c := range d.ClientList {
		if c.ClientID == id {
			return c
		}
	}
	t.Fatalf("client %s not listed: %+v", id, d.ClientList)
	return InspectClient{}
}

// untilDiff reads c's frames until a diff to at least lsn (to any LSN
// if 0), and returns its LSN.
func untilDiff(t *testing.T, c *rawConn, lsn uint64) uint64 {
	t.Helper()
	for {
		f := c.Next()
		if f.Diff != nil && !f.Diff.More && f.Diff.To >= lsn {
			return f.Diff.To
		}
	}
}

// TestInspectConsole: the SQL console answers SELECTs and read-only
// pragmas on the document's current state; refuses every write (each
// saying what it would have done), more than one statement, and bad SQL,
// with clear errors; bounds rows, bytes and time; and never moves the
// document's LSN.
func TestInspectConsole(t *testing.T) {
	ts := startServer(t, Config{})
	c := openDoc(t, ts, "doc", "alice", "")
	c.Send(pushFrame(1, "add", testmutator.Args{ID: "a", Title: "milk"}))
	lsn := untilDiff(t, c, 0)
	query := func(sql string, maxRows int) (int, InspectQueryResult, apiError) {
		t.Helper()
		body, _ := json.Marshal(InspectQueryRequest{SQL: sql, MaxRows: maxRows})
		var raw json.RawMessage
		code := inspectDo(t, ts, http.MethodPost, "/v1/inspect/docs/doc/query", "", string(body), nil, &raw)
		var res InspectQueryResult
		var e apiError
		if code == http.StatusOK {
			json.Unmarshal(raw, &res)
		} else {
			json.Unmarshal(raw, &e)
		}
		return code, res, e
	}

	code, res, e := query(`SELECT id, title, done, 1.5, NULL, x'00ff', 9007199254740993 FROM items`, 0)
	if code != http.StatusOK || fmt.Sprint(res.Columns) != "[id title done 1.5 NULL x'00ff' 9007199254740993]" ||
		fmt.Sprint(res.Rows) != "[[a milk 0 1.5 <nil> map[blob_hex:00ff bytes:2] 9007199254740993]]" || res.LSN != lsn || res.Truncated {
		t.Errorf("SELECT: %d %+v %+v", code, res, e)
	}
	if _, ok := res.Rows[0][6].(string); !ok {
		t.Errorf("an integer beyond 2^53 is %T, want a string", res.Rows[0][6])
	}
	for _, sql := range []string{
		`PRAGMA table_info(items)`, `SELECT name FROM pragma_table_info('items')`, `PRAGMA user_version`,
		`SELECT * FROM pragma_index_list('items')`, `PRAGMA integrity_check`,
		`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3) SELECT x FROM c`,
		`SELECT * FROM __sqlsync_clients  ; -- a comment`,
	} {
		if code, res, e := query(sql, 0); code != http.StatusOK || len(res.Rows) == 0 {
			t.Errorf("%s: %d %+v %+v, want rows", sql, code, res, e)
		}
	}

	refused := []struct{ sql, code, want string }{
		{`INSERT INTO items(id, title) VALUES ('b', 'x')`, "read_only", "insert into items"},
		{`UPDATE items SET title = 'x'`, "read_only", "update items"},
		{`DELETE FROM items`, "read_only", "delete from items"},
		{`DROP TABLE items`, "read_only", "change the schema"},
		{`CREATE TABLE t(x)`, "read_only", "change the schema"},
		{`CREATE TEMP TABLE t(x)`, "read_only", "change the schema"},
		{`CREATE INDEX i ON items(title)`, "read_only", "change the schema"},
		{`ALTER TABLE items ADD COLUMN x`, "read_only", "alter"},
		{`PRAGMA user_version = 7`, "read_only", "PRAGMA user_version"},
		{`PRAGMA query_only = 0`, "read_only", "PRAGMA query_only"},
		{`ATTACH 'file:/etc/hostname' AS x`, "read_only", "attach"},
		{`VACUUM INTO '/tmp/sqlsync-inspector-vacuum'`, "read_only", ""},
		{`BEGIN`, "read_only", "transaction"},
		{`VACUUM`, "read_only", ""},
		{`REINDEX`, "read_only", ""},
		{`ANALYZE`, "read_only", ""},
		{`PRAGMA optimize`, "read_only", "PRAGMA optimize"},
		{`SELECT 1; DELETE FROM items`, "bad_request", "one statement at a time"},
		{`SELECT 1; SELECT 2`, "bad_request", "one statement at a time"},
		{`SELEC 1`, "sql_error", "syntax error"},
		{`SELECT * FROM absent`, "sql_error", "no such table: absent"},
		{``, "bad_request", "no SQL"},
		{`-- only a comment`, "bad_request", "only comments"},
		{`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c`, "timeout", "interrupted"},
	}
	for _, r := range refused {
		code, res, e := query(r.sql, 0)
		if code != http.StatusBadRequest || e.Code != r.code || !strings.Contains(e.Error, r.want) {
			t.Errorf("%s: %d %+v %+v, want 400 %s saying %q", r.sql, code, res, e, r.code, r.want)
		}
	}

	// Bounds: rows, and bytes (values of 60 KB, about 17 of them in 1 MiB),
	// and one value cut at 64 KiB.
	series := `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5000) `
	if code, res, _ := query(series+`SELECT x FROM c`, 0); code != http.StatusOK || len(res.Rows) != consoleMaxRows || !res.Truncated || res.TruncatedBy != "rows" {
		t.Errorf("5000 rows: %d, %d rows, truncated %v by %q; want %d by rows", code, len(res.Rows), res.Truncated, res.TruncatedBy, consoleMaxRows)
	}
	if code, res, _ := query(series+`SELECT x FROM c`, 10); code != http.StatusOK || len(res.Rows) != 10 || !res.Truncated {
		t.Errorf("max_rows 10: %d, %d rows, truncated %v", code, len(res.Rows), res.Truncated)
	}
	if code, res, _ := query(series+`SELECT printf('%.*c', 60000, 'x') FROM c`, 0); code != http.StatusOK || len(res.Rows) != consoleMaxBytes/60000 || res.TruncatedBy != "bytes" {
		t.Errorf("60 KB values: %d, %d rows, truncated by %q; want %d by bytes", code, len(res.Rows), res.TruncatedBy, consoleMaxBytes/60000)
	}
	if code, res, _ := query(`SELECT printf('%.*c', 100000, 'é')`, 0); code != http.StatusOK || res.ClippedValues != 1 || len(res.Rows[0][0].(string)) > consoleMaxValue+len("…") {
		t.Errorf("a 200 KB value: %d, %d clipped", code, res.ClippedValues)
	}

	// Not JSON: refused before anything runs.
	var bad apiError
	if code := inspectDo(t, ts, http.MethodPost, "/v1/inspect/docs/doc/query", "", "SELECT 1", http.Header{"Content-Type": {"text/plain"}}, &bad); code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d %+v, want 415", code, bad)
	}
	if code := inspectDo(t, ts, http.MethodPost, "/v1/inspect/docs/doc/query", "", "{", nil, &bad); code != http.StatusBadRequest || bad.Code != "bad_request" {
		t.Errorf("bad JSON: %d %+v, want 400", code, bad)
	}

	var d InspectDoc
	inspectGet(t, ts, "/v1/inspect/docs/doc", "", &d)
	if d.LSN != lsn || len(d.Commits) != 1 {
		t.Errorf("after the console: LSN %d and %d commits, want %d and 1: the console wrote", d.LSN, len(d.Commits), lsn)
	}
	var n string
	ts.coordinator(t, "doc", func(c *engine.Coordinator) {
		rows, err := c.Query(`SELECT count(*) || ' ' || group_concat(title) FROM items`)
		if err != nil {
			t.Fatal(err)
		}
		n = fmt.Sprint(rows.Values[0][0])
	})
	if n != "1 milk" {
		t.Errorf("items after the console: %s, want 1 milk", n)
	}
}

// TestInspectPresence: the inspector lists a document's presences, as the
// others see them, with when each expires; a withdrawn one goes.
func TestInspectPresence(t *testing.T) {
	ts := startServer(t, Config{})
	openDoc(t, ts, "doc", "bob", "") // without presence: not listed
	c := dialRaw(t, ts)
	h := hello("doc", "alice")
	h.Hello.Capabilities = []string{protocol.CapPresence}
	c.Send(h)
	c.ExpectWelcome()
	state := `{"name":"Ann","editing":"milk"}`
	before := time.Now()
	c.Send(protocol.Frame{PresenceSet: &protocol.PresenceSet{Key: "tab1", State: []byte(state)}})
	var d InspectDoc
	waitFor(t, "alice's presence in the inspector", func() bool {
		inspectGet(t, ts, "/v1/inspect/docs/doc", "", &d)
		return len(d.Presences) == 1
	})
	p := d.Presences[0]
	if !strings.HasSuffix(p.ID, "/tab1") || p.ClientID != "alice" || p.ReadOnly || string(p.State) != state || d.PresenceTotal != 1 {
		t.Fatalf("presence %+v (of %d), want alice's tab1 with its state", p, d.PresenceTotal)
	}
	if timeout := DefaultPresenceTimeout; p.Expires.Before(before.Add(timeout/2)) || p.Expires.After(time.Now().Add(timeout)) {
		t.Fatalf("expires %v, want about %v from now", p.Expires, timeout)
	}
	c.Send(protocol.Frame{PresenceSet: &protocol.PresenceSet{Key: "tab1"}})
	waitFor(t, "the withdrawn presence to go", func() bool {
		inspectGet(t, ts, "/v1/inspect/docs/doc", "", &d)
		return len(d.Presences) == 0 && d.PresenceTotal == 0
	})
}
