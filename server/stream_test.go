package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// breakingDialer dials through servertest.Dialer and, on the first
// connection only, breaks it once the replica has read breakAt frames of
// a streamed diff: as a network that fails half-way through a download.
type breakingDialer struct {
	breakAt int
	wire    *servertest.WireLog
	dials   atomic.Int32
}

func (b *breakingDialer) Dial(ctx context.Context, url string) (client.Transport, error) {
	t, err := b.wire.Dial(ctx, url)
	if err != nil || b.dials.Add(1) > 1 {
		return t, err
	}
	return &breakingTransport{Transport: t, left: b.breakAt}, nil
}

type breakingTransport struct {
	client.Transport
	left int
}

var errBroken = errors.New("the test broke the connection")

func (t *breakingTransport) Read(ctx context.Context) ([]byte, error) {
	if t.left == 0 {
		t.Transport.Close()
		return nil, errBroken
	}
	b, err := t.Transport.Read(ctx)
	if err == nil {
		if f, derr := protocol.Decode(b, protocol.Limits{MaxFrameBytes: 64 << 20}); derr == nil && f.Diff != nil && f.Diff.Stream != nil {
			t.left--
		}
	}
	return b, err
}

// TestStreamedDownloadResumes: a new replica of a document of several
// thousand pages gets it streamed; its connection breaks after a few frames
// while another replica goes on committing; it reconnects and the
// coordinator goes on from the page where the stream broke, not from the
// start; progress events count up to the end; and the replica converges.
func TestStreamedDownloadResumes(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, Config{Mutator: func(string) engine.Mutator { return testmutator.SQL{} }})
	w := openClient(t, ts, "doc", clientOptions{mutator: testmutator.SQL{}})
	exec := func(sql string) {
		t.Helper()
		if _, err := w.Mutate(ctx, "exec", testmutator.SQLArgs{SQL: sql}.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE big(b BLOB); CREATE TABLE small(x INTEGER);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
		INSERT INTO big SELECT randomblob(3500) FROM n`)
	waitSynced(t, w)
	var pages int
	ts.coordinator(t, "doc", func(c *engine.Coordinator) { pages = c.Changed(0) })
	if pages < syncwire.StreamMinPages {
		t.Fatalf("the document has %d pages, too few to stream (%d)", pages, syncwire.StreamMinPages)
	}

	// The writer's own first diff was large too: count from here.
	finished0 := ts.counterWith(t, "sqlsync_streams_total", "event", "finished")
	d := &breakingDialer{breakAt: 4, wire: &servertest.WireLog{}}
	var mu sync.Mutex
	var progress []client.Progress
	late := openClient(t, ts, "doc", clientOptions{mutator: testmutator.SQL{}, dial: d.Dial, stateDir: t.TempDir()})
	stop := late.Watch(func(e client.Event) {
		if e.Progress != nil {
			mu.Lock()
			progress = append(progress, *e.Progress)
			mu.Unlock()
		}
	})
	defer stop()
	// Commits go on while the replica downloads.
	for i := range 5 {
		exec(fmt.Sprintf(`INSERT INTO small VALUES (%d)`, i))
	}
	waitConverged(t, ts, "doc", w, late)

	if n := d.dials.Load(); n < 2 {
		t.Fatalf("the replica dialled %d times: the connection never broke", n)
	}
	hellos := d.wire.Hellos()
	if !protocol.HasCapability(hellos[0].Capabilities, protocol.CapStream) {
		t.Fatalf("the replica's Hello does not ask for streams: %v", hellos[0].Capabilities)
	}
	r := hellos[1].Resume
	if r == nil || r.After == 0 {
		t.Fatalf("the second Hello resumes nothing: %+v", r)
	}
	if got := ts.counterWith(t, "sqlsync_streams_total", "event", "resumed"); got != 1 {
		t.Fatalf("%v streams resumed, want 1", got)
	}
	if got := ts.counterWith(t, "sqlsync_streams_total", "event", "finished") - finished0; got != 1 {
		t.Fatalf("%v streams finished, want 1", got)
	}
	// Resumed, not restarted: the resumed connection brought the pages
	// after the one the stream broke at (the document's pages are numbered
	// densely), plus the later passes' few (the commits made meanwhile).
	_, frames := d.wire.AfterHello(1)
	if len(frames) == 0 || frames[0].Stream == nil || frames[0].Stream.After != r.After {
		t.Fatalf("the resumed connection's first diff frame does not go on after page %d: %+v", r.After, frames[:min(1, len(frames))])
	}
	received := 0
	for _, f := range frames {
		received += len(f.Pages)
	}
	if rest := pages - int(r.After); received > rest+pages/20 {
		t.Fatalf("the resumed connection brought %d pages, of the %d after page %d: the stream started over", received, rest, r.After)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) < 4 {
		t.Fatalf("%d progress events", len(progress))
	}
	last := progress[len(progress)-1]
	if !last.Done || last.Pages < uint64(pages) || last.Pages != last.TotalPages || last.Bytes != last.Pages*protocol.PageSize {
		t.Fatalf("last progress event %+v, want done with at least %d pages", last, pages)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Pages < progress[i-1].Pages {
			t.Fatalf("progress went back from %+v to %+v", progress[i-1], progress[i])
		}
	}
	if got := queryString(t, late, `SELECT count(*) FROM big`); got != "[[3000]]" {
		t.Fatalf("late replica has %s rows", got)
	}
}
