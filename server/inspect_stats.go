package server

import (
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// What the inspector (inspect.go) reads of connections and documents,
// recorded as they go: a connection's LSNs, a document's recent commits
// and rejections. Kept apart from the sync code so that it adds a line or
// two there.

// connStats is what the inspector shows of one connection.
type connStats struct {
	// Set before the connection joins its document (then read under the
	// document's lock), never changed after.
	remote string
	since  time.Time
	hello  uint64 // the LSN the client's Hello said it had

	// sent is the LSN of the last diff written to the client (its Hello's
	// LSN before the first): the client has it or will once it reads.
	sent atomic.Uint64
}

// Bounds of what a document remembers for the inspector.
const (
	// maxInspectCommits is the recent group commits a document keeps.
	maxInspectCommits = 50
	// maxInspectRejections is the recent rejections a document keeps.
	maxInspectRejections = 50
	// maxCommitMutations is the mutations listed per group commit; the
	// rest are counted.
	maxCommitMutations = 20
	// maxInspectMessage bounds a rejection message kept (in bytes).
	maxInspectMessage = 1024
)

// inspectMutation names one mutation of a commit.
type inspectMutation struct {
	Client string `json:"client"`
	Seq    uint64 `json:"seq"`
	Name   string `json:"name"`
}

// inspectCommit is one group commit (Coordinator.Apply) that moved a
// document's LSN: usually one LSN, more when a mutation broke the
// transaction or the batch's time ran out.
type inspectCommit struct {
	FromLSN      uint64            `json:"from_lsn"`
	LSN          uint64            `json:"lsn"`
	At           time.Time         `json:"at"`
	DurationMS   float64           `json:"duration_ms"`
	Applied      int               `json:"applied"`  // mutations applied, rejected ones included
	Rejected     int               `json:"rejected"` // of Applied
	Deferred     int               `json:"deferred"` // left to the next group commit
	PagesChanged int               `json:"pages_changed"`
	PageCount    uint32            `json:"page_count"`
	Mutations    []inspectMutation `json:"mutations"`      // the first maxCommitMutations
	More         int               `json:"more_mutations"` // applied but not listed
}

// inspectRejection is one mutation the coordinator rejected.
type inspectRejection struct {
	LSN     uint64    `json:"lsn"` // of the commit that recorded it
	At      time.Time `json:"at"`
	Client  string    `json:"client"`
	Seq     uint64    `json:"seq"`
	Name    string    `json:"name"`
	Message string    `json:"message"`
}

// docActivity is a document's recent commits and rejections, newest last,
// recorded by its writer since the document opened.
type docActivity struct {
	mu         sync.Mutex
	commits    []inspectCommit
	rejections []inspectRejection
}

// record notes a group commit that took the document from LSN from to
// res.LSN in took; nothing if the LSN did not move. Called by the
// document's writer, the only one committing, so the pages changed after
// from are this commit's.
func (a *docActivity) record(store vfs.Store, from uint64, res engine.Result, took time.Duration) {
	if res.LSN <= from {
		return
	}
	now := time.Now()
	c := inspectCommit{
		FromLSN: from, LSN: res.LSN, At: now, DurationMS: float64(took.Microseconds()) / 1000,
		Applied: len(res.Applied), Rejected: len(res.Rejected), Deferred: len(res.Deferred),
		PagesChanged: len(store.ChangedSince(from)), PageCount: store.PageCount(),
	}
	for i, m := range res.Applied {
		if i == maxCommitMutations {
			c.More = len(res.Applied) - i
			break
		}
		c.Mutations = append(c.Mutations, inspectMutation{Client: m.ClientID, Seq: m.Seq, Name: m.Name})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.commits = appendBounded(a.commits, c, maxInspectCommits)
	for _, r := range res.Rejected {
		msg := clip(rejectedFrame(r).Message, maxInspectMessage)
		a.rejections = appendBounded(a.rejections, inspectRejection{
			LSN: res.LSN, At: now, Client: r.Mutation.ClientID, Seq: r.Mutation.Seq, Name: r.Mutation.Name, Message: msg,
		}, maxInspectRejections)
	}
}

// snapshot returns copies of the recent commits and rejections, newest
// first.
func (a *docActivity) snapshot() ([]inspectCommit, []inspectRejection) {
	a.mu.Lock()
	defer a.mu.Unlock()
	commits := make([]inspectCommit, len(a.commits))
	for i, c := range a.commits {
		commits[len(commits)-1-i] = c
	}
	rejections := make([]inspectRejection, len(a.rejections))
	for i, r := range a.rejections {
		rejections[len(rejections)-1-i] = r
	}
	return commits, rejections
}

// clip cuts s to at most n bytes, on a character boundary, marking the
// cut with an ellipsis.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// appendBounded appends v to s, dropping the oldest beyond n.
func appendBounded[T any](s []T, v T, n int) []T {
	if len(s) >= n {
		s = append(s[:0], s[len(s)-n+1:]...)
	}
	return append(s, v)
}
