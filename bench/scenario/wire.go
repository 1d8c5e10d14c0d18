package scenario

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// WireConfig tunes scenario 5.
type WireConfig struct {
	Samples  int           // mutations measured per kind
	Rows     int           // small items in the document before the inserts
	BigRows  int           // items with RowBytes-long titles before the updates
	RowBytes int           // title length of the updated rows
	Duration time.Duration // upper bound per kind
}

func (c *WireConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.Samples, "wire.samples", c.Samples, "scenario 5: mutations measured per kind")
	fs.IntVar(&c.Rows, "wire.rows", c.Rows, "scenario 5: items in the document first")
	fs.IntVar(&c.BigRows, "wire.big-rows", c.BigRows, "scenario 5: big items updated")
	fs.IntVar(&c.RowBytes, "wire.row-bytes", c.RowBytes, "scenario 5: title bytes of a big item")
	fs.DurationVar(&c.Duration, "wire.duration", c.Duration, "scenario 5: time bound per kind")
}

// runWire is scenario 5: the bytes a receiving replica reads from its TCP
// connection per mutation of another replica (a one-row todo insert; an
// update of a 1 KiB row), against the pages that changed sent whole, as
// the design's Diff frames without deltas, over the same kind of
// WebSocket (permessage-deflate) and counted the same way.
func runWire(ctx context.Context, e *env) (recs []report.Record, err error) {
	cfg := e.cfg.Wire
	coord, err := e.startCoordinator(ctx, "server", server.Config{})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, coord.Close()) }()
	a, err := e.openReplica(ctx, coord.pool, client.Options{URL: coord.URL, DocID: "wire"})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	keepLive(a)
	// The baseline socket, and the frames B receives (their headers and
	// page numbers) to send again with every page whole.
	link, err := openDeflateLink(ctx)
	if err != nil {
		return nil, err
	}
	defer link.Close()
	var m meter
	var framesMu sync.Mutex
	var frames []protocol.Diff
	m.onDiff = func(f *protocol.Diff) {
		h := protocol.Diff{From: f.From, To: f.To, PageCount: f.PageCount, More: f.More, Pages: make([]protocol.Page, len(f.Pages))}
		for i, p := range f.Pages {
			h.Pages[i].No = p.No
		}
		framesMu.Lock()
		frames = append(frames, h)
		framesMu.Unlock()
	}
	takeFrames := func() []protocol.Diff {
		framesMu.Lock()
		defer framesMu.Unlock()
		out := frames
		frames = nil
		return out
	}
	b, err := e.openReplica(ctx, coord.pool, client.Options{URL: coord.URL, DocID: "wire", Dial: m.dial})
	if err != nil {
		return nil, err
	}
	defer b.Close()

	// syncAB waits until A's mutations are applied and B has them.
	syncAB := func() error {
		if err := waitSynced(ctx, a, 30*time.Second); err != nil {
			return err
		}
		return waitLSN(ctx, b, a.Status().LSN, 30*time.Second)
	}
	if _, err := a.Mutate(ctx, "bulk", testmutator.Args{Prefix: "seed-", N: cfg.Rows}); err != nil {
		return nil, err
	}
	if err := syncAB(); err != nil {
		return nil, err
	}

	// wholeBytes sends the frames B received again, each page whole (as B
	// has it now: the newest copy), over the baseline socket, and returns
	// the bytes its client read.
	wholeBytes := func(fs []protocol.Diff) (int64, error) {
		store := b.Engine().Database().Store()
		whole := make([]*protocol.Diff, len(fs))
		for i := range fs {
			f := fs[i]
			for j := range f.Pages {
				buf := make([]byte, vfs.PageSize)
				if err := store.ReadPage(f.Pages[j].No, buf); err != nil {
					return 0, fmt.Errorf("read page %d of B: %w", f.Pages[j].No, err)
				}
				f.Pages[j].Data = buf
			}
			whole[i] = &f
		}
		msgs, err := encodeDiffFrames(whole)
		if err != nil {
			return 0, err
		}
		return link.send(ctx, msgs)
	}

	// measure runs mutations one at a time and records what B received
	// for each, and what the same pages whole cost over the baseline
	// socket.
	type sample struct{ tcp, frame, pages, deltas, whole float64 }
	measure := func(mutate func(i int) error) ([]sample, error) {
		var out []sample
		for dl, i := newDeadline(cfg.Samples, cfg.Duration), 0; dl.more(ctx, i); i++ {
			before := m.snap()
			takeFrames()
			if err := mutate(i); err != nil {
				return nil, err
			}
			if err := syncAB(); err != nil {
				return nil, err
			}
			d := m.snap().sub(before)
			whole, err := wholeBytes(takeFrames())
			if err != nil {
				return nil, err
			}
			out = append(out, sample{float64(d.tcpRead), float64(d.frameBytes), float64(d.pages), float64(d.deltas), float64(whole)})
		}
		if len(out) == 0 {
			return nil, errors.New("no samples")
		}
		return out, nil
	}
	record := func(id, name string, params map[string]any, s []sample) report.Record {
		var tcp, frame, pageBytes, pages, whole []float64
		var npages, ndeltas float64
		for _, x := range s {
			tcp = append(tcp, x.tcp)
			whole = append(whole, x.whole)
			frame = append(frame, x.frame)
			pageBytes = append(pageBytes, x.pages*vfs.PageSize)
			pages = append(pages, x.pages)
			npages += x.pages
			ndeltas += x.deltas
		}
		params["mutator"] = coord.pool.impl.Name
		params["counted"] = "bytes read from B's TCP connection (WebSocket framing, deflate), not TCP/IP headers"
		params["baseline"] = "the Diff frames B received, each page whole (no XOR deltas), sent over a WebSocket with the coordinator's settings (permessage-deflate) and counted the same way"
		r := report.Record{
			ID: id, Scenario: 5, Name: name, Params: params, Samples: len(s),
			Figure:   report.Dist("B", tcp),
			Baseline: &report.Named{Name: "changed pages, whole, over WebSocket with deflate", Stat: report.Dist("B", whole)},
			Aim:      &report.Aim{Text: "≤ 1/8 of baseline (mean)", MaxRatio: 0.125},
			Also: []report.Named{
				{Name: "changed pages × 4096", Stat: report.Dist("B", pageBytes)},
				{Name: "diff frames before deflate (CBOR)", Stat: report.Dist("B", frame)},
				{Name: "pages per diff", Stat: report.Dist("pages", pages)},
				{Name: "share of pages sent as XOR deltas", Stat: report.Value("%", 100*ndeltas/max(npages, 1))},
			},
		}
		r.Finish("mean")
		return r
	}

	ins, err := measure(func(i int) error {
		_, err := a.Mutate(ctx, "add", row{id: fmt.Sprintf("ins-%06d", i), title: fmt.Sprintf("todo %d: call the plumber about the sink", i), pos: float64(cfg.Rows + i + 1)}.args())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("inserts: %w", err)
	}
	recs = append(recs, record("5.insert", "bytes received per one-row todo insert",
		map[string]any{"rows_before": cfg.Rows}, ins))

	// Big rows: titles of RowBytes characters of base64 (6 bits of entropy
	// per byte, so deflate can shrink them only by a quarter).
	rng := rand.New(rand.NewPCG(5, 5))
	title := func(i int) string {
		raw := make([]byte, cfg.RowBytes*3/4+3)
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		return fmt.Sprintf("%06d ", i) + base64.StdEncoding.EncodeToString(raw)[:cfg.RowBytes-7]
	}
	for i := range cfg.BigRows {
		if _, err := a.Mutate(ctx, "add", row{id: fmt.Sprintf("big-%05d", i), title: title(i), pos: float64(2*cfg.Rows + cfg.Samples + i + 1)}.args()); err != nil {
			return recs, err
		}
		if a.Status().Pending >= 100 {
			if err := waitSynced(ctx, a, 30*time.Second); err != nil {
				return recs, err
			}
		}
	}
	if err := syncAB(); err != nil {
		return recs, err
	}
	upd, err := measure(func(i int) error {
		_, err := a.Mutate(ctx, "rename", testmutator.Args{ID: fmt.Sprintf("big-%05d", rng.IntN(cfg.BigRows)), Title: title(i)})
		return err
	})
	if err != nil {
		return recs, fmt.Errorf("updates: %w", err)
	}
	recs = append(recs, record("5.update", fmt.Sprintf("bytes received per %d B-row update", cfg.RowBytes),
		map[string]any{"big_rows": cfg.BigRows, "row_bytes": cfg.RowBytes, "title": "random base64, indexed column"}, upd))
	return recs, nil
}
