package server

import (
	"cmp"
	"slices"
	"sync"

	"github.com/sqlsync-go/sqlsync/shared/protocol"
)

// Bounds of the rejections a coordinator keeps for clients that were not
// connected, or lost the connection, when their mutation was rejected.
const (
	// maxKeptPerClient is the most rejections kept for one client of one
	// document; older ones are dropped first.
	maxKeptPerClient = 64
	// maxKeptRejections is the most kept for all documents and clients of
	// a server; the oldest are dropped first.
	maxKeptRejections = 1 << 16
)

// rejectionKey names one client of one document.
type rejectionKey struct{ doc, client string }

// keptRejection is a rejection and the LSN of the commit that recorded the
// rejected mutation as done (in the document's clients table): a replica
// whose snapshot is older has not seen it yet.
type keptRejection struct {
	lsn uint64
	r   protocol.Rejected
}

// rejections keeps the recent rejections of every client of the open
// documents in memory, outside the replicated documents, so that a client
// that missed the Rejected frame (it was offline, or its connection dropped
// before the frame went out) learns of it when it reconnects:
// [rejections.since] gives those its Hello's LSN has not seen. Each
// document's are durable in its rejections file (see rejectionLog): loaded
// when it opens, forgotten here when it closes.
type rejections struct {
	mu    sync.Mutex
	byKey map[rejectionKey][]keptRejection
	order []rejectionKey // one entry per kept rejection, oldest first, for the global bound
	count int            // rejections kept: len(order) may hold stale keys
}

// add keeps r, rejected for client of doc by the commit at lsn.
func (k *rejections) add(doc, client string, lsn uint64, r protocol.Rejected) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.byKey == nil {
		k.byKey = map[rejectionKey][]keptRejection{}
	}
	key := rejectionKey{doc, client}
	list := append(k.byKey[key], keptRejection{lsn: lsn, r: r})
	k.count++
	if len(list) > maxKeptPerClient {
		list = list[1:]
		k.count--
	}
	k.byKey[key] = list
	k.order = append(k.order, key)
	// Over the global bound, drop the oldest entry of the key that comes
	// first in order: about the oldest of all (a key's stale occurrences
	// stand for entries already gone, and are skipped or stand in for its
	// oldest kept one).
	for k.count > maxKeptRejections && len(k.order) > 0 {
		old := k.order[0]
		k.order = k.order[1:]
		if l := k.byKey[old]; len(l) > 0 {
			k.drop(old, l[1:])
			k.count--
		}
	}
	if len(k.order) > 2*maxKeptRejections {
		k.compact()
	}
}

// since returns, oldest first, the rejections of client of doc recorded by
// commits after lsn: those a replica at lsn has not been told of. Those at
// or below lsn are forgotten: a replica at lsn received them before the
// diff that took it there (rejections go before the diff).
func (k *rejections) since(doc, client string, lsn uint64) []protocol.Rejected {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := rejectionKey{doc, client}
	list := k.byKey[key]
	i := 0
	for i < len(list) && list[i].lsn <= lsn {
		i++
	}
	if i > 0 {
		k.count -= i
		k.drop(key, list[i:])
	}
	var out []protocol.Rejected
	for _, e := range list[i:] {
		out = append(out, e.r)
	}
	return out
}

// drop replaces key's list with rest, forgetting key when it is empty.
func (k *rejections) drop(key rejectionKey, rest []keptRejection) {
	if len(rest) == 0 {
		delete(k.byKey, key)
	} else {
		k.byKey[key] = rest
	}
}

// compact rebuilds order from what is kept: entries dropped by the
// per-client bound or by since leave stale keys behind in it.
func (k *rejections) compact() {
	left := map[rejectionKey]int{}
	for key, l := range k.byKey {
		left[key] = len(l)
	}
	// The last len(list) occurrences of a key in order are its kept
	// entries, in the same order.
	seen := map[rejectionKey]int{}
	var out []rejectionKey
	for i := len(k.order) - 1; i >= 0; i-- {
		key := k.order[i]
		if seen[key] < left[key] {
			seen[key]++
			out = append(out, key)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	k.order = out
}

// forget drops every rejection kept for doc (closed: its file keeps them).
func (k *rejections) forget(doc string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, l := range k.byKey {
		if key.doc == doc {
			k.count -= len(l)
			delete(k.byKey, key)
		}
	}
}

// lines returns what is kept for doc as rejections-file lines, oldest
// commit first.
func (k *rejections) lines(doc string) []rejectionLine {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []rejectionLine
	for key, l := range k.byKey {
		if key.doc == doc {
			for _, e := range l {
				out = append(out, rejectionLine{LSN: e.lsn, Client: key.client, Seq: e.r.Seq, Message: e.r.Message})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b rejectionLine) int { return cmp.Compare(a.LSN, b.LSN) })
	return out
}
