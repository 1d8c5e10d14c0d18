//go:build js

// Package idblog is a client's pending log and client ID in the browser's
// IndexedDB, for replicas whose snapshot lives in IndexedDB too. Append is
// one IndexedDB transaction with strict durability, complete before it
// returns.
//
// A log's database holds two object stores: "meta", whose key "clientId"
// holds the client ID and key "secret" the client's identity secret (see
// client.SecretKeeper), and "mutations", keyed by seq, each value an object
// {name: string, args: Uint8Array}.
package idblog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"syscall/js"

	"github.com/hack-pad/go-indexeddb/idb"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
)

const (
	metaStore      = "meta"
	mutationsStore = "mutations"
	clientIDKey    = "clientId"
	secretKey      = "secret"
)

// Log is a pending log in one IndexedDB database, open until Close.
type Log struct {
	*pendinglog.Mirror
	j *journal
}

var _ engine.PendingLog = (*Log)(nil)

// journal is the IndexedDB journal of a Log.
type journal struct {
	db      *idb.Database
	secret  string
	openCtx context.Context // Open's, for Load
}

var _ pendinglog.Journal = (*journal)(nil)

var bg = context.Background()

// Open opens (creating if needed) the log in IndexedDB database name. A new
// log gets a fresh random client ID and secret; a log made before secrets
// were kept gets a secret.
func Open(ctx context.Context, name string) (*Log, error) {
	req, err := idb.Global().Open(ctx, name, 1, func(db *idb.Database, oldVersion, newVersion uint) error {
		if _, err := db.CreateObjectStore(metaStore, idb.ObjectStoreOptions{}); err != nil {
			return err
		}
		_, err := db.CreateObjectStore(mutationsStore, idb.ObjectStoreOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("idblog: open %s: %w", name, err)
	}
	db, err := req.Await(ctx)
	if err != nil {
		return nil, fmt.Errorf("idblog: open %s: %w", name, err)
	}
	j := &journal{db: db, openCtx: ctx}
	m, err := pendinglog.NewMirror(j)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("idblog: open %s: %w", name, err)
	}
	return &Log{Mirror: m, j: j}, nil
}

// Load reads the client ID, its secret and the mutations, storing a new ID
// or secret where there is none.
func (j *journal) Load() (string, []engine.Mutation, error) {
	// Both requests go out before anything is awaited: a transaction
	// commits on its own once no request is pending.
	tx, err := j.db.Transaction(idb.TransactionReadOnly, metaStore, mutationsStore)
	if err != nil {
		return "", nil, fmt.Errorf("read: %w", err)
	}
	meta, _ := tx.ObjectStore(metaStore)
	muts, _ := tx.ObjectStore(mutationsStore)
	idReq, err := meta.Get(js.ValueOf(clientIDKey))
	if err != nil {
		return "", nil, fmt.Errorf("read client ID: %w", err)
	}
	secretReq, err := meta.Get(js.ValueOf(secretKey))
	if err != nil {
		return "", nil, fmt.Errorf("read client secret: %w", err)
	}
	cur, err := muts.OpenCursor(idb.CursorNext)
	if err != nil {
		return "", nil, fmt.Errorf("read mutations: %w", err)
	}
	var log []engine.Mutation
	err = cur.Iter(j.openCtx, func(c *idb.CursorWithValue) error {
		key, err := c.Key()
		if err != nil {
			return err
		}
		v, err := c.Value()
		if err != nil {
			return err
		}
		args := v.Get("args")
		m := engine.Mutation{Seq: uint64(key.Float()), Name: v.Get("name").String(), Args: make([]byte, args.Get("byteLength").Int())}
		js.CopyBytesToGo(m.Args, args)
		log = append(log, m)
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("read mutations: %w", err)
	}
	idv, err := idReq.Result()
	if err != nil {
		return "", nil, fmt.Errorf("read client ID: %w", err)
	}
	secret, err := secretReq.Result()
	if err != nil {
		return "", nil, fmt.Errorf("read client secret: %w", err)
	}
	var id string
	put := map[string]string{}
	if idv.Type() == js.TypeString {
		id = idv.String()
	} else {
		if len(log) > 0 {
			return "", nil, fmt.Errorf("%w: mutations without a client ID", pendinglog.ErrCorrupt)
		}
		id = pendinglog.NewClientID()
		put[clientIDKey] = id
	}
	if secret.Type() == js.TypeString && secret.String() != "" && put[clientIDKey] == "" {
		j.secret = secret.String()
	} else {
		// A new ID, or one from before secrets were kept: the
		// coordinator binds it to this secret on the next Hello.
		j.secret = newSecret()
		put[secretKey] = j.secret
	}
	if len(put) > 0 {
		// One transaction: a new ID is never stored without its secret.
		err := j.writeStore(metaStore, func(meta *idb.ObjectStore) error {
			for k, v := range put {
				if _, err := meta.PutKey(js.ValueOf(k), js.ValueOf(v)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return "", nil, fmt.Errorf("write client identity: %w", err)
		}
	}
	return id, log, nil
}

// ClientSecret returns the secret that proves the client owns its ID to the
// coordinator (client.SecretKeeper).
func (l *Log) ClientSecret() (string, error) { return l.j.secret, nil }

// newSecret returns a fresh random secret: 128 bits, in hex.
func newSecret() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeStore runs f on object store name in one read-write transaction
// with strict durability and waits for it to complete.
func (j *journal) writeStore(name string, f func(*idb.ObjectStore) error) error {
	tx, err := j.db.TransactionWithOptions(idb.TransactionOptions{Mode: idb.TransactionReadWrite, Durability: idb.DurabilityStrict}, name)
	if err != nil {
		return err
	}
	store, _ := tx.ObjectStore(name)
	if err := f(store); err != nil {
		tx.Abort()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return tx.Await(bg)
}

// Append puts m in one transaction.
func (j *journal) Append(m engine.Mutation) error {
	err := j.writeStore(mutationsStore, func(muts *idb.ObjectStore) error {
		v := js.Global().Get("Object").New()
		v.Set("name", m.Name)
		args := js.Global().Get("Uint8Array").New(len(m.Args))
		js.CopyBytesToJS(args, m.Args)
		v.Set("args", args)
		_, err := muts.PutKey(js.ValueOf(float64(m.Seq)), v)
		return err
	})
	if err != nil {
		return fmt.Errorf("indexeddb put: %w", err)
	}
	return nil
}

// DeleteThrough deletes the mutations keyed at or below through in one
// transaction.
func (j *journal) DeleteThrough(through uint64, _, _ []engine.Mutation) error {
	err := j.writeStore(mutationsStore, func(muts *idb.ObjectStore) error {
		_, err := muts.Delete(js.Global().Get("IDBKeyRange").Call("upperBound", float64(through)))
		return err
	})
	if err != nil {
		return fmt.Errorf("indexeddb delete: %w", err)
	}
	return nil
}

// Close closes the database connection.
func (j *journal) Close() error { return j.db.Close() }

// Delete removes IndexedDB database name, which no connection may hold.
func Delete(ctx context.Context, name string) error {
	req, err := idb.Global().DeleteDatabase(name)
	if err != nil {
		return fmt.Errorf("idblog: delete %s: %w", name, err)
	}
	if err := req.Await(ctx); err != nil {
		return fmt.Errorf("idblog: delete %s: %w", name, err)
	}
	return nil
}
