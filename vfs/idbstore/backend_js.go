//go:build js

package idbstore

import (
	"context"
	"errors"
	"fmt"
	"syscall/js"

	"github.com/hack-pad/go-indexeddb/idb"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// Object stores of a store's database.
const (
	metaStore  = "meta"  // "state" -> {lsn, count}
	pagesStore = "pages" // page number -> Uint8Array(PageSize)
	lsnsStore  = "lsns"  // page number -> LSN
	stateKey   = "state"
)

// Supported reports whether this JavaScript context has IndexedDB.
func Supported() bool {
	v := js.Global().Get("indexedDB")
	return !v.IsUndefined() && !v.IsNull()
}

// Open opens (creating if needed) the store in IndexedDB database name.
func Open(ctx context.Context, name string) (*Store, error) {
	b, err := openBackend(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("idbstore: open %s: %w", name, err)
	}
	s, err := New(b, 0)
	if err != nil {
		b.Close()
		return nil, err
	}
	return s, nil
}

// Delete removes IndexedDB database name, which no connection may hold.
func Delete(ctx context.Context, name string) error {
	req, err := idb.Global().DeleteDatabase(name)
	if err != nil {
		return fmt.Errorf("idbstore: delete %s: %w", name, err)
	}
	if err := req.Await(ctx); err != nil {
		return fmt.Errorf("idbstore: delete %s: %w", name, err)
	}
	return nil
}

// jsBackend is a Backend on one IndexedDB database.
type jsBackend struct {
	db *idb.Database
}

func openBackend(ctx context.Context, name string) (*jsBackend, error) {
	if !Supported() {
		return nil, errors.New("IndexedDB is not available here")
	}
	req, err := idb.Global().Open(ctx, name, 1, func(db *idb.Database, oldVersion, newVersion uint) error {
		for _, s := range []string{metaStore, pagesStore, lsnsStore} {
			if _, err := db.CreateObjectStore(s, idb.ObjectStoreOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	db, err := req.Await(ctx)
	if err != nil {
		return nil, err
	}
	return &jsBackend{db: db}, nil
}

var bg = context.Background()

func (b *jsBackend) Load() (uint64, uint32, error) {
	tx, err := b.db.Transaction(idb.TransactionReadOnly, metaStore)
	if err != nil {
		return 0, 0, err
	}
	meta, _ := tx.ObjectStore(metaStore)
	req, err := meta.Get(js.ValueOf(stateKey))
	if err != nil {
		return 0, 0, err
	}
	state, err := req.Await(bg)
	if err != nil || !state.Truthy() {
		return 0, 0, err
	}
	return uint64(state.Get("lsn").Float()), uint32(state.Get("count").Int()), nil
}

func (b *jsBackend) LoadChunks(n uint32) ([][]byte, error) {
	tx, err := b.db.Transaction(idb.TransactionReadOnly, lsnsStore)
	if err != nil {
		return nil, err
	}
	lsns, _ := tx.ObjectStore(lsnsStore)
	reqs := make([]*idb.Request, n)
	for k := range n {
		if reqs[k], err = lsns.Get(js.ValueOf(k)); err != nil {
			return nil, err
		}
	}
	if err := tx.Await(bg); err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	for k, req := range reqs {
		v, err := req.Result()
		if err != nil {
			return nil, err
		}
		if v.IsUndefined() || v.IsNull() {
			return nil, fmt.Errorf("%w: LSN chunk %d missing", vfs.ErrCorrupt, k)
		}
		out[k] = make([]byte, v.Get("byteLength").Int())
		js.CopyBytesToGo(out[k], v)
	}
	return out, nil
}

func (b *jsBackend) ReadPage(no uint32, buf []byte) (bool, error) {
	tx, err := b.db.Transaction(idb.TransactionReadOnly, pagesStore)
	if err != nil {
		return false, err
	}
	pages, _ := tx.ObjectStore(pagesStore)
	req, err := pages.Get(js.ValueOf(no))
	if err != nil {
		return false, err
	}
	v, err := req.Await(bg)
	if err != nil {
		return false, err
	}
	if v.IsUndefined() || v.IsNull() {
		return false, nil
	}
	if n := v.Get("byteLength").Int(); n != vfs.PageSize {
		return false, fmt.Errorf("%w: page %d holds %d bytes", vfs.ErrCorrupt, no, n)
	}
	js.CopyBytesToGo(buf, v)
	return true, nil
}

func bytesValue(b []byte) js.Value {
	v := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(v, b)
	return v
}

func (b *jsBackend) Commit(w Write) error {
	// One transaction, strict durability: all of it is on disk when it
	// completes, or none of it is.
	tx, err := b.db.TransactionWithOptions(idb.TransactionOptions{Mode: idb.TransactionReadWrite, Durability: idb.DurabilityStrict}, metaStore, pagesStore, lsnsStore)
	if err != nil {
		return err
	}
	meta, _ := tx.ObjectStore(metaStore)
	pages, _ := tx.ObjectStore(pagesStore)
	lsns, _ := tx.ObjectStore(lsnsStore)
	keyRange := js.Global().Get("IDBKeyRange")
	var reqErr error
	check := func(_ any, err error) {
		if reqErr == nil {
			reqErr = err
		}
	}
	if w.Truncate {
		check(pages.Delete(keyRange.Call("lowerBound", w.PageCount, true)))
		last := -1
		if w.PageCount > 0 {
			last = int(chunkOf(w.PageCount))
		}
		check(lsns.Delete(keyRange.Call("lowerBound", last, true)))
	}
	for _, no := range w.Zeroed {
		check(pages.Delete(js.ValueOf(no)))
	}
	for _, p := range w.Pages {
		check(pages.PutKey(js.ValueOf(p.No), bytesValue(p.Data)))
	}
	for k, c := range w.Chunks {
		check(lsns.PutKey(js.ValueOf(k), bytesValue(c)))
	}
	state := js.Global().Get("Object").New()
	state.Set("lsn", float64(w.LSN))
	state.Set("count", w.PageCount)
	check(meta.PutKey(js.ValueOf(stateKey), state))
	if reqErr != nil {
		return abort(tx, reqErr)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return tx.Await(bg)
}

func abort(tx *idb.Transaction, err error) error {
	tx.Abort()
	return err
}

func (b *jsBackend) Close() error {
	return b.db.Close()
}
