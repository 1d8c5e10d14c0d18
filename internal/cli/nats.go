package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore"
)

// natsFlags choose the documents' journal: the local disk, or a NATS
// JetStream stream.
type natsFlags struct {
	url      string
	stream   string
	replicas int
}

func (f *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "nats", "", "keep the documents' pages in NATS JetStream at this URL (nats://host:port) instead of the data directory")
	fs.StringVar(&f.stream, "nats-stream", "SQLSYNC", "with --nats: the JetStream stream holding the documents' commits")
	fs.IntVar(&f.replicas, "nats-replicas", 1, "with --nats: copies of the stream the JetStream cluster keeps (1, 3 or 5)")
}

// apply connects to NATS and sets cfg.Journal when --nats is given; close
// ends the connection.
func (f *natsFlags) apply(ctx context.Context, cfg *server.Config, log *slog.Logger) (close func(), err error) {
	if f.url == "" {
		return func() {}, nil
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
	cfg.Journal = server.JetStreamJournal(js, st)
	log.Info("documents journaled in NATS JetStream", "url", nc.ConnectedUrlRedacted(), "stream", f.stream, "replicas", f.replicas)
	return nc.Close, nil
}
