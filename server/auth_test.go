package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestVerifyHMAC(t *testing.T) {
	v, err := NewHMACVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(docs []string, role Role, ttl time.Duration) string {
		tok, err := Mint(testSecret, docs, role, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other, _ := Mint([]byte("another secret that is long enough!!"), []string{"*"}, RoleWrite, time.Hour)
	cases := []struct {
		name  string
		token string
		doc   string
		want  error
		role  Role
	}{
		{"exact", mint([]string{"a"}, RoleWrite, time.Hour), "a", nil, RoleWrite},
		{"prefix", mint([]string{"team-1/*"}, RoleRead, time.Hour), "team-1/list", nil, RoleRead},
		{"all", mint([]string{"*"}, RoleWrite, time.Hour), "anything", nil, RoleWrite},
		{"no token", "", "a", ErrNoToken, ""},
		{"garbage", "not.a.token", "a", ErrBadToken, ""},
		{"wrong signature", other, "a", ErrBadToken, ""},
		{"expired", mint([]string{"a"}, RoleWrite, -time.Minute), "a", ErrTokenExpired, ""},
		{"wrong document", mint([]string{"a"}, RoleWrite, time.Hour), "b", ErrNotGranted, ""},
		{"prefix is not a match", mint([]string{"team-1/*"}, RoleWrite, time.Hour), "team-10", ErrNotGranted, ""},
		{"admin", mint([]string{"a"}, RoleAdmin, time.Hour), "a", nil, RoleAdmin},
		{"bad role", mint([]string{"a"}, "owner", time.Hour), "a", ErrBadToken, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := v.Verify(c.token, c.doc)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
			if err == nil && claims.Role != c.role {
				t.Fatalf("role %q, want %q", claims.Role, c.role)
			}
		})
	}
}

// TestVerifyAdmin: the inspector's check takes a valid token with role
// admin only; the open development mode (a nil Verifier) grants all.
func TestVerifyAdmin(t *testing.T) {
	v, _ := NewHMACVerifier(testSecret)
	mint := func(role Role, ttl time.Duration) string {
		tok, err := Mint(testSecret, []string{"team-*"}, role, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"admin", mint(RoleAdmin, time.Hour), nil},
		{"write", mint(RoleWrite, time.Hour), ErrNotAdmin},
		{"read", mint(RoleRead, time.Hour), ErrNotAdmin},
		{"bad role", mint("owner", time.Hour), ErrBadToken},
		{"expired admin", mint(RoleAdmin, -time.Minute), ErrTokenExpired},
		{"no token", "", ErrNoToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := v.VerifyAdmin(c.token)
			if !errors.Is(err, c.want) {
				t.Fatalf("VerifyAdmin = %v, want %v", err, c.want)
			}
			if err == nil && (claims.Role != RoleAdmin || !claims.Grants("team-1") || claims.Grants("other")) {
				t.Fatalf("claims %+v, want admin of team-*", claims)
			}
		})
	}
	var open *Verifier
	if claims, err := open.VerifyAdmin(""); err != nil || !claims.Grants("anything") {
		t.Fatalf("open mode: %+v, %v; want every document granted", claims, err)
	}
}

func TestVerifyNoExpiryRefused(t *testing.T) {
	v, _ := NewHMACVerifier(testSecret)
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Docs: []string{"a"}, Role: RoleWrite}).SignedString(testSecret)
	if _, err := v.Verify(tok, "a"); !errors.Is(err, ErrBadToken) {
		t.Fatalf("a token without exp: Verify = %v, want ErrBadToken", err)
	}
}

func TestVerifyPublicKey(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	v, err := NewPublicKeyVerifier(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	claims := Claims{Docs: []string{"a"}, Role: RoleRead, RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(priv)
	if _, err := v.Verify(tok, "a"); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	// An HMAC token signed with the public key's bytes must not pass
	// (algorithm confusion).
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(der)
	if _, err := v.Verify(hs, "a"); !errors.Is(err, ErrBadToken) {
		t.Fatalf("HS256 token against a public key: Verify = %v, want ErrBadToken", err)
	}
	if _, err := NewHMACVerifier([]byte("short")); err == nil {
		t.Fatal("a short HMAC secret was accepted")
	}
}
