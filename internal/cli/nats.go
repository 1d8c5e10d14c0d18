package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore"
)

// natsFlags choose the documents' journal: the local disk, or a NATS
// JetStream stream.
type natsFlags struct {
	url       string
	stream    string
	replicas  int
	leaseTTL  time.Duration
	advertise string
}

func (f *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "nats", "", "keep the documents' pages in NATS JetStream at this URL (nats://host:port) instead of the data directory")
	fs.StringVar(&f.stream, "nats-stream", "SQLSYNC", "with --nats: the JetStream stream holding the documents' commits")
	fs.IntVar(&f.replicas, "nats-replicas", 1, "with --nats: copies of the stream the JetStream cluster keeps (1, 3 or 5)")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", 3*time.Second, "with --nats: how long a coordinator owns a document without renewing its lease (a dead owner's documents move after this long)")
	fs.StringVar(&f.advertise, "advertise", "", "with --nats: this coordinator's address as the others reach it, to forward clients of the documents it owns (default http://ADDR)")
}

// apply connects to NATS and sets cfg.Journal when --nats is given; close
// ends the connection.
func (f *natsFlags) apply(ctx context.Context, cfg *server.Config, log *slog.Logger) (close func(), err error) {
	if f.url == "" {
		return func() {}, nil
	}
	if f.leaseTTL < 100*time.Millisecond {
		return nil, usagef("--lease-ttl must be at least 100ms, got %v", f.leaseTTL)
	}
	if f.replicas < 1 {
		return nil, usagef("--nats-replicas must be at least 1, got %d", f.replicas)
	}
	nc, err := nats.Connect(f.url, nats.Name("sqlsync"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", f.url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect to NATS at %s: %w", f.url, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := jetstore.EnsureStream(sctx, js, f.stream, f.replicas)
	if err != nil {
		nc.Close()
		return nil, err
	}
	kv, err := server.EnsureLeases(sctx, js, f.leaseTTL, f.replicas)
	if err != nil {
		nc.Close()
		return nil, err
	}
	cfg.Journal = server.JetStreamJournal(js, st)
	cfg.Cluster = &server.Cluster{KV: kv, TTL: f.leaseTTL}
	log.Info("documents journaled in NATS JetStream", "url", nc.ConnectedUrlRedacted(), "stream", f.stream, "replicas", f.replicas, "lease_ttl", f.leaseTTL)
	return nc.Close, nil
}

// advertised returns the URL other coordinators reach this one at, given
// the address it listens on.
func (f *natsFlags) advertised(listen net.Addr) (string, error) {
	if f.advertise != "" {
		return strings.TrimSuffix(f.advertise, "/"), nil
	}
	host, _, err := net.SplitHostPort(listen.String())
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return "", usagef("with --nats, a coordinator listening on %s needs --advertise: the address the other coordinators reach it at", listen)
	}
	return "http://" + listen.String(), nil
}
