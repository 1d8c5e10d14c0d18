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
	"slices"
	"sync"
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

// Log is a pending log in one IndexedDB database.
type Log struct {
	db     *idb.Database
	id     string
	secret string

	mu  sync.Mutex
	log []engine.Mutation
}

var _ engine.PendingLog = (*Log)(nil)

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
	l := &Log{db: db}
	if err := l.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("idblog: open %s: %w", name, err)
	}
	return l, nil
}

func (l *Log) load(ctx context.Context) error {
	// Both requests go out before anything is awaited: a transaction
	// commits on its own once no request is pending.
	tx, err := l.db.Transaction(idb.TransactionReadOnly, metaStore, mutationsStore)
	if err != nil {
		return err
	}
	meta, _ := tx.ObjectStore(metaStore)
	muts, _ := tx.ObjectStore(mutationsStore)
	idReq, err := meta.Get(js.ValueOf(clientIDKey))
	if err != nil {
		return err
	}
	secretReq, err := meta.Get(js.ValueOf(secretKey))
	if err != nil {
		return err
	}
	cur, err := muts.OpenCursor(idb.CursorNext)
	if err != nil {
		return err
	}
	var log []engine.Mutation
	err = cur.Iter(ctx, func(c *idb.CursorWithValue) error {
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
		return fmt.Errorf("read mutations: %w", err)
	}
	id, err := idReq.Result()
	if err != nil {
		return fmt.Errorf("read client ID: %w", err)
	}
	secret, err := secretReq.Result()
	if err != nil {
		return fmt.Errorf("read client secret: %w", err)
	}
	put := map[string]string{}
	if id.Type() == js.TypeString {
		l.id = id.String()
	} else {
		if len(log) > 0 {
			return fmt.Errorf("%w: mutations without a client ID", pendinglog.ErrCorrupt)
		}
		l.id = pendinglog.NewClientID()
		put[clientIDKey] = l.id
	}
	if secret.Type() == js.TypeString && secret.String() != "" && put[clientIDKey] == "" {
		l.secret = secret.String()
	} else {
		// A new ID, or one from before secrets were kept: the
		// coordinator binds it to this secret on the next Hello.
		l.secret = newSecret()
		put[secretKey] = l.secret
	}
	if len(put) > 0 {
		// One transaction: a new ID is never stored without its secret.
		err := l.writeStore(metaStore, func(meta *idb.ObjectStore) error {
			for k, v := range put {
				if _, err := meta.PutKey(js.ValueOf(k), js.ValueOf(v)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("write client identity: %w", err)
		}
	}
	for i := range log {
		log[i].ClientID = l.id
	}
	l.log = log
	return nil
}

// ClientID returns the client's ID.
func (l *Log) ClientID() string { return l.id }

// ClientSecret returns the secret that proves the client owns its ID to the
// coordinator (client.SecretKeeper).
func (l *Log) ClientSecret() (string, error) { return l.secret, nil }

// newSecret returns a fresh random secret: 128 bits, in hex.
func newSecret() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Load returns the recorded mutations.
func (l *Log) Load() ([]engine.Mutation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log), nil
}

// write runs f in one read-write transaction with strict durability and
// waits for it to complete.
func (l *Log) write(f func(muts *idb.ObjectStore) error) error {
	return l.writeStore(mutationsStore, f)
}

// writeStore is write on object store name.
func (l *Log) writeStore(name string, f func(*idb.ObjectStore) error) error {
	tx, err := l.db.TransactionWithOptions(idb.TransactionOptions{Mode: idb.TransactionReadWrite, Durability: idb.DurabilityStrict}, name)
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

// Append records m durably.
func (l *Log) Append(m engine.Mutation) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.write(func(muts *idb.ObjectStore) error {
		v := js.Global().Get("Object").New()
		v.Set("name", m.Name)
		args := js.Global().Get("Uint8Array").New(len(m.Args))
		js.CopyBytesToJS(args, m.Args)
		v.Set("args", args)
		_, err := muts.PutKey(js.ValueOf(float64(m.Seq)), v)
		return err
	})
	if err != nil {
		return fmt.Errorf("idblog: append %d: %w", m.Seq, err)
	}
	l.log = append(l.log, m)
	return nil
}

// Trim forgets the mutations with seq at or below through.
func (l *Log) Trim(through uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.log) && l.log[i].Seq <= through {
		i++
	}
	if i == 0 {
		return nil
	}
	err := l.write(func(muts *idb.ObjectStore) error {
		_, err := muts.Delete(js.Global().Get("IDBKeyRange").Call("upperBound", float64(through)))
		return err
	})
	if err != nil {
		return fmt.Errorf("idblog: trim through %d: %w", through, err)
	}
	l.log = slices.Clone(l.log[i:])
	return nil
}

// Close closes the database connection.
func (l *Log) Close() error {
	return l.db.Close()
}

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
