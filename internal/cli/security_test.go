package cli_test

// The command line's side of access control (docs/security.md): where
// `serve` may listen without a token key, what it logs, the key sources,
// and `sqlsync token`.

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/internal/cli"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

const secSecret = "0123456789abcdef0123456789abcdef-cli"

// openModeWarning is the start of the WARN line of open development mode.
const openModeWarning = "OPEN DEVELOPMENT MODE"

// inProcServe is `sqlsync serve` run in this process, so that it can listen
// on port 0 and the test can read its log.
type inProcServe struct {
	stderr *lockedBuffer
	cancel context.CancelFunc
	done   chan int
	addr   string // host:port it serves, on loopback
}

// serveInProc runs serve with args (plus a fresh data directory) and waits
// until it logs that it is serving; it is stopped when the test ends.
func serveInProc(t *testing.T, args ...string) *inProcServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcServe{stderr: &lockedBuffer{}, cancel: cancel, done: make(chan int, 1)}
	args = withMutator(append([]string{"serve", "--data", t.TempDir(), "--static", ""}, args...))
	go func() { p.done <- cli.Run(ctx, args, io.Discard, p.stderr) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(testTimeout)
	for {
		if u := logField(p.stderr.String(), "serving", "url"); u != "" {
			host, port, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
			if err != nil {
				t.Fatalf("serving url %q: %v", u, err)
			}
			if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
				host = "127.0.0.1" // all interfaces, or a name: dial loopback
			}
			p.addr = net.JoinHostPort(host, port)
			return p
		}
		select {
		case code := <-p.done:
			p.done <- code
			t.Fatalf("serve %v exited with %d:\n%s", args, code, p.stderr)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve %v did not start:\n%s", args, p.stderr)
		}
	}
}

// stop ends serve and returns its exit code.
func (p *inProcServe) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	select {
	case code := <-p.done:
		p.done <- code
		return code
	case <-time.After(testTimeout):
		t.Fatalf("serve did not stop")
		return -1
	}
}

func (p *inProcServe) url() string { return "http://" + p.addr }

// logField returns field of the first JSON log line whose msg is msg.
func logField(log, msg, field string) string {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			s, _ := line[field].(string)
			return s
		}
	}
	return ""
}

// waitRefused waits until the coordinator has stopped d for good and
// returns why.
func waitRefused(t *testing.T, d *client.Doc) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := d.WaitSynced(ctx)
	if !errors.Is(err, client.ErrStopped) {
		t.Fatalf("replica not refused: %v, %+v", err, d.Status())
	}
	return d.Status().LastError
}

// TestServeOpenModeLoopbackOnly: without a token key, serve refuses to
// listen on anything but loopback unless --insecure-open, and says loudly
// that it runs open.
func TestServeOpenModeLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:8080", "example.com:8080"} {
		t.Run("refuses "+addr, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var stderr lockedBuffer
			code := cli.Run(context.Background(), withMutator([]string{"serve", "--addr", addr, "--data", data}), io.Discard, &stderr)
			if code != cli.ExitUsage {
				t.Fatalf("exit %d, want %d (usage):\n%s", code, cli.ExitUsage, &stderr)
			}
			if !strings.Contains(stderr.String(), "--insecure-open") || !strings.Contains(stderr.String(), "loopback") {
				t.Fatalf("the refusal does not say how to proceed:\n%s", &stderr)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Fatalf("the refused serve created its data directory: %v", err)
			}
		})
	}
	for _, args := range [][]string{
		{"--addr", "127.0.0.1:0"},
		{"--addr", "localhost:0"},
		{"--addr", "[::1]:0"},
		{"--addr", "0.0.0.0:0", "--insecure-open"},
	} {
		t.Run("open "+strings.Join(args, " "), func(t *testing.T) {
			if args[1] == "[::1]:0" {
				if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					ln.Close()
				}
			}
			p := serveInProc(t, args...)
			if logField(p.stderr.String(), "no token key configured: OPEN DEVELOPMENT MODE, every client may read and write every document", "level") != "WARN" {
				t.Fatalf("no WARN line about open mode:\n%s", p.stderr)
			}
			// Open means open: a replica without a token syncs.
			d := openReplica(t, p.url(), "doc", client.Options{})
			servertest.WaitSynced(t, d)
			if code := p.stop(t); code != cli.ExitOK {
				t.Fatalf("serve exited with %d", code)
			}
		})
	}
}

// TestServeWithKey: with a key, serve may listen on any address, logs no
// open-mode warning, and takes only the tokens the key verifies, from
// `sqlsync token` or from the app's own backend.
func TestServeWithKey(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pubFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	edToken := func(docs []string, role server.Role) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, server.Claims{Docs: docs, Role: role,
			RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cliToken := func(args ...string) string {
		return strings.TrimSpace(runOK(t, append([]string{"token", "--jwt-secret", secSecret}, args...)...))
	}

	for _, tt := range []struct {
		name  string
		env   string
		args  []string
		token func(docs []string, role server.Role) string
	}{
		{"secret flag", "", []string{"--jwt-secret", secSecret}, func(docs []string, role server.Role) string {
			return cliToken("--doc", strings.Join(docs, ","), "--role", string(role))
		}},
		{"secret env", secSecret, nil, func(docs []string, role server.Role) string {
			return cliToken("--doc", strings.Join(docs, ","), "--role", string(role))
		}},
		{"secret file", "", []string{"--jwt-secret-file", secretFile}, func(docs []string, role server.Role) string {
			return cliToken("--doc", strings.Join(docs, ","), "--role", string(role))
		}},
		{"public key", "", []string{"--jwt-public-key", pubFile}, edToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("SQLSYNC_JWT_SECRET", tt.env)
			}
			// Not loopback: allowed, since tokens guard it.
			p := serveInProc(t, append([]string{"--addr", "0.0.0.0:0"}, tt.args...)...)
			if strings.Contains(p.stderr.String(), openModeWarning) {
				t.Fatalf("serve with a key warns of open mode:\n%s", p.stderr)
			}
			writer := openReplica(t, p.url(), "team-1-list", client.Options{Token: tt.token([]string{"team-1-*"}, server.RoleWrite)})
			reader := openReplica(t, p.url(), "team-1-list", client.Options{Token: tt.token([]string{"team-1-list"}, server.RoleRead)})
			if _, err := writer.Mutate(context.Background(), "add", testmutator.Args{ID: "a", Title: "A"}.Encode()); err != nil {
				t.Fatal(err)
			}
			servertest.WaitSynced(t, writer)
			servertest.WaitSynced(t, reader)
			if lsn := waitSameLSN(t, writer, reader); lsn == 0 {
				t.Fatal("nothing synced")
			}
			rows, err := reader.Query(context.Background(), `SELECT title FROM items WHERE id = 'a'`)
			if err != nil || len(rows.Values) != 1 {
				t.Fatalf("the reader does not see the write: %v %v", rows.Values, err)
			}
			for _, bad := range []struct{ name, token, want string }{
				{"no token", "", "unauthorized: no token"},
				{"other document", tt.token([]string{"team-2-*"}, server.RoleWrite), "forbidden"},
				{"HMAC token, other secret", strings.TrimSpace(runOK(t, "token", "--jwt-secret", strings.Repeat("x", 40), "--doc", "*")), "unauthorized: invalid token"},
			} {
				t.Run(bad.name, func(t *testing.T) {
					d := openReplica(t, p.url(), "team-1-list", client.Options{Token: bad.token})
					if got := waitRefused(t, d); !strings.Contains(got, bad.want) {
						t.Fatalf("refused with %q, want %q", got, bad.want)
					}
				})
			}
			// The CLI's own replica: a read-only token's mutation is
			// rejected, a write token's applied.
			_, errOut, code := run(t, "mutate", "--url", p.url(), "--doc", "team-1-list", "--token", tt.token([]string{"team-1-list"}, server.RoleRead), "add", `{"id":"b","title":"B"}`)
			if code != cli.ExitRejected || !strings.Contains(errOut, "read-only") {
				t.Fatalf("mutate with a read-only token: exit %d, %s", code, errOut)
			}
			runOK(t, "mutate", "--url", p.url(), "--doc", "team-1-list", "--token", tt.token([]string{"team-1-list"}, server.RoleWrite), "add", `{"id":"c","title":"C"}`)
			_, errOut, code = run(t, "query", "--url", p.url(), "--doc", "team-1-list", `SELECT 1`)
			if code == cli.ExitOK || !strings.Contains(errOut, "unauthorized") {
				t.Fatalf("query without a token: exit %d, %s", code, errOut)
			}
		})
	}
}

// TestServeKeyErrors: a bad key (or time limit) configuration stops serve
// before it listens, saying what is wrong.
func TestServeKeyErrors(t *testing.T) {
	dir := t.TempDir()
	badPEM := filepath.Join(dir, "bad.pem")
	os.WriteFile(badPEM, []byte("not a key"), 0o644)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"short secret", []string{"--jwt-secret", "short"}, cli.ExitError, "at least 32"},
		{"secret and public key", []string{"--jwt-secret", secSecret, "--jwt-public-key", badPEM}, cli.ExitUsage, "not both"},
		{"missing secret file", []string{"--jwt-secret-file", filepath.Join(dir, "nope")}, cli.ExitError, "jwt-secret-file"},
		{"missing public key", []string{"--jwt-public-key", filepath.Join(dir, "nope")}, cli.ExitError, "jwt-public-key"},
		{"not a public key", []string{"--jwt-public-key", badPEM}, cli.ExitError, "PEM"},
		{"zero mutation timeout", []string{"--mutation-timeout", "0"}, cli.ExitUsage, "--mutation-timeout must be positive"},
		{"negative batch timeout", []string{"--batch-timeout", "-1s"}, cli.ExitUsage, "--batch-timeout must not be negative"},
		{"help lists the time limits", []string{"-h"}, cli.ExitUsage, "-batch-timeout duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr lockedBuffer
			args := withMutator(append([]string{"serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(t.TempDir(), "data")}, tt.args...))
			code := cli.Run(context.Background(), args, io.Discard, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, want %d mentioning %q:\n%s", code, tt.code, tt.want, &stderr)
			}
		})
	}
}

// TestTokenCommand: `sqlsync token` prints a token that verifies with the
// same secret, and only with it, carrying the documents, role and expiry
// asked for.
func TestTokenCommand(t *testing.T) {
	v, err := server.NewHMACVerifier([]byte(secSecret))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := server.NewHMACVerifier([]byte(strings.Repeat("y", 32)))
	before := time.Now()
	tok := strings.TrimSpace(runOK(t, "token", "--jwt-secret", secSecret, "--doc", "list-1,team-7-*", "--role", "read", "--ttl", "90m"))
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("output is not one JWT: %q", tok)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &server.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if alg := parsed.Method.Alg(); alg != "HS256" {
		t.Fatalf("alg %s, want HS256", alg)
	}
	for _, doc := range []string{"list-1", "team-7-a", "team-7-"} {
		c, err := v.Verify(tok, doc)
		if err != nil {
			t.Fatalf("Verify(%s): %v", doc, err)
		}
		if c.Role != server.RoleRead || strings.Join(c.Docs, ",") != "list-1,team-7-*" {
			t.Fatalf("claims %+v", c)
		}
		if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != 90*time.Minute {
			t.Fatalf("exp - iat = %v, want 90m", got)
		}
		if exp := c.ExpiresAt.Time; exp.Before(before.Add(90*time.Minute-2*time.Second)) || exp.After(time.Now().Add(90*time.Minute+time.Second)) {
			t.Fatalf("exp %v is not 90 minutes from now", exp)
		}
	}
	for _, doc := range []string{"list-10", "team-8-a", "team-7"} {
		if _, err := v.Verify(tok, doc); !errors.Is(err, server.ErrNotGranted) {
			t.Fatalf("Verify(%s) = %v, want ErrNotGranted", doc, err)
		}
	}
	if _, err := other.Verify(tok, "list-1"); !errors.Is(err, server.ErrBadToken) {
		t.Fatalf("another secret: Verify = %v, want ErrBadToken", err)
	}

	// Defaults: write, 24 h; the secret may come from the environment.
	t.Setenv("SQLSYNC_JWT_SECRET", secSecret)
	tok = strings.TrimSpace(runOK(t, "token", "--doc", "*"))
	c, err := v.Verify(tok, "anything")
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != server.RoleWrite || c.ExpiresAt.Sub(c.IssuedAt.Time) != 24*time.Hour {
		t.Fatalf("default claims: role %s, ttl %v", c.Role, c.ExpiresAt.Sub(c.IssuedAt.Time))
	}

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no document", []string{"token", "--jwt-secret", secSecret}, "--doc"},
		{"bad role", []string{"token", "--jwt-secret", secSecret, "--doc", "a", "--role", "owner"}, "read, write or admin"},
		{"short secret", []string{"token", "--jwt-secret", "short", "--doc", "a"}, "at least 32 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, tt.args...)
			if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d mentioning %q", code, out, errOut, cli.ExitUsage, tt.want)
			}
		})
	}
	t.Run("no secret", func(t *testing.T) {
		t.Setenv("SQLSYNC_JWT_SECRET", "")
		if _, errOut, code := run(t, "token", "--doc", "a"); code != cli.ExitUsage || !strings.Contains(errOut, "--jwt-secret") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}
