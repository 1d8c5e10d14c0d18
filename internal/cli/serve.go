package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	data := fs.String("data", "data", "data directory for the documents")
	idle := fs.Duration("idle", time.Minute, "close a document this long after its last client leaves")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	static := fs.String("static", "", "directory of static files to serve at / (the web app); default "+demoDir+" if it exists, \"\" for none")
	mutator := fs.String("mutator", "", "the app's WebAssembly mutator module (.wasm), run for every document (required)")
	var sec securityFlags
	sec.register(fs)
	var nf natsFlags
	nf.register(fs)
	var pf presenceFlags
	pf.register(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 0 {
		return usagef("serve takes no arguments, got %q", fs.Args())
	}
	if *mutator == "" {
		return usagef("serve needs --mutator FILE: the WebAssembly module with the app's mutations (make run passes the todo demo's, %s)", demoMutator)
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	cfg := server.Config{DataDir: *data, IdleTimeout: *idle, Logger: log}
	pf.apply(&cfg)
	if err := sec.apply(&cfg, *addr); err != nil {
		return err
	}
	closeNATS, err := nf.apply(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer closeNATS()
	// The compiled mutator is kept in the data directory, so a restart
	// does not compile it again.
	if err := wasmhost.SetCacheDir(filepath.Join(*data, "wazero")); err != nil {
		log.Debug("compilation cache unusable: compiling in memory", "err", err)
	}
	module, bytes, err := loadModule(ctx, *mutator, wasmhost.Limits{Timeout: cfg.MutationTimeout})
	if err != nil {
		return err
	}
	defer module.Close(context.Background())
	cfg.Mutator = moduleMutators(module, bytes, log)
	log.Info("mutator loaded", "file", *mutator, "hash", module.Hash())
	if !flagSet(fs, "static") {
		if info, err := os.Stat(demoDir); err == nil && info.IsDir() {
			*static = demoDir
			log.Info("serving the todo demo (no --static given)", "dir", demoDir)
		}
	}
	if *static != "" {
		cfg.Static = server.StaticDir(*static)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.Cluster != nil {
		if cfg.Cluster.URL, err = nf.advertised(ln.Addr()); err != nil {
			ln.Close()
			return err
		}
	}
	srv, err := server.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("serving", "url", "http://"+ln.Addr().String(), "data", *data)
	select {
	case err := <-errc:
		srv.Close(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Close the documents first: it tells every client why, which
	// http.Server.Shutdown would not do for hijacked WebSockets.
	errClose := srv.Close(shutdownCtx)
	errShutdown := hs.Shutdown(shutdownCtx)
	if err := errors.Join(errClose, errShutdown); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	log.Info("stopped")
	return nil
}

// demoDir is the built todo demo, relative to the repository root: served
// at / when serve is run from there without --static.
const demoDir = "demo-todo/dist"

// demoMutator is where make builds the todo demo's mutator module.
const demoMutator = "bin/mutators/todo.wasm"

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
