package server

// Access control and abuse resistance (docs/security.md): each hostile or
// broken client is refused with the right Close code and a clear reason,
// while honest replicas write to the same document alongside and converge
// untouched. This file: tokens, document IDs, origins. The shared harness
// (raw connections, honest replicas) is in security_harness_test.go; limits
// and clients that do not keep up in security_limits_test.go.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// ---- tokens -----------------------------------------------------------

// hmacConfig returns cfg with a verifier for testSecret.
func hmacConfig(t testing.TB, cfg Config) Config {
	t.Helper()
	v, err := NewHMACVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Verifier = v
	return cfg
}

// mintT mints an HMAC token with testSecret.
func mintT(t testing.TB, docs []string, role Role, ttl time.Duration) string {
	t.Helper()
	tok, err := Mint(testSecret, docs, role, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signT signs claims granting docs with method and key.
func signT(t testing.TB, method jwt.SigningMethod, key any, docs []string, role Role, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(method, Claims{Docs: docs, Role: role, RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publicKeyPEM returns pub as a PKIX PEM block and its DER bytes.
func publicKeyPEM(t testing.TB, pub crypto.PublicKey) (pemBytes, der []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), der
}

// ---- tokens ------------------------------------------------------------

// TestTokenRefusals: a client with no token, a bad or expired one, or one
// that does not grant the document is refused with unauthorized or
// forbidden before anything of the document is sent, and a bad token does
// not even open the document; prefix and exact grants are honoured.
func TestTokenRefusals(t *testing.T) {
	ts := startServer(t, hmacConfig(t, Config{}))
	h := startHonest(t, ts, "list-1", mintT(t, []string{"list-1"}, RoleWrite, time.Hour), 2, 2*time.Millisecond, 0)

	valid := mintT(t, []string{"*"}, RoleWrite, time.Hour)
	parts := strings.Split(valid, ".")
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{Docs: []string{"*"}, Role: RoleWrite,
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Docs: []string{"*"}, Role: RoleWrite}).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	// The claims of a token for "other", signed for "list-2" only.
	tampered := func() string {
		narrow := strings.Split(mintT(t, []string{"list-2"}, RoleWrite, time.Hour), ".")
		return narrow[0] + "." + parts[1] + "." + narrow[2]
	}()
	otherSecret, _ := Mint([]byte("another secret that is long enough!!"), []string{"*"}, RoleWrite, time.Hour)

	for _, tt := range []struct {
		name, doc, token string
		code, reason     string
	}{
		// An open document: nothing of it may leak.
		{"no token, open document", "list-1", "", protocol.CodeUnauthorized, "no token"},
		{"no token", "secret-1", "", protocol.CodeUnauthorized, "no token"},
		{"wrong signature", "secret-2", otherSecret, protocol.CodeUnauthorized, "signature is invalid"},
		{"wrong signature, open document", "list-1", otherSecret, protocol.CodeUnauthorized, "signature is invalid"},
		{"tampered claims", "secret-3", tampered, protocol.CodeUnauthorized, "signature is invalid"},
		{"expired", "secret-4", mintT(t, []string{"*"}, RoleWrite, -time.Hour), protocol.CodeUnauthorized, "token expired"},
		{"expired, open document", "list-1", mintT(t, []string{"list-1"}, RoleWrite, -time.Hour), protocol.CodeUnauthorized, "token expired"},
		// Just expired: within the parser's clock-skew leeway, but
		// expired all the same.
		{"expired two seconds ago", "list-1", mintT(t, []string{"list-1"}, RoleWrite, -2*time.Second), protocol.CodeUnauthorized, "token expired"},
		{"malformed", "secret-5", "not a token", protocol.CodeUnauthorized, "malformed"},
		{"three dots", "secret-6", "a.b.c", protocol.CodeUnauthorized, "invalid token"},
		{"truncated", "secret-7", valid[:len(valid)-6], protocol.CodeUnauthorized, "invalid token"},
		{"alg none", "secret-8", noneTok, protocol.CodeUnauthorized, "invalid token"},
		{"no expiry", "secret-9", noExp, protocol.CodeUnauthorized, "exp"},
		{"bad role", "secret-10", mintT(t, []string{"*"}, "owner", time.Hour), protocol.CodeUnauthorized, "role"},
		{"wrong document", "list-1", mintT(t, []string{"list-2"}, RoleWrite, time.Hour), protocol.CodeForbidden, `"list-1"`},
		{"wrong document, closed", "secret-11", mintT(t, []string{"list-2"}, RoleRead, time.Hour), protocol.CodeForbidden, "does not grant"},
		{"exact grant is not a prefix", "list-10", mintT(t, []string{"list-1"}, RoleWrite, time.Hour), protocol.CodeForbidden, "does not grant"},
		{"grants are case-sensitive", "list-1", mintT(t, []string{"LIST-1"}, RoleWrite, time.Hour), protocol.CodeForbidden, "does not grant"},
		{"outside the prefix", "team-420", mintT(t, []string{"team-42-*"}, RoleWrite, time.Hour), protocol.CodeForbidden, "does not grant"},
		{"shorter than the prefix", "team-4", mintT(t, []string{"team-42-*"}, RoleWrite, time.Hour), protocol.CodeForbidden, "does not grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			c.Send(helloTok(tt.doc, "intruder", tt.token))
			c.ExpectRefused(tt.code, tt.reason)
		})
	}

	// Grants that do match.
	for _, tt := range []struct{ name, doc, token string }{
		{"prefix grant", "team-42-a", mintT(t, []string{"list-9", "team-42-*"}, RoleRead, time.Hour)},
		{"grant all", "team-42-a", mintT(t, []string{"*"}, RoleWrite, time.Hour)},
		{"exact grant among others", "list-1", mintT(t, []string{"list-2", "list-1"}, RoleRead, time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			c.Send(helloTok(tt.doc, "granted", tt.token))
			c.ExpectWelcome()
		})
	}

	// A replica refused for good stops instead of retrying.
	for _, tt := range []struct{ name, token, want string }{
		{"no token", "", "unauthorized: no token"},
		{"forbidden", mintT(t, []string{"list-2"}, RoleWrite, time.Hour), "forbidden: token does not grant"},
	} {
		t.Run("replica "+tt.name, func(t *testing.T) {
			d := openClient(t, ts, "list-1", clientOptions{token: tt.token})
			mutate(t, d, "add", testmutator.Args{ID: "intruder", Title: "intruder"})
			if got := waitStopped(t, d, testTimeout); !strings.Contains(got, tt.want) {
				t.Fatalf("stopped with %q, want %q", got, tt.want)
			}
			if d.Engine().LSN() != 0 {
				t.Fatalf("a refused replica got the document: LSN %d", d.Engine().LSN())
			}
		})
	}

	h.finish()
	if got := queryString(t, h.docs[0], `SELECT count(*) FROM items WHERE id = 'intruder'`); got != "[[0]]" {
		t.Fatalf("intruder's item reached the document: %v", got)
	}
	// Only the documents someone was granted were opened or created.
	want := []string{"list-1", "team-42-a"}
	if got := ts.docDirs(t); !slices.Equal(got, want) {
		t.Fatalf("data directory holds %v, want %v", got, want)
	}
	if docs, _ := ts.health(t); docs != len(want) {
		t.Fatalf("healthz: %d documents open, want %d", docs, len(want))
	}
}

// TestReadOnlyClient: a read-only replica gets every diff, each mutation it
// sends is rejected with "read-only" and rolled back locally, and it keeps
// syncing afterwards.
func TestReadOnlyClient(t *testing.T) {
	ts := startServer(t, hmacConfig(t, Config{}))
	h := startHonest(t, ts, "doc", mintT(t, []string{"doc"}, RoleWrite, time.Hour), 2, 2*time.Millisecond, 0)
	ro := openClient(t, ts, "doc", clientOptions{token: mintT(t, []string{"doc"}, RoleRead, time.Hour)})
	var mu sync.Mutex
	var rejections []string
	ro.Watch(func(e client.Event) {
		if e.Rejected != nil {
			mu.Lock()
			rejections = append(rejections, e.Rejected.Message)
			mu.Unlock()
		}
	})
	waitSynced(t, ro)

	const n = 20
	for i := range n {
		id := fmt.Sprintf("ro-%d", i)
		mutate(t, ro, "add", testmutator.Args{ID: id, Title: "read-only write"})
		if i == 0 {
			// Locally the mutation applies at once, as any optimistic one.
			if got := queryString(t, ro, `SELECT count(*) FROM items WHERE id = 'ro-0'`); got != "[[1]]" {
				t.Fatalf("local mutation not visible: %v", got)
			}
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "the read-only replica's rejections", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(rejections) == n
	})
	mu.Lock()
	for _, m := range rejections {
		if !strings.Contains(m, "read-only") {
			t.Fatalf("rejection %q does not say read-only", m)
		}
	}
	mu.Unlock()
	// It keeps syncing: the others' writes go on reaching it.
	waitSynced(t, ro)
	h.probe("probe-after-ro")
	h.finish(ro)
	for _, d := range []*client.Doc{ro, h.docs[0]} {
		if got := queryString(t, d, `SELECT count(*) FROM items WHERE id LIKE 'ro-%'`); got != "[[0]]" {
			t.Fatalf("read-only writes in a replica: %v", got)
		}
	}
	if s := ro.Status(); s.LastError != "" || s.Pending != 0 {
		t.Fatalf("read-only replica: %+v", s)
	}
}

// TestTokenExpiresMidSession: a session whose token expires is ended with
// "unauthorized: token expired"; the replica stops, the others go on.
func TestTokenExpiresMidSession(t *testing.T) {
	ts := startServer(t, hmacConfig(t, Config{}))
	h := startHonest(t, ts, "doc", mintT(t, []string{"doc"}, RoleWrite, time.Hour), 2, 2*time.Millisecond, 0)

	short := mintT(t, []string{"doc"}, RoleWrite, 2*time.Second)
	claims, err := ts.cfg.Verifier.Verify(short, "doc")
	if err != nil {
		t.Fatal(err)
	}
	exp := claims.ExpiresAt.Time
	d := openClient(t, ts, "doc", clientOptions{token: short})
	raw := dialRaw(t, ts)
	raw.Send(helloTok("doc", "raw-short", short))
	raw.ExpectWelcome()
	waitSynced(t, d)
	mutate(t, d, "add", testmutator.Args{ID: "before-expiry", Title: "ok"})
	waitSynced(t, d)

	// The raw connection sees diffs, then the Close.
	cl, _, err := raw.UntilClose()
	if err != nil {
		t.Fatal(err)
	}
	if cl.Code != protocol.CodeUnauthorized || cl.Reason != "token expired" {
		t.Fatalf("close %s: %s, want unauthorized: token expired", cl.Code, cl.Reason)
	}
	if late := time.Since(exp); late < -50*time.Millisecond || late > 3*time.Second {
		t.Fatalf("session ended %v after the token's expiry", late)
	}
	if got := waitStopped(t, d, 5*time.Second); !strings.Contains(got, "unauthorized: token expired") {
		t.Fatalf("replica stopped with %q", got)
	}
	// What it wrote while the token was good stays; what it writes after
	// waits locally.
	mutate(t, d, "add", testmutator.Args{ID: "after-expiry", Title: "pending"})
	h.finish()
	if got := queryString(t, h.docs[0], `SELECT id FROM items WHERE id IN ('before-expiry', 'after-expiry')`); got != "[[before-expiry]]" {
		t.Fatalf("items of the expired replica: %v", got)
	}
}

// TestPublicKeyTokens: Ed25519 and ECDSA tokens are accepted; an HMAC token
// signed with the public key's bytes, a token from another key and an
// unsigned one are refused.
func TestPublicKeyTokens(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	_, edOther, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecOther, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, kt := range []struct {
		name        string
		pub         crypto.PublicKey
		method      jwt.SigningMethod
		priv, other any
		foreign     func() string // a token of the other key type
	}{
		{"Ed25519", edPub, jwt.SigningMethodEdDSA, edPriv, edOther,
			func() string { return signT(t, jwt.SigningMethodES256, ecPriv, []string{"*"}, RoleWrite, time.Hour) }},
		{"ECDSA", &ecPriv.PublicKey, jwt.SigningMethodES256, ecPriv, ecOther,
			func() string { return signT(t, jwt.SigningMethodEdDSA, edPriv, []string{"*"}, RoleWrite, time.Hour) }},
	} {
		t.Run(kt.name, func(t *testing.T) {
			pemBytes, der := publicKeyPEM(t, kt.pub)
			v, err := NewPublicKeyVerifier(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			ts := startServer(t, Config{Verifier: v})
			h := startHonest(t, ts, "doc", signT(t, kt.method, kt.priv, []string{"doc"}, RoleWrite, time.Hour), 2, 2*time.Millisecond, 0)

			c := dialRaw(t, ts)
			c.Send(helloTok("doc", "signed", signT(t, kt.method, kt.priv, []string{"d*"}, RoleRead, time.Hour)))
			c.ExpectWelcome()
			for _, bad := range []struct{ name, token string }{
				{"HS256 with the public key PEM", signT(t, jwt.SigningMethodHS256, pemBytes, []string{"*"}, RoleWrite, time.Hour)},
				{"HS256 with the public key DER", signT(t, jwt.SigningMethodHS256, der, []string{"*"}, RoleWrite, time.Hour)},
				{"HS256 with the HMAC secret", mintT(t, []string{"*"}, RoleWrite, time.Hour)},
				{"another key", signT(t, kt.method, kt.other, []string{"*"}, RoleWrite, time.Hour)},
				{"another key type", kt.foreign()},
				{"expired", signT(t, kt.method, kt.priv, []string{"*"}, RoleWrite, -time.Minute)},
			} {
				t.Run(bad.name, func(t *testing.T) {
					c := dialRaw(t, ts)
					c.Send(helloTok("doc", "forger", bad.token))
					c.ExpectRefused(protocol.CodeUnauthorized, "token")
				})
			}
			h.finish()
		})
	}
}

// ---- document IDs ------------------------------------------------------

// TestDocIDTraversal: document IDs that could name a path outside the data
// directory are refused, even with a token granting every document, and
// nothing is created outside it; odd but safe IDs stay inside it.
func TestDocIDTraversal(t *testing.T) {
	parent := t.TempDir()
	data := filepath.Join(parent, "data")
	ts := startServer(t, hmacConfig(t, Config{DataDir: data}))
	all := mintT(t, []string{"*"}, RoleWrite, time.Hour)
	h := startHonest(t, ts, "doc", all, 2, 2*time.Millisecond, 0)

	for _, id := range []string{
		"..", ".", "../x", "../../etc/passwd", "../data/docs/doc", "a/../../x", "a/b", "/etc/passwd",
		`..\x`, `a\b`, `C:\x`, "x\x00y", ".hidden", "..x", "%2e%2e%2fx", "a b", "doc\n", "ü", "doc/",
		"*", "~", "$HOME",
	} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			c := dialRaw(t, ts)
			c.Send(helloTok(id, "traveller", all))
			c.ExpectRefused(protocol.CodeBadRequest, "bad document ID")
		})
	}
	t.Run("too long", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.Send(helloTok(strings.Repeat("a", 129), "traveller", all))
		c.ExpectRefused(protocol.CodeLimit, "doc id is 129 bytes")
	})
	t.Run("mutator endpoint", func(t *testing.T) {
		for _, p := range []string{"/v1/docs/..%2f..%2fx/mutator", "/v1/docs/.hidden/mutator", "/v1/docs/a%5cb/mutator"} {
			resp, err := http.Get("http://" + ts.addr + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 4 {
				t.Fatalf("GET %s: %s, want a 4xx", p, resp.Status)
			}
		}
	})
	// Odd but safe IDs are documents like any other, inside the data directory.
	safe := []string{"a..b", "-", "_x", "x.", strings.Repeat("z", 128)}
	for _, id := range safe {
		c := dialRaw(t, ts)
		c.Send(helloTok(id, "odd", all))
		c.ExpectWelcome()
	}
	h.finish()

	var outside []string
	filepath.WalkDir(parent, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(parent, p)
		if rel != "." && rel != "data" && rel != filepath.Join("data", dataLockName) && rel != filepath.Join("data", "docs") && !strings.HasPrefix(rel, filepath.Join("data", "docs")+string(filepath.Separator)) {
			outside = append(outside, rel)
		}
		return nil
	})
	if len(outside) > 0 {
		t.Fatalf("created outside the documents directory: %v", outside)
	}
	want := append([]string{"doc"}, safe...)
	sort.Strings(want)
	if got := ts.docDirs(t); !slices.Equal(got, want) {
		t.Fatalf("documents: %v, want %v", got, want)
	}
}

// ---- origins -----------------------------------------------------------

// TestOriginCheck: a browser Origin that is not allowed is refused at the
// upgrade with HTTP 403; an allowed one, and no Origin at all, pass.
func TestOriginCheck(t *testing.T) {
	t.Run("allowed origins", func(t *testing.T) {
		ts := startServer(t, hmacConfig(t, Config{AllowedOrigins: []string{"https://app.example", "http://localhost:5173"}}))
		tok := mintT(t, []string{"doc"}, RoleWrite, time.Hour)
		h := startHonest(t, ts, "doc", tok, 2, 2*time.Millisecond, 0)
		for _, tt := range []struct {
			origin string
			ok     bool
		}{
			{"", true},
			{"https://app.example", true},
			{"HTTPS://APP.EXAMPLE", true},
			{"http://localhost:5173", true},
			{"https://evil.example", false},
			{"http://app.example", false},
			{"https://app.example.evil.example", false},
			{"https://app.example:444", false},
			{"null", false},
			{"http://" + ts.addr, true}, // its own origin, always allowed though not listed
		} {
			t.Run(fmt.Sprintf("%q", tt.origin), func(t *testing.T) {
				checkOriginDial(t, ts, tt.origin, tt.ok, tok)
			})
		}
		h.finish()
		if docs, _ := ts.health(t); docs != 1 {
			t.Fatalf("%d documents open, want 1", docs)
		}
	})
	t.Run("own origin only", func(t *testing.T) {
		ts := startServer(t, Config{})
		for _, tt := range []struct {
			origin string
			ok     bool
		}{
			{"", true},
			{"http://" + ts.addr, true},
			{"http://evil.example", false},
			{"http://127.0.0.2:" + strings.Split(ts.addr, ":")[1], false},
		} {
			t.Run(fmt.Sprintf("%q", tt.origin), func(t *testing.T) {
				checkOriginDial(t, ts, tt.origin, tt.ok, "")
			})
		}
	})
	t.Run("any origin", func(t *testing.T) {
		ts := startServer(t, Config{AllowedOrigins: []string{"*"}})
		checkOriginDial(t, ts, "https://anywhere.example", true, "")
	})
}

func checkOriginDial(t *testing.T, ts *testServer, origin string, ok bool, token string) {
	t.Helper()
	header := http.Header{}
	if origin != "" {
		header.Set("Origin", origin)
	}
	c, resp, err := dialRawWith(t, ts, websocket.DefaultDialer, header)
	if !ok {
		if err == nil {
			t.Fatalf("Origin %q: upgrade accepted", origin)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("Origin %q: %v (%v), want HTTP 403", origin, err, resp)
		}
		return
	}
	if err != nil {
		t.Fatalf("Origin %q: %v", origin, err)
	}
	c.Send(helloTok("doc", "browser", token))
	c.ExpectWelcome()
}

// ---- fuzzing -----------------------------------------------------------

// FuzzVerifyToken: whatever token a client sends in its Hello, Verify does
// not panic, and it accepts only claims the key signed.
func FuzzVerifyToken(f *testing.F) {
	v, err := NewHMACVerifier(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	signed := map[string]bool{} // the claims minted below, as "role docs"
	for _, s := range []struct {
		docs []string
		role Role
		ttl  time.Duration
	}{
		{[]string{"doc"}, RoleWrite, time.Hour},
		{[]string{"team-*", "a"}, RoleRead, time.Hour},
		{[]string{"*"}, RoleWrite, -time.Hour},
	} {
		tok := mintT(f, s.docs, s.role, s.ttl)
		signed[fmt.Sprint(s.role, s.docs)] = true
		f.Add(tok, "doc")
		f.Add(tok, "team-1")
	}
	f.Add("", "doc")
	f.Add("a.b.c", "doc")
	f.Add("eyJhbGciOiJub25lIn0.eyJkb2NzIjpbIioiXX0.", "doc")
	f.Fuzz(func(t *testing.T, token, doc string) {
		claims, err := v.Verify(token, doc)
		if err != nil {
			return
		}
		if !signed[fmt.Sprint(claims.Role, claims.Docs)] || !claims.Grants(doc) {
			t.Fatalf("accepted unsigned claims %+v for %q", claims, doc)
		}
	})
}
