package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// CatchupConfig tunes scenario 7.
type CatchupConfig struct {
	DocBytes int64         // size of the document before the client falls behind
	Commits  int           // commits the client misses
	Runs     int           // catch-ups measured
	Duration time.Duration // upper bound on making the commits
}

func (c *CatchupConfig) register(fs *flag.FlagSet) {
	fs.Int64Var(&c.DocBytes, "catchup.doc-bytes", c.DocBytes, "scenario 7: document size in bytes")
	fs.IntVar(&c.Commits, "catchup.commits", c.Commits, "scenario 7: commits the client misses")
	fs.IntVar(&c.Runs, "catchup.runs", c.Runs, "scenario 7: catch-ups measured")
	fs.DurationVar(&c.Duration, "catchup.duration", c.Duration, "scenario 7: time bound on making the commits")
}

// words make todo titles that read (and compress) like text.
var words = strings.Fields(`buy milk call the plumber about kitchen sink book flights
to Lisbon renew passport before June water plants send invoice for March fix
bike brakes return library books pick up kids at five prepare slides for
Monday review pull request clean garage order birthday cake pay electricity
bill schedule dentist cancel gym plan team offsite write blog post on sync`)

// hotSet is how many of the newest items most of scenario 7's updates hit.
const hotSet = 2000

func textTitle(rng *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.String()[:n]
}

// runCatchup is scenario 7: the bytes and time a replica needs to catch up
// after missing Commits commits of a DocBytes document, against the pages
// that changed meanwhile, sent whole over the same kind of WebSocket
// (permessage-deflate), and against downloading the whole file.
func runCatchup(ctx context.Context, e *env) (recs []report.Record, err error) {
	cfg := e.cfg.Catchup
	pool, err := e.mutators()
	if err != nil {
		return nil, err
	}
	data, err := e.subdir("server")
	if err != nil {
		return nil, err
	}
	docDir := filepath.Join(data, "docs", "catchup")
	rng := rand.New(rand.NewPCG(7, 7))

	// 1. The document, built on the coordinator's own store.
	m, err := pool.get(ctx)
	if err != nil {
		return nil, err
	}
	store, coord, err := openCoordinatorDoc(ctx, docDir, m)
	if err != nil {
		return nil, err
	}
	items := 0
	seq := uint64(0)
	for int64(store.PageCount())*vfs.PageSize < cfg.DocBytes && ctx.Err() == nil {
		batch := make([]engine.Mutation, 500)
		for i := range batch {
			seq++
			batch[i] = engine.Mutation{ClientID: "writer", Seq: seq, Name: "add",
				Args: row{id: fmt.Sprintf("item-%07d", items), title: textTitle(rng, 300), pos: float64(items + 1)}.args()}
			items++
		}
		if _, err := coord.Apply(ctx, batch); err != nil {
			coord.Close()
			store.Close()
			return nil, fmt.Errorf("build document: %w", err)
		}
	}
	lsn0 := coord.LSN()
	pages0 := int(store.PageCount())
	if err := errors.Join(coord.Close(), store.Close()); err != nil {
		return nil, err
	}

	// 2. A replica syncs it fully (from LSN 0), then goes away.
	start := func() (*coordinator, error) {
		return e.startCoordinator(ctx, "server", server.Config{})
	}
	srv, err := start()
	if err != nil {
		return nil, err
	}
	golden := filepath.Join(e.dir, "golden")
	fresh, err := e.catchupOnce(ctx, pool, srv.URL, golden)
	if err == nil && fresh.lsn != lsn0 {
		err = fmt.Errorf("fresh replica at LSN %d, want %d", fresh.lsn, lsn0)
	}
	if err = errors.Join(err, srv.Close()); err != nil {
		return nil, err
	}

	// 3. The coordinator commits Commits times while the replica is away,
	// one mutation per commit: adds, toggles and renames. Updates pick
	// among the hotSet newest items 80% of the time (a todo list's recent
	// items change most), else any item.
	if store, coord, err = openCoordinatorDoc(ctx, docDir, m); err != nil {
		return nil, err
	}
	commits := 0
	for dl := newDeadline(cfg.Commits, cfg.Duration); dl.more(ctx, commits); commits++ {
		seq++
		mu := engine.Mutation{ClientID: "writer", Seq: seq}
		pick := func() string {
			if rng.IntN(10) < 8 {
				return fmt.Sprintf("item-%07d", items-1-rng.IntN(min(hotSet, items)))
			}
			return fmt.Sprintf("item-%07d", rng.IntN(items))
		}
		switch n := rng.IntN(10); {
		case n < 2:
			mu.Name, mu.Args = "add", row{id: fmt.Sprintf("item-%07d", items), title: textTitle(rng, 300), pos: float64(items + 1)}.args()
			items++
		case n < 8:
			mu.Name, mu.Args = "toggle", testmutator.Args{ID: pick()}.Encode()
		default:
			mu.Name, mu.Args = "rename", testmutator.Args{ID: pick(), Title: textTitle(rng, 300)}.Encode()
		}
		res, err := coord.Apply(ctx, []engine.Mutation{mu})
		if err == nil && len(res.Rejected) > 0 {
			err = res.Rejected[0].Err
		}
		if err != nil {
			coord.Close()
			store.Close()
			return nil, fmt.Errorf("commit %d: %w", commits, err)
		}
	}
	changed := len(store.ChangedSince(lsn0))
	pageCount := int(store.PageCount())
	lsn1 := coord.LSN()
	// The baseline: the pages that changed, whole, over the same kind of
	// WebSocket as the replica's.
	whole, err := engine.DiffFrom(store, lsn0)
	if err != nil {
		coord.Close()
		store.Close()
		return nil, fmt.Errorf("changed pages: %w", err)
	}
	if err := errors.Join(coord.Close(), store.Close()); err != nil {
		return nil, err
	}
	wholeBytes, err := sendWholePages(ctx, whole)
	if err != nil {
		return nil, err
	}
	whole = engine.Diff{} // its pages are sent: let them go

	// 4. The replica comes back, from a fresh copy of its state each run;
	// each run also times the baseline, the whole file over the same kind
	// of WebSocket, so that a busy moment of the machine hits both alike.
	if srv, err = start(); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()
	var runs []catchup
	var full []fullDownload
	for i := 0; i < cfg.Runs && ctx.Err() == nil; i++ {
		dir := filepath.Join(e.dir, fmt.Sprintf("run%d", i))
		if err := copyDir(golden, dir); err != nil {
			return nil, err
		}
		c, err := e.catchupOnce(ctx, pool, srv.URL, dir)
		if err != nil {
			return nil, fmt.Errorf("catch-up %d: %w", i, err)
		}
		if c.lsn != lsn1 {
			return nil, fmt.Errorf("catch-up %d: replica at LSN %d, want %d", i, c.lsn, lsn1)
		}
		runs = append(runs, c)
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("catch-up %d: %w", i, err)
		}
		f, err := downloadWhole(ctx, c.file)
		if err != nil {
			return nil, err
		}
		full = append(full, f)
	}
	if len(runs) == 0 {
		return nil, errors.New("no catch-up measured")
	}
	file := runs[len(runs)-1].file

	var bytes, fullBytes, pages []float64
	var times, fullTimes []time.Duration
	for _, r := range runs {
		bytes = append(bytes, float64(r.m.tcpRead))
		pages = append(pages, float64(r.m.pages))
		times = append(times, r.time)
	}
	for _, f := range full {
		fullBytes = append(fullBytes, float64(f.bytes))
		fullTimes = append(fullTimes, f.time)
	}
	params := map[string]any{"mutator": pool.impl.Name, "doc_bytes_behind": pages0 * vfs.PageSize, "doc_bytes": pageCount * vfs.PageSize,
		"pages": pageCount, "commits_behind": commits, "changed_pages": changed, "items": items,
		"workload": fmt.Sprintf("one mutation per commit: 20%% add, 60%% toggle, 20%% rename (300-character text titles); "+
			"updates hit the %d newest items 80%% of the time, else any", hotSet),
		"replica": "filestore state on disk, reopened with client.Open; time is Open to WaitSynced"}
	byteRec := report.Record{
		ID: "7.bytes", Scenario: 7, Name: fmt.Sprintf("catch-up bytes, %d commits behind on a %.1f MiB document", commits, float64(pages0*vfs.PageSize)/mib),
		Params: params, Samples: len(runs),
		Figure:   report.Value("B", report.Dist("B", bytes).P50),
		Baseline: &report.Named{Name: "changed pages, whole, over WebSocket with deflate", Stat: report.Value("B", float64(wholeBytes))},
		Aim:      &report.Aim{Text: "≤ changed pages over WebSocket with deflate", MaxRatio: 1},
		Also: []report.Named{
			{Name: "changed pages × 4096", Stat: report.Value("B", float64(changed*vfs.PageSize))},
			{Name: "whole file", Stat: report.Value("B", float64(len(file)))},
			{Name: "whole file over WebSocket with deflate", Stat: report.Value("B", report.Dist("B", fullBytes).P50)},
			{Name: "fresh replica's full sync", Stat: report.Value("B", float64(fresh.m.tcpRead))},
			{Name: "pages received", Stat: report.Value("pages", report.Dist("pages", pages).P50)},
		},
	}
	byteRec.Finish("value")
	timeRec := report.Record{
		ID: "7.time", Scenario: 7, Name: fmt.Sprintf("catch-up time, %d commits behind", commits),
		Params: params, Samples: len(runs),
		Figure:   report.Durations(times),
		Baseline: &report.Named{Name: "whole file over WebSocket with deflate", Stat: report.Durations(fullTimes)},
		Also: []report.Named{
			{Name: "fresh replica's full sync (Open to WaitSynced)", Stat: report.Value("ms", float64(fresh.time)/float64(time.Millisecond))},
		},
	}
	timeRec.Finish("p50")
	return []report.Record{byteRec, timeRec}, nil
}

// catchup is one replica's sync: what it read, how long it took, the LSN
// and file it ended with.
type catchup struct {
	m    meterSnap
	time time.Duration
	lsn  uint64
	file []byte
}

// catchupOnce opens the replica kept in dir (creating it if empty), waits
// until it is synced and closes it.
func (e *env) catchupOnce(ctx context.Context, pool *mutatorPool, url, dir string) (c catchup, err error) {
	var m meter
	start := time.Now()
	doc, err := e.openReplica(ctx, pool, client.Options{URL: url, DocID: "catchup", StateDir: dir, Dial: m.dial})
	if err != nil {
		return c, err
	}
	defer func() { err = errors.Join(err, doc.Close()) }()
	if err := waitSynced(ctx, doc, 2*time.Minute); err != nil {
		return c, err
	}
	c.time = time.Since(start)
	c.m = m.snap()
	c.lsn = doc.Status().LSN
	c.file, err = doc.Engine().Database().Bytes()
	return c, err
}

// fullDownload is one download of a whole file.
type fullDownload struct {
	bytes int64
	time  time.Duration
}

// downloadWhole sends file over a deflateLink, in messages of
// syncwire.PagesPerFrame pages, and times a client from dialling to its
// last byte.
func downloadWhole(ctx context.Context, file []byte) (fullDownload, error) {
	start := time.Now()
	l, err := openDeflateLink(ctx)
	if err != nil {
		return fullDownload{}, fmt.Errorf("download: %w", err)
	}
	defer l.Close()
	var msgs [][]byte
	chunk := syncwire.PagesPerFrame * vfs.PageSize
	for off := 0; off < len(file); off += chunk {
		msgs = append(msgs, file[off:min(off+chunk, len(file))])
	}
	if _, err := l.send(ctx, msgs); err != nil {
		return fullDownload{}, fmt.Errorf("download: %w", err)
	}
	return fullDownload{bytes: l.read(), time: time.Since(start)}, nil
}

// sendWholePages sends d's pages whole, as the design's Diff frames
// without deltas (syncwire.Frames, d.Bases ignored), over a fresh
// deflateLink, and returns the bytes its client read from TCP, the
// handshake included, as a replica's catch-up is counted.
func sendWholePages(ctx context.Context, d engine.Diff) (int64, error) {
	d.Bases = nil
	msgs, err := encodeDiffFrames(syncwire.Frames(d, syncwire.PagesPerFrame))
	if err != nil {
		return 0, err
	}
	l, err := openDeflateLink(ctx)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	if _, err := l.send(ctx, msgs); err != nil {
		return 0, fmt.Errorf("send changed pages: %w", err)
	}
	return l.read(), nil
}

// copyDir copies the regular files under src to dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("copy state: %w", err)
		}
		if err := os.WriteFile(target, b, 0o644); err != nil {
			return fmt.Errorf("copy state: %w", err)
		}
		return nil
	})
}
