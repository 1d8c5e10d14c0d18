package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sqlsync-go/sqlsync/server"
)

// securityFlags are serve's flags for tokens, origins and limits.
type securityFlags struct {
	secret, secretFile, publicKey  string
	origins                        string
	insecureOpen                   bool
	maxFrame, maxPerFrame, maxArgs int
	maxQueued, maxConns            int
	rate                           float64
	maxDocBytes                    int64
	mutationTimeout, batchTimeout  time.Duration
}

func (f *securityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.secret, "jwt-secret", "", "HMAC secret verifying access tokens (or env SQLSYNC_JWT_SECRET)")
	fs.StringVar(&f.secretFile, "jwt-secret-file", "", "file holding the HMAC secret")
	fs.StringVar(&f.publicKey, "jwt-public-key", "", "PEM file of the public key verifying RS/PS/ES/EdDSA tokens")
	fs.StringVar(&f.origins, "allowed-origins", "", "comma-separated browser origins (scheme://host:port), besides the server's own, allowed to use the sync and mutator endpoints; * for any")
	fs.BoolVar(&f.insecureOpen, "insecure-open", false, "allow open development mode (no token key) on a non-loopback address")
	fs.IntVar(&f.maxFrame, "max-frame-bytes", 16<<20, "largest frame a client may send")
	fs.IntVar(&f.maxPerFrame, "max-mutations-per-frame", 1000, "most mutations in one push")
	fs.IntVar(&f.maxArgs, "max-args-bytes", 64<<10, "largest args of one mutation")
	fs.IntVar(&f.maxQueued, "max-queued-per-client", 10000, "most mutations one connection may have waiting to be applied")
	fs.IntVar(&f.maxConns, "max-conns-per-doc", 1000, "most connections to one document")
	fs.Float64Var(&f.rate, "rate", 2000, "most mutations per second one connection may send")
	fs.Int64Var(&f.maxDocBytes, "max-doc-bytes", 1<<30, "largest size of one document")
	fs.DurationVar(&f.mutationTimeout, "mutation-timeout", 5*time.Second, "longest one mutation may run on the coordinator before it is interrupted and rejected")
	fs.DurationVar(&f.batchTimeout, "batch-timeout", 0, "longest one group commit may go on starting mutations; the rest wait for the next (default twice --mutation-timeout)")
}

func (f *securityFlags) apply(cfg *server.Config, addr string) error {
	secret := f.secret
	if secret == "" {
		secret = os.Getenv("SQLSYNC_JWT_SECRET")
	}
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return fmt.Errorf("read --jwt-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	var err error
	switch {
	case secret != "" && f.publicKey != "":
		return usagef("give either an HMAC secret or --jwt-public-key, not both")
	case secret != "":
		cfg.Verifier, err = server.NewHMACVerifier([]byte(secret))
	case f.publicKey != "":
		var pem []byte
		if pem, err = os.ReadFile(f.publicKey); err != nil {
			return fmt.Errorf("read --jwt-public-key: %w", err)
		}
		cfg.Verifier, err = server.NewPublicKeyVerifier(pem)
	default:
		if !isLoopback(addr) && !f.insecureOpen {
			return usagef("no token key: open development mode binds only to loopback; give --jwt-secret or --jwt-public-key, or --insecure-open")
		}
	}
	if err != nil {
		return err
	}
	if f.origins != "" {
		for _, o := range strings.Split(f.origins, ",") {
			o, err := parseOrigin(o)
			if err != nil {
				return usagef("--allowed-origins: %v", err)
			}
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	if f.mutationTimeout <= 0 {
		return usagef("--mutation-timeout must be positive, got %v", f.mutationTimeout)
	}
	if f.batchTimeout < 0 {
		return usagef("--batch-timeout must not be negative, got %v (0 for twice --mutation-timeout)", f.batchTimeout)
	}
	cfg.MutationTimeout = f.mutationTimeout
	cfg.BatchTimeout = f.batchTimeout
	cfg.Limits.MaxFrameBytes = f.maxFrame
	cfg.Limits.MaxMutationsPerPush = f.maxPerFrame
	cfg.Limits.MaxArgsBytes = f.maxArgs
	cfg.MaxQueuedPerConn = f.maxQueued
	cfg.MaxConnsPerDoc = f.maxConns
	cfg.RatePerConn = f.rate
	cfg.MaxDocBytes = f.maxDocBytes
	return nil
}

// parseOrigin checks one --allowed-origins entry: "*", or an origin as a
// browser sends it (scheme://host[:port], no path; a trailing slash is
// dropped).
func parseOrigin(o string) (string, error) {
	o = strings.TrimSpace(o)
	if o == "*" {
		return o, nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin: want * or scheme://host[:port], like http://127.0.0.1:4173", o)
	}
	return u.Scheme + "://" + u.Host, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func token(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("jwt-secret", "", "HMAC secret to sign with (or env SQLSYNC_JWT_SECRET)")
	docs := fs.String("doc", "", "comma-separated document IDs to grant; a trailing * grants a prefix (required)")
	role := fs.String("role", "write", "read, write, or admin (write, and the inspector for the documents granted)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *secret == "" {
		*secret = os.Getenv("SQLSYNC_JWT_SECRET")
	}
	if *secret == "" || *docs == "" {
		return usagef("token needs --jwt-secret (or SQLSYNC_JWT_SECRET) and --doc")
	}
	switch server.Role(*role) {
	case server.RoleRead, server.RoleWrite, server.RoleAdmin:
	default:
		return usagef("--role must be read, write or admin, got %q", *role)
	}
	if len(*secret) < 32 {
		return usagef("the secret must be at least 32 bytes")
	}
	tok, err := server.Mint([]byte(*secret), strings.Split(*docs, ","), server.Role(*role), *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
