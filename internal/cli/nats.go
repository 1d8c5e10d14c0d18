package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// startEmbedded starts the embedded JetStream node: every ack fsynced, a
// client listener only with --nats-listen, clustered with --cluster-name.
// A clustered node needs real listeners (nats-server does not cluster a
// node that does not listen).
func (f *natsFlags) startEmbedded(log *slog.Logger) (*natsserver.Server, error) {
	opts := &natsserver.Options{
		JetStream:  true,
		StoreDir:   f.embed,
		SyncAlways: true,
		NoSigs:     true,
		DontListen: f.listen == "",
	}
	if f.listen != "" {
		host, port, err := splitHostPort(f.listen)
		if err != nil {
			return nil, usagef("--nats-listen: %v", err)
		}
		opts.Host, opts.Port = host, port
	}
	if f.cluster != "" {
		if f.routeAddr == "" || f.listen == "" {
			return nil, usagef("--cluster-name needs --cluster-listen and --nats-listen")
		}
		host, port, err := splitHostPort(f.routeAddr)
		if err != nil {
			return nil, usagef("--cluster-listen: %v", err)
		}
		opts.ServerName = "sqlsync-" + f.routeAddr
		opts.Cluster = natsserver.ClusterOpts{Name: f.cluster, Host: host, Port: port}
		opts.Routes = natsserver.RoutesFromStr(f.routes)
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log.With("component", "nats")}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS: not ready after 30 s")
	}
	log.Info("embedded NATS JetStream node started", "store", f.embed, "listen", f.listen, "cluster", f.cluster)
	return ns, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}

// natsLogger sends the embedded node's notices and warnings to slog.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any)  {}

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
