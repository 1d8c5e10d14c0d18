package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sqlsync-go/sqlsync/internal/natsembed"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore"
)

// natsFlags choose the documents' journal: the local disk, or a NATS
// JetStream stream.
type natsFlags struct {
	url       string
	embed     string // a directory: run an embedded JetStream node keeping its data there
	listen    string // the embedded node's client address
	cluster   string // the embedded node's cluster name, to join a cluster
	routeAddr string // the embedded node's cluster address
	routes    string // the other nodes' cluster addresses
	stream    string
	replicas  int
	leaseTTL  time.Duration
	advertise string
}

func (f *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "nats", "", "keep the documents' pages in NATS JetStream at this URL (nats://host:port) instead of the data directory")
	fs.StringVar(&f.embed, "nats-embed", "", "run an embedded NATS JetStream node keeping its data in this directory, and keep the documents' pages there (as --nats)")
	fs.StringVar(&f.listen, "nats-listen", "", "with --nats-embed: also accept NATS clients at this address (host:port)")
	fs.StringVar(&f.cluster, "cluster-name", "", "with --nats-embed: join the embedded node to the NATS cluster of this name")
	fs.StringVar(&f.routeAddr, "cluster-listen", "", "with --cluster-name: the embedded node's cluster address (host:port), also its name")
	fs.StringVar(&f.routes, "routes", "", "with --cluster-name: the other nodes' cluster addresses (nats://host:port,...)")
	fs.StringVar(&f.stream, "nats-stream", "SQLSYNC", "with --nats: the JetStream stream holding the documents' commits")
	fs.IntVar(&f.replicas, "nats-replicas", 1, "with --nats: copies of the stream the JetStream cluster keeps (1, 3 or 5)")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", 3*time.Second, "with --nats: how long a coordinator owns a document without renewing its lease (a dead owner's documents move after this long)")
	fs.StringVar(&f.advertise, "advertise", "", "with --nats: this coordinator's address as the others reach it, to forward clients of the documents it owns (default http://ADDR)")
}

// apply connects to NATS and sets cfg.Journal when --nats is given; close
// ends the connection.
func (f *natsFlags) apply(ctx context.Context, cfg *server.Config, log *slog.Logger) (close func(), err error) {
	if f.url == "" && f.embed == "" {
		return func() {}, nil
	}
	if f.url != "" && f.embed != "" {
		return nil, usagef("--nats and --nats-embed exclude each other")
	}
	if f.leaseTTL < 100*time.Millisecond {
		return nil, usagef("--lease-ttl must be at least 100ms, got %v", f.leaseTTL)
	}
	if f.replicas < 1 {
		return nil, usagef("--nats-replicas must be at least 1, got %d", f.replicas)
	}
	connectOpts := []nats.Option{nats.Name("sqlsync"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) })}
	stopEmbedded := func() {}
	if f.embed != "" {
		ns, err := f.startEmbedded(log)
		if err != nil {
			return nil, err
		}
		stopEmbedded = func() { ns.Shutdown(); ns.WaitForShutdown() }
		connectOpts = append(connectOpts, nats.InProcessServer(ns))
	}
	nc, err := nats.Connect(f.url, connectOpts...)
	if err != nil {
		stopEmbedded()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	closeAll := func() { nc.Close(); stopEmbedded() }
	js, err := jetstream.New(nc)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	// A cluster forming elects its JetStream leaders first: retry a while.
	var st jetstream.Stream
	var kv jetstream.KeyValue
	deadline := time.Now().Add(time.Minute)
	for {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err = jetstore.EnsureStream(sctx, js, f.stream, f.replicas)
		if err == nil {
			kv, err = server.EnsureLeases(sctx, js, f.leaseTTL, f.replicas)
		}
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		log.Info("waiting for JetStream", "err", err)
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	cfg.Journal = server.JetStreamJournal(js, st)
	cfg.Cluster = &server.Cluster{KV: kv, TTL: f.leaseTTL}
	log.Info("documents journaled in NATS JetStream", "url", nc.ConnectedUrlRedacted(), "stream", f.stream, "replicas", f.replicas, "lease_ttl", f.leaseTTL)
	return closeAll, nil
}

// startEmbedded starts the embedded JetStream node (package natsembed).
func (f *natsFlags) startEmbedded(log *slog.Logger) (*natsserver.Server, error) {
	if f.cluster != "" && (f.routeAddr == "" || f.listen == "") {
		return nil, usagef("--cluster-name needs --cluster-listen and --nats-listen")
	}
	ns, err := natsembed.Start(natsembed.Options{Dir: f.embed, Listen: f.listen,
		Cluster: f.cluster, ClusterListen: f.routeAddr, Routes: f.routes, Logger: log.With("component", "nats")})
	if err != nil {
		return nil, err
	}
	log.Info("embedded NATS JetStream node started", "store", f.embed, "listen", f.listen, "cluster", f.cluster)
	return ns, nil
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
