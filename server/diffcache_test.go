package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// diffStats returns the stats of docID's diff cache (see diffCache.stats).
func (ts *testServer) diffStats(t *testing.T, docID string) (kept, bytes, entries, prepared int) {
	t.Helper()
	d, err := ts.acquire(context.Background(), docID)
	if err != nil {
		t.Fatalf("open document %s: %v", docID, err)
	}
	defer ts.release(d)
	return d.diffs.stats()
}

// readDiff reads one whole diff from c, its frames decoded and their
// messages as received.
func readDiff(t *testing.T, c *rawConn) ([]protocol.Diff, [][]byte) {
	t.Helper()
	var frames []protocol.Diff
	var msgs [][]byte
	for {
		c.WS.SetReadDeadline(time.Now().Add(testTimeout))
		_, b, err := c.WS.ReadMessage()
		if err != nil {
			t.Fatalf("read diff: %v", err)
		}
		f, err := protocol.Decode(b, protocol.Limits{MaxFrameBytes: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if f.Diff == nil {
			t.Fatalf("want a diff, got %s", f.Kind())
		}
		frames, msgs = append(frames, *f.Diff), append(msgs, b)
		if !f.Diff.More {
			return frames, msgs
		}
	}
}

// applyFrames applies a diff's frames to base, a copy of the document at
// the diff's From, and returns the copy at its To.
func applyFrames(t *testing.T, base []byte, frames []protocol.Diff) []byte {
	t.Helper()
	asm := &syncwire.Assembler{
		Base: func(no uint32, buf []byte) error {
			copy(buf, base[(no-1)*vfs.PageSize:no*vfs.PageSize])
			return nil
		},
		BaseCount: func() uint32 { return uint32(len(base) / vfs.PageSize) },
	}
	for i := range frames {
		if err := asm.Add(&frames[i]); err != nil {
			t.Fatal(err)
		}
	}
	diffs := asm.Take()
	if len(diffs) != 1 {
		t.Fatalf("%d frames made %d diffs, want 1", len(frames), len(diffs))
	}
	d := diffs[0]
	out := make([]byte, int(d.PageCount)*vfs.PageSize)
	copy(out, base)
	for _, p := range d.Pages {
		copy(out[(p.No-1)*vfs.PageSize:], p.Data)
	}
	return out
}

// helloAt is the Hello of a client whose snapshot is at lsn.
func helloAt(docID, clientID string, lsn uint64) protocol.Frame {
	f := hello(docID, clientID)
	f.Hello.LSN = lsn
	return f
}

// TestDiffSharedByConnections: connections at the same LSN woken by one
// commit get byte-identical diff frames, which bring a copy at that LSN to
// the coordinator's, and the coordinator prepares that diff once.
func TestDiffSharedByConnections(t *testing.T) {
	const receivers = 8
	ts := startServer(t, Config{})
	w := openClient(t, ts, "doc", clientOptions{})
	mutate(t, w, "bulk", testmutator.Args{Prefix: "seed-", N: 200})
	waitSynced(t, w)
	before, lsn0 := ts.coordinatorBytes(t, "doc")

	conns := make([]*rawConn, receivers)
	for i := range conns {
		conns[i] = dialRaw(t, ts)
		conns[i].Send(helloAt("doc", fmt.Sprintf("reader-%d", i), lsn0))
		if got := conns[i].ExpectWelcome().LSN; got != lsn0 {
			t.Fatalf("welcome at LSN %d, want %d", got, lsn0)
		}
	}
	_, _, _, prepared0 := ts.diffStats(t, "doc")
	mutate(t, w, "add", testmutator.Args{ID: "new", Title: "one more"})
	waitSynced(t, w)
	after, lsn1 := ts.coordinatorBytes(t, "doc")
	if lsn1 != lsn0+1 {
		t.Fatalf("one mutation took the document from LSN %d to %d", lsn0, lsn1)
	}

	var first [][]byte
	for i, c := range conns {
		frames, msgs := readDiff(t, c)
		if f := frames[0]; f.From != lsn0 || f.To != lsn1 {
			t.Fatalf("connection %d: diff %d..%d, want %d..%d", i, f.From, f.To, lsn0, lsn1)
		}
		if got := applyFrames(t, before, frames); !bytes.Equal(got, after) {
			t.Fatalf("connection %d: the diff applied to LSN %d is not the coordinator's copy at %d", i, lsn0, lsn1)
		}
		if i == 0 {
			first = msgs
			continue
		}
		if len(msgs) != len(first) {
			t.Fatalf("connection %d: %d frames, connection 0 got %d", i, len(msgs), len(first))
		}
		for j := range msgs {
			if !bytes.Equal(msgs[j], first[j]) {
				t.Fatalf("connection %d: frame %d differs from connection 0's", i, j)
			}
		}
	}
	// The writer's own connection was at lsn0 too.
	if _, _, _, prepared := ts.diffStats(t, "doc"); prepared-prepared0 != 1 {
		t.Fatalf("%d connections at LSN %d, one commit: %d diffs prepared, want 1", receivers+1, lsn0, prepared-prepared0)
	}
}

// TestDiffsPerLSN: connections at different LSNs each get the diff from
// their own LSN, correct, and connections at the same one share it.
func TestDiffsPerLSN(t *testing.T) {
	ts := startServer(t, Config{})
	w := openClient(t, ts, "doc", clientOptions{})
	copies := map[uint64][]byte{0: nil}
	var lsns []uint64
	for i := range 3 {
		mutate(t, w, "bulk", testmutator.Args{Prefix: fmt.Sprintf("b%d-", i), N: 50 * (i + 1)})
		waitSynced(t, w)
		b, lsn := ts.coordinatorBytes(t, "doc")
		copies[lsn] = b
		lsns = append(lsns, lsn)
	}
	newest := lsns[len(lsns)-1]
	_, _, _, prepared0 := ts.diffStats(t, "doc")

	// Two connections at each older LSN, and one at 0.
	from := []uint64{0, lsns[0], lsns[0], lsns[1], lsns[1]}
	for i, lsn := range from {
		c := dialRaw(t, ts)
		c.Send(helloAt("doc", fmt.Sprintf("reader-%d", i), lsn))
		c.ExpectWelcome()
		frames, _ := readDiff(t, c)
		if f := frames[0]; f.From != lsn || f.To != newest {
			t.Fatalf("connection at LSN %d: diff %d..%d, want %d..%d", lsn, f.From, f.To, lsn, newest)
		}
		if got := applyFrames(t, copies[lsn], frames); !bytes.Equal(got, copies[newest]) {
			t.Fatalf("connection at LSN %d: the diff applied is not the coordinator's copy at %d", lsn, newest)
		}
	}
	// The writer's own connection was at lsns[1] when the last commit
	// woke it: that diff was prepared already.
	kept, _, entries, prepared := ts.diffStats(t, "doc")
	if got, want := prepared-prepared0, 2; got != want {
		t.Fatalf("connections at LSNs %v: %d diffs prepared, want %d", from, got, want)
	}
	if kept != 3 || entries != 3 {
		t.Fatalf("%d diffs kept, %d entries; want 3 and 3", kept, entries)
	}

	// The document moves on: the next diff asked for drops the others.
	mutate(t, w, "add", testmutator.Args{ID: "new", Title: "one more"})
	waitSynced(t, w)
	if kept, _, entries, _ := ts.diffStats(t, "doc"); kept != 1 || entries != 1 {
		t.Fatalf("after a commit: %d diffs kept, %d entries; want 1 and 1 (every connection is at the same LSN)", kept, entries)
	}
}

// TestDiffCacheBounds drives a diffCache alone: single flight, the bound
// on from-LSNs and on bytes, and a new LSN dropping the old ones.
func TestDiffCacheBounds(t *testing.T) {
	var c diffCache
	done := make(chan struct{})
	prep := func(size int) func(uint64) (uint64, []preparedFrame, error) {
		return func(from uint64) (uint64, []preparedFrame, error) {
			return 100, []preparedFrame{{size: size}}, nil
		}
	}
	check := func(what string, wantKept, wantBytes, wantEntries, wantPrepared int) {
		t.Helper()
		kept, bytes, entries, prepared := c.stats()
		if kept != wantKept || bytes != wantBytes || entries != wantEntries || prepared != wantPrepared {
			t.Fatalf("%s: kept %d, bytes %d, entries %d, prepared %d; want %d, %d, %d, %d",
				what, kept, bytes, entries, prepared, wantKept, wantBytes, wantEntries, wantPrepared)
		}
	}

	// Single flight: callers for one key while it is prepared wait for it.
	release := make(chan struct{})
	var wg sync.WaitGroup
	got := make([]*diffEntry, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = c.get(1, 100, true, func(uint64) (uint64, []preparedFrame, error) {
				<-release
				return 100, []preparedFrame{{size: 10}}, nil
			}, done)
		}()
	}
	waitFor(t, "the first caller to prepare", func() bool { _, _, entries, _ := c.stats(); return entries == 1 })
	close(release)
	wg.Wait()
	for i, e := range got {
		if e != got[0] {
			t.Fatalf("caller %d got another entry", i)
		}
	}
	check("16 callers for one diff", 1, 10, 1, 1)

	// At most diffCacheFroms kept; the others are prepared each time.
	for from := uint64(2); from < 2+2*diffCacheFroms; from++ {
		c.get(from, 100, true, prep(10), done)
	}
	check("many from-LSNs", diffCacheFroms, 10*diffCacheFroms, diffCacheFroms, 1+2*diffCacheFroms)
	c.get(2, 100, true, prep(10), done) // kept
	c.get(2+2*diffCacheFroms-1, 100, true, prep(10), done)
	check("again", diffCacheFroms, 10*diffCacheFroms, diffCacheFroms, 2+2*diffCacheFroms)

	// A newer LSN drops the older ones; a stale one is not kept.
	c.get(1, 101, true, prep(diffCacheBudget-1), done)
	check("the next LSN", 1, diffCacheBudget-1, 1, 3+2*diffCacheFroms)
	c.get(1, 100, true, prep(10), done)
	check("a stale LSN", 1, diffCacheBudget-1, 1, 4+2*diffCacheFroms)
	// Over the byte budget: shared, not kept.
	c.get(2, 101, true, prep(2), done)
	check("over the budget", 1, diffCacheBudget-1, 1, 5+2*diffCacheFroms)

	// An error is not kept; a caller whose done closes stops waiting.
	e, _ := c.get(3, 102, true, func(uint64) (uint64, []preparedFrame, error) { return 3, nil, errors.New("boom") }, done)
	if e.err == nil {
		t.Fatal("the error was lost")
	}
	check("an error", 0, 0, 0, 6+2*diffCacheFroms)
	block := make(chan struct{})
	defer close(block)
	go c.get(4, 102, true, func(uint64) (uint64, []preparedFrame, error) { <-block; return 102, nil, nil }, done)
	waitFor(t, "the first caller to prepare", func() bool { _, _, entries, _ := c.stats(); return entries == 1 })
	close(done)
	if _, ok := c.get(4, 102, true, prep(1), done); ok {
		t.Fatal("a caller whose connection ends still waits")
	}
}

// TestDiffCacheWithReplicas: replicas behind by different amounts while a
// writer commits converge with the coordinator, and the cache keeps only
// diffs to the newest LSN, within its bounds.
func TestDiffCacheWithReplicas(t *testing.T) {
	ts := startServer(t, Config{})
	w := openClient(t, ts, "doc", clientOptions{})
	var readers []*client.Doc
	for i := range 12 {
		mutate(t, w, "add", testmutator.Args{ID: fmt.Sprintf("item-%d", i), Title: "something to do"})
		readers = append(readers, openClient(t, ts, "doc", clientOptions{}))
	}
	for i := range 20 {
		mutate(t, w, "add", testmutator.Args{ID: fmt.Sprintf("more-%d", i), Title: "and more"})
	}
	waitConverged(t, ts, "doc", append(readers, w)...)
	d, err := ts.acquire(context.Background(), "doc")
	if err != nil {
		t.Fatal(err)
	}
	defer ts.release(d)
	d.diffs.mu.Lock()
	defer d.diffs.mu.Unlock()
	if d.diffs.kept > diffCacheFroms || d.diffs.bytes > diffCacheBudget {
		t.Fatalf("%d diffs kept, %d bytes", d.diffs.kept, d.diffs.bytes)
	}
	for k := range d.diffs.entries {
		if k.to != d.diffs.newest {
			t.Fatalf("a diff to LSN %d is kept; the newest asked for is %d", k.to, d.diffs.newest)
		}
	}
}
