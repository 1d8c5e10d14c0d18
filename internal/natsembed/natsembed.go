// Package natsembed runs a NATS JetStream node inside the process: the
// coordinator's --nats-embed mode, the tests and the benchmarks share its
// settings (every ack fsynced, signals left to the program).
package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options say where the node keeps its data and how others reach it.
type Options struct {
	// Dir holds the node's JetStream data (required).
	Dir string
	// Listen, if set, accepts NATS clients at host:port (":0" style ports
	// pick a free one); else only this process connects (InProcess).
	Listen string
	// Cluster, ClusterListen and Routes join the node to a NATS cluster:
	// its name, this node's cluster address (host:port, also its name),
	// and every node's cluster URLs (nats://host:port,...). A clustered
	// node needs Listen: nats-server does not cluster a node that does
	// not listen.
	Cluster, ClusterListen, Routes string
	// Logger receives the node's notices (debug), warnings and errors;
	// nil: none.
	Logger *slog.Logger
}

// Start starts the node and waits until it takes connections.
func Start(o Options) (*server.Server, error) {
	if o.Dir == "" {
		return nil, errors.New("embedded NATS: no data directory")
	}
	opts := &server.Options{JetStream: true, StoreDir: o.Dir, SyncAlways: true, NoSigs: true, NoLog: o.Logger == nil, DontListen: o.Listen == ""}
	if o.Listen != "" {
		host, port, err := hostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: listen address: %w", err)
		}
		opts.Host, opts.Port = host, port
	}
	if o.Cluster != "" {
		if o.ClusterListen == "" || o.Listen == "" {
			return nil, errors.New("embedded NATS: a cluster needs a cluster address and a client listener")
		}
		host, port, err := hostPort(o.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: cluster address: %w", err)
		}
		opts.ServerName = "sqlsync-" + o.ClusterListen
		opts.Cluster = server.ClusterOpts{Name: o.Cluster, Host: host, Port: port}
		opts.Routes = server.RoutesFromStr(o.Routes)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if o.Logger != nil {
		ns.SetLoggerV2(logger{o.Logger}, false, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS: not ready after 30 s")
	}
	return ns, nil
}

// Connect connects to ns in-process and returns the connection and its
// JetStream context.
func Connect(ns *server.Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect("", append(opts, nats.InProcessServer(ns))...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the embedded NATS node: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("connect to the embedded NATS node: %w", err)
	}
	return nc, js, nil
}

func hostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}

// logger sends the node's notices, warnings and errors to slog.
type logger struct{ log *slog.Logger }

func (l logger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l logger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l logger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l logger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l logger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l logger) Tracef(format string, v ...any)  {}
