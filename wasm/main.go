//go:build js

// Command wasm is the Go side of the sqlsync browser client: built with
// GOOS=js GOARCH=wasm, it runs in a dedicated Web Worker started by the npm
// package's worker script, and exposes the Go replica (package client, over
// OPFS, IndexedDB or memory) to that script as globalThis.sqlsyncGo:
//
//	sqlsyncGo.open(configJSON, onEvent, module?) -> Promise<doc>
//	doc.mutate(name, argsBytes)         -> Promise<seq>
//	doc.query(sql, paramsJSON)          -> Promise<rowsJSON>
//	doc.subscribe(sql, paramsJSON, onRows(rowsJSON, error)) -> Promise<id>
//	doc.unsubscribe(id)                 -> Promise<void>
//	doc.status()                        -> Promise<statusJSON>
//	doc.setOnline(on)                   -> Promise<void>
//	doc.presenceSet(key, stateJSON|null) -> Promise<void>
//	doc.lazyStats()                     -> Promise<statsJSON|"null">
//	doc.close()                         -> Promise<void>
//	doc.steps                           {step: ms since open began}
//
// Config and values are described in package bridge; module, a Uint8Array,
// is the document's WebAssembly mutator, which runs on the browser's own
// engine (package jsmutator) instead of the built-in Go todo mutator. Every
// method returns at once and does its work on a goroutine, since a Go
// function called from JavaScript must not block; main never returns.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall/js"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog/idblog"
	"github.com/sqlsync-go/sqlsync/vfs/idbstore"
	"github.com/sqlsync-go/sqlsync/vfs/jsinterop"
	"github.com/sqlsync-go/sqlsync/vfs/opfs"
	"github.com/sqlsync-go/sqlsync/wasm/bridge"
	"github.com/sqlsync-go/sqlsync/wasm/jsmutator"
)

func main() {
	// A document's own WebAssembly module runs on the browser's engine; a
	// document opened with none (its module cannot be had: offline,
	// nothing cached) queues its mutations without running them locally.
	bridge.ModuleRuntime = moduleMutator
	api := js.Global().Get("Object").New()
	api.Set("open", js.FuncOf(open))
	api.Set("storages", js.FuncOf(func(js.Value, []js.Value) any { return js.ValueOf(available()) }))
	js.Global().Set("sqlsyncGo", api)
	if ready := js.Global().Get("__sqlsyncReady"); ready.Type() == js.TypeFunction {
		ready.Invoke(api)
	}
	select {}
}

// openConfig is bridge.Config plus what only the worker needs.
type openConfig struct {
	bridge.Config
	LogLevel string `json:"logLevel"`
}

// moduleMutator compiles a document's mutator module (once per worker for
// each module) and gives the document its own instance of it.
func moduleMutator(ctx context.Context, cfg bridge.Config, logger *slog.Logger) (engine.Mutator, error) {
	// The worker script checked the module's SHA-256 (cfg.MutatorHash) as
	// it fetched it or took it from its cache, with the browser's native
	// digest: no need to hash it again here.
	m, err := jsmutator.CompileHashed(ctx, cfg.Module, cfg.MutatorHash, jsmutator.Limits{})
	if err != nil {
		return nil, err
	}
	return m.Mutator(logger.With("doc", cfg.DocID)), nil
}

// open(configJSON, onEvent, module?) -> Promise<doc>.
func open(this js.Value, args []js.Value) any {
	if len(args) < 2 || args[0].Type() != js.TypeString || args[1].Type() != js.TypeFunction {
		return jsinterop.Promise(func() (any, error) {
			return nil, errors.New("open: want (configJSON string, onEvent function, module? Uint8Array)")
		})
	}
	raw, onEvent := args[0].String(), args[1]
	var module []byte
	if len(args) > 2 && args[2].Type() == js.TypeObject {
		module = make([]byte, args[2].Get("byteLength").Int())
		js.CopyBytesToGo(module, args[2])
	}
	return jsinterop.Promise(func() (any, error) {
		var cfg openConfig
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			return nil, fmt.Errorf("open: bad config: %w", err)
		}
		cfg.Module = module
		var level slog.Level
		if cfg.LogLevel == "" {
			cfg.LogLevel = "warn"
		}
		if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
			return nil, fmt.Errorf("open: bad log level: %w", err)
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		ctx := context.Background()
		// Startup timings: ms since open began at each step, handed to the
		// worker script as doc.steps.
		t0 := time.Now()
		steps := map[string]any{}
		cfg.OnStep = func(step string) { steps[step] = float64(time.Since(t0).Microseconds()) / 1000 }
		cfg.NotifyGate = afterJSTask
		state, err := openState(ctx, &cfg.Config)
		if err != nil {
			return nil, err
		}
		cfg.OnStep("storage")
		d, err := bridge.Open(ctx, cfg.Config, state, logger, func(b []byte) { onEvent.Invoke(string(b)) })
		if err != nil {
			closeState(state)
			return nil, err
		}
		v := docValue(d)
		v.Set("steps", js.ValueOf(steps))
		return v, nil
	})
}

// available lists the storages this context supports, best first.
func available() []any {
	var out []any
	if opfs.Supported() {
		out = append(out, "opfs")
	}
	if idbstore.Supported() {
		out = append(out, "indexeddb")
	}
	return append(out, "memory")
}

// openState opens the storage cfg asks for, resolving "" to the best one.
func openState(ctx context.Context, cfg *bridge.Config) (bridge.State, error) {
	if cfg.Lazy {
		return openLazyState(ctx, cfg)
	}
	if cfg.Storage == "" {
		cfg.Storage = available()[0].(string)
	}
	switch cfg.Storage {
	case "opfs":
		fsys, err := opfs.New(ctx, "sqlsync", opfs.Options{})
		if err != nil {
			return bridge.State{}, fmt.Errorf("open storage: %w", err)
		}
		return bridge.State{FS: fsys, Kind: "opfs"}, nil
	case "indexeddb":
		store, err := idbstore.Open(ctx, "sqlsync/"+cfg.DocID+"/snapshot")
		if err != nil {
			return bridge.State{}, fmt.Errorf("open storage: %w", err)
		}
		log, err := idblog.Open(ctx, "sqlsync/"+cfg.DocID+"/pending")
		if err != nil {
			store.Close()
			return bridge.State{}, fmt.Errorf("open storage: %w", err)
		}
		return bridge.State{Store: store, Log: log, Kind: "indexeddb"}, nil
	case "memory":
		return bridge.State{Kind: "memory"}, nil
	}
	return bridge.State{}, &codeError{"bad_request", fmt.Errorf("open storage: unknown storage %q (want opfs, indexeddb or memory)", cfg.Storage)}
}

// openLazyState opens the storage of a lazy replica, whose snapshot is its
// page cache in memory: OPFS keeps its pending log and identity, IndexedDB
// its pending log (no snapshot store is opened), memory keeps nothing. ""
// resolves to OPFS where the browser has it, else IndexedDB, else memory.
func openLazyState(ctx context.Context, cfg *bridge.Config) (bridge.State, error) {
	if cfg.Storage == "" {
		cfg.Storage = available()[0].(string)
	}
	switch cfg.Storage {
	case "opfs", "memory":
		// Both open no snapshot store of their own: the same as for a
		// whole replica.
		return openState(ctx, &bridge.Config{DocID: cfg.DocID, Storage: cfg.Storage})
	case "indexeddb":
		log, err := idblog.Open(ctx, "sqlsync/"+cfg.DocID+"/pending")
		if err != nil {
			return bridge.State{}, fmt.Errorf("open storage: %w", err)
		}
		return bridge.State{Log: log, Kind: "indexeddb"}, nil
	}
	return bridge.State{}, &codeError{"bad_request", fmt.Errorf("open storage: unknown storage %q (want opfs, indexeddb or memory)", cfg.Storage)}
}

func closeState(s bridge.State) {
	if s.Store != nil {
		s.Store.Close()
	}
	if c, ok := s.Log.(interface{ Close() error }); ok {
		c.Close()
	}
}

type codeError struct {
	code string
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }
func (e *codeError) Code() string  { return e.code }

// docValue returns the JavaScript object for d.
func docValue(d *bridge.Doc) js.Value {
	v := js.Global().Get("Object").New()
	method := func(name string, f func(args []js.Value) js.Value) {
		v.Set(name, js.FuncOf(func(this js.Value, args []js.Value) any { return f(args) }))
	}
	ctx := context.Background()
	method("mutate", func(args []js.Value) js.Value {
		name := argString(args, 0)
		var raw []byte
		if len(args) > 1 && args[1].Type() == js.TypeObject {
			raw = make([]byte, args[1].Get("byteLength").Int())
			js.CopyBytesToGo(raw, args[1])
		}
		return jsinterop.Promise(func() (any, error) {
			seq, err := d.Mutate(ctx, name, raw)
			return float64(seq), err
		})
	})
	method("query", func(args []js.Value) js.Value {
		sql, params := argString(args, 0), argString(args, 1)
		return jsinterop.Promise(func() (any, error) {
			rows, err := d.Query(ctx, sql, []byte(params))
			return string(rows), err
		})
	})
	method("subscribe", func(args []js.Value) js.Value {
		sql, params := argString(args, 0), argString(args, 1)
		var onRows js.Value
		if len(args) > 2 {
			onRows = args[2]
		}
		return jsinterop.Promise(func() (any, error) {
			if onRows.Type() != js.TypeFunction {
				return nil, errors.New("subscribe: want (sql, paramsJSON, onRows function)")
			}
			id, err := d.Subscribe(sql, []byte(params), func(rows []byte, err error) {
				if err != nil {
					onRows.Invoke(js.Null(), jsinterop.NewError(err))
					return
				}
				onRows.Invoke(string(rows), js.Null())
			})
			return id, err
		})
	})
	method("unsubscribe", func(args []js.Value) js.Value {
		id := 0
		if len(args) > 0 && args[0].Type() == js.TypeNumber {
			id = args[0].Int()
		}
		return jsinterop.Promise(func() (any, error) {
			d.Unsubscribe(id)
			return nil, nil
		})
	})
	method("status", func(args []js.Value) js.Value {
		return jsinterop.Promise(func() (any, error) { return string(d.Status()), nil })
	})
	method("setOnline", func(args []js.Value) js.Value {
		on := len(args) > 0 && args[0].Truthy()
		return jsinterop.Promise(func() (any, error) {
			d.SetOnline(on)
			return nil, nil
		})
	})
	method("presenceSet", func(args []js.Value) js.Value {
		key, state := argString(args, 0), argString(args, 1)
		return jsinterop.Promise(func() (any, error) { return nil, d.SetPresence(key, []byte(state)) })
	})
	method("lazyStats", func(args []js.Value) js.Value {
		return jsinterop.Promise(func() (any, error) { return string(d.LazyStats()), nil })
	})
	method("close", func(args []js.Value) js.Value {
		return jsinterop.Promise(func() (any, error) { return nil, d.Close() })
	})
	return v
}

func argString(args []js.Value, i int) string {
	if i < len(args) && args[i].Type() == js.TypeString {
		return args[i].String()
	}
	return ""
}

// afterJSTask returns once JavaScript has run a task posted now, and with
// it every promise reaction queued before: Go wasm hands control back to
// JavaScript only when every goroutine waits, so a goroutine waiting here
// lets the worker post the answer to a doc.mutate (a promise reaction)
// before the subscriptions re-run (client.Options.NotifyGate). A
// MessageChannel task, unlike setTimeout, is never clamped to 4 ms.
func afterJSTask() {
	done := make(chan struct{})
	ch := js.Global().Get("MessageChannel").New()
	var f js.Func
	f = js.FuncOf(func(js.Value, []js.Value) any {
		f.Release()
		ch.Get("port1").Call("close")
		close(done)
		return nil
	})
	ch.Get("port1").Set("onmessage", f)
	ch.Get("port2").Call("postMessage", nil)
	<-done
}
