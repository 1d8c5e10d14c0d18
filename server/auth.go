package server

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Role is what a token lets its holder do with the documents it grants.
type Role string

// Roles.
const (
	RoleRead  Role = "read"  // receive diffs; every mutation is refused
	RoleWrite Role = "write" // receive diffs and mutate
	// RoleAdmin may do what RoleWrite may, and inspect its documents with
	// the inspector (/inspector, /v1/inspect/, sqlsync inspect): see who is
	// connected, recent commits and rejections, and query them read-only.
	RoleAdmin Role = "admin"
)

// valid reports whether r is one of the roles.
func (r Role) valid() bool { return r == RoleRead || r == RoleWrite || r == RoleAdmin }

// Claims are the claims of a sqlsync access token.
type Claims struct {
	// Docs grants documents by exact ID, or by prefix when an entry ends
	// in "*" ("team-42-*" grants every ID starting "team-42-"; "*" grants all).
	Docs []string `json:"docs"`
	// Role is "read", "write" or "admin".
	Role Role `json:"role"`
	jwt.RegisteredClaims
}

// Grants reports whether the claims grant docID.
func (c *Claims) Grants(docID string) bool {
	for _, d := range c.Docs {
		if prefix, ok := strings.CutSuffix(d, "*"); ok {
			if strings.HasPrefix(docID, prefix) {
				return true
			}
		} else if d == docID {
			return true
		}
	}
	return false
}

// Auth errors, matched with errors.Is.
var (
	ErrNoToken      = errors.New("no token")
	ErrBadToken     = errors.New("invalid token")
	ErrTokenExpired = errors.New("token expired")
	ErrNotGranted   = errors.New("token does not grant this document")
	ErrNotAdmin     = errors.New("token's role is not admin")
)

// Verifier checks access tokens. A nil *Verifier is the open development
// mode: every client may read and write every document.
type Verifier struct {
	key     any // []byte for HMAC, a crypto.PublicKey otherwise
	methods []string
	now     func() time.Time
}

// NewHMACVerifier verifies HS256/HS384/HS512 tokens signed with secret.
func NewHMACVerifier(secret []byte) (*Verifier, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("new verifier: HMAC secret has %d bytes, want at least 32", len(secret))
	}
	return &Verifier{key: secret, methods: []string{"HS256", "HS384", "HS512"}, now: time.Now}, nil
}

// NewPublicKeyVerifier verifies RS*, PS*, ES* or EdDSA tokens with the public
// key in PEM (a PKIX "PUBLIC KEY" block).
func NewPublicKeyVerifier(pemBytes []byte) (*Verifier, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("new verifier: no PEM block in public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("new verifier: parse public key: %w", err)
	}
	return &Verifier{key: pub.(crypto.PublicKey), methods: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}, now: time.Now}, nil
}

// Verify checks token and that it grants docID, returning its claims.
func (v *Verifier) Verify(token, docID string) (*Claims, error) {
	if v == nil {
		return &Claims{Docs: []string{"*"}, Role: RoleWrite}, nil
	}
	claims, err := v.parse(token)
	if err != nil {
		return nil, err
	}
	if !claims.Grants(docID) {
		return nil, fmt.Errorf("%w: %q", ErrNotGranted, docID)
	}
	return claims, nil
}

// VerifyAdmin checks token and that its role is admin, returning its
// claims: the inspector's check (the documents it may inspect are those
// the claims grant). A nil Verifier, the open development mode, has no
// tokens to check: it returns claims granting every document.
func (v *Verifier) VerifyAdmin(token string) (*Claims, error) {
	if v == nil {
		return &Claims{Docs: []string{"*"}, Role: RoleAdmin}, nil
	}
	claims, err := v.parse(token)
	if err != nil {
		return nil, err
	}
	if claims.Role != RoleAdmin {
		return nil, fmt.Errorf("%w: it is %q", ErrNotAdmin, claims.Role)
	}
	return claims, nil
}

// parse checks token's signature, expiry and role.
func (v *Verifier) parse(token string) (*Claims, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil },
		jwt.WithValidMethods(v.methods), jwt.WithTimeFunc(v.now), jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	// The leeway tolerates clock skew on nbf and iat, not on exp: a
	// session ends exactly at exp (conn.serve), so a token past it must be
	// refused here too, before the document is opened, rather than
	// welcomed and then closed at once.
	if !v.now().Before(claims.ExpiresAt.Time) {
		return nil, ErrTokenExpired
	}
	if !claims.Role.valid() {
		return nil, fmt.Errorf("%w: role %q is not read, write or admin", ErrBadToken, claims.Role)
	}
	return &claims, nil
}

// Mint signs a token for development and tests with an HMAC secret.
func Mint(secret []byte, docs []string, role Role, ttl time.Duration) (string, error) {
	now := time.Now()
	c := Claims{Docs: docs, Role: role, RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
