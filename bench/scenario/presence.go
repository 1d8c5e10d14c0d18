package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sqlsync-go/sqlsync/bench/report"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
)

// PresenceSpamConfig tunes scenario 11.
type PresenceSpamConfig struct {
	Samples  int           // write latencies per condition (with and without the spammers)
	Rounds   int           // alternations of the two conditions
	Spammers int           // connections spamming presence
	Duration time.Duration // upper bound on the measurement
}

func (c *PresenceSpamConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.Samples, "presence.samples", c.Samples, "scenario 11: write latencies per condition (with and without the spammers)")
	fs.IntVar(&c.Rounds, "presence.rounds", c.Rounds, "scenario 11: alternations of the two conditions")
	fs.IntVar(&c.Spammers, "presence.spammers", c.Spammers, "scenario 11: connections spamming presence")
	fs.DurationVar(&c.Duration, "presence.duration", c.Duration, "scenario 11: time bound on the measurement")
}

// runPresence is scenario 11: another client's write latency (Mutate until
// the coordinator's diff shows it applied) while connections of the same
// document spam presence updates as fast as they can write them, half of
// them over the size limit and all over the rate, against the same
// latency without them, in alternating rounds of one run. A third replica
// watches presence, so the updates that pass are fanned out.
func runPresence(ctx context.Context, e *env) (recs []report.Record, err error) {
	cfg := e.cfg.Presence
	coord, err := e.startCoordinator(ctx, "server", server.Config{})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, coord.Close()) }()
	open := func() (*client.Doc, error) {
		return e.openLive(ctx, coord.pool, client.Options{URL: coord.URL, DocID: "presence", Presence: true})
	}
	writer, err := open()
	if err != nil {
		return nil, err
	}
	defer writer.Close()
	watcher, err := open()
	if err != nil {
		return nil, err
	}
	defer watcher.Close()
	if err := writer.Presence().Set(map[string]string{"name": "writer"}); err != nil {
		return nil, err
	}
	var fannedOut atomic.Int64
	defer watcher.Presence().Subscribe(func([]client.Peer) { fannedOut.Add(1) })()

	var n int
	write := func(count int, into *[]time.Duration, dl deadline) error {
		for i := 0; i < count && dl.more(ctx, 0); i++ {
			n++
			start := time.Now()
			if _, err := writer.Mutate(ctx, "add", row{id: fmt.Sprintf("w-%07d", n), title: "written beside a spammer", pos: float64(n)}.args()); err != nil {
				return err
			}
			if err := waitSynced(ctx, writer, 10*time.Second); err != nil {
				return err
			}
			*into = append(*into, time.Since(start))
		}
		return nil
	}
	dl := newDeadline(1, cfg.Duration)
	var warm []time.Duration
	if err := write(20, &warm, dl); err != nil {
		return nil, err
	}
	var quiet, spammed []time.Duration
	var spam spamStats
	per := max(1, cfg.Samples/max(1, cfg.Rounds))
	for r := 0; r < cfg.Rounds && dl.more(ctx, 0); r++ {
		if err := write(per, &quiet, dl); err != nil {
			return nil, err
		}
		stop, err := startSpammers(ctx, coord.URL, cfg.Spammers, &spam)
		if err != nil {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond) // the spammers at full speed
		err = write(per, &spammed, dl)
		if serr := stop(); err == nil {
			err = serr
		}
		if err != nil {
			return nil, err
		}
	}
	if len(quiet) == 0 || len(spammed) == 0 {
		return nil, fmt.Errorf("presence spam: no samples within %v", cfg.Duration)
	}
	secs := spam.elapsed().Seconds()
	rec := report.Record{
		ID: "11.spam", Scenario: 11,
		Name: fmt.Sprintf("write latency beside %d presence spammer(s) (Mutate → applied)", cfg.Spammers),
		Params: map[string]any{"mutator": coord.pool.impl.Name, "replicas": "in memory", "spammers": cfg.Spammers,
			"spam":        "PresenceSet frames as fast as written, alternately 4 KiB (over the 1 KiB limit) and small (over the 10/s rate)",
			"coordinator": "server.New on filestore, default presence limits", "rounds": cfg.Rounds},
		Samples:  len(spammed),
		Figure:   report.Durations(spammed),
		Baseline: &report.Named{Name: "the same writes without the spammers, alternating rounds", Stat: report.Durations(quiet)},
		Aim:      &report.Aim{Text: "p50 ≤ 1.5× without the spammers", MaxRatio: 1.5},
		Also: []report.Named{
			{Name: "presence updates a spammer wrote (into its socket; the coordinator reads them at its rate)", Stat: report.Value("frames/s", float64(spam.sent.Load())/secs)},
			{Name: "refusals a spammer was sent (a new connection's burst, then one per token)", Stat: report.Value("frames/s", float64(spam.refused.Load())/secs)},
			{Name: "presence changes the watcher saw", Stat: report.Value("changes", float64(fannedOut.Load()))},
		},
	}
	rec.Finish("p50")
	return []report.Record{rec}, nil
}

// spamStats counts what the spammers did, over the time they ran (each
// spammer's time added up: the rates are per spammer).
type spamStats struct {
	sent, refused atomic.Int64
	mu            sync.Mutex
	ran           time.Duration
}

func (s *spamStats) add(d time.Duration) {
	s.mu.Lock()
	s.ran += d
	s.mu.Unlock()
}

func (s *spamStats) elapsed() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.ran, time.Millisecond)
}

// startSpammers connects n spammers to the document "presence" at url and
// starts them; stop ends them and returns the first error.
func startSpammers(ctx context.Context, url string, n int, stats *spamStats) (stop func() error, err error) {
	ctx, cancel := context.WithCancel(ctx)
	big, err := protocol.Encode(protocol.Frame{PresenceSet: &protocol.PresenceSet{State: []byte(`"` + strings.Repeat("x", 4094) + `"`)}})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("encode spam: %w", err)
	}
	var small [][]byte
	for i := range 16 {
		b, err := protocol.Encode(protocol.Frame{PresenceSet: &protocol.PresenceSet{State: []byte(fmt.Sprintf(`{"i":%d}`, i))}})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("encode spam: %w", err)
		}
		small = append(small, b)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	var conns []*websocket.Conn
	for s := range n {
		// No permessage-deflate: compressed, each 4 KiB frame of one
		// letter is a few bytes, and the spammers, in this process, would
		// burn its CPU compressing frames the coordinator never reads.
		// Uncompressed, they block once the socket's buffers are full, as
		// a spammer elsewhere waits on its own machine.
		d := clientDialer(nil)
		d.EnableCompression = false
		ws, _, err := d.DialContext(ctx, url, nil)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("spammer: %w", err)
		}
		conns = append(conns, ws)
		hello, err := protocol.Encode(protocol.Frame{Hello: &protocol.Hello{Version: protocol.Version, DocID: "presence",
			ClientID: fmt.Sprintf("spammer-%d-%d", s, time.Now().UnixNano()), Capabilities: []string{protocol.CapPresence}}})
		if err == nil {
			err = ws.WriteMessage(websocket.BinaryMessage, hello)
		}
		if err != nil {
			cancel()
			return nil, fmt.Errorf("spammer hello: %w", err)
		}
		ws.SetReadLimit(64 << 20)
		wg.Add(2)
		go func() { // read everything, count the refusals
			defer wg.Done()
			for {
				_, b, err := ws.ReadMessage()
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("spammer read: %w", err)
					}
					return
				}
				if f, err := protocol.Decode(b, protocol.Limits{MaxFrameBytes: 64 << 20}); err == nil {
					if f.Close != nil {
						errs <- fmt.Errorf("spammer closed by the coordinator: %s: %s", f.Close.Code, f.Close.Reason)
						return
					}
					if f.PresenceRefused != nil {
						stats.refused.Add(1)
					}
				}
			}
		}()
		go func() { // write as fast as the socket takes it (stop closes it)
			defer wg.Done()
			start := time.Now()
			defer func() { stats.add(time.Since(start)) }()
			for i := 0; ctx.Err() == nil; i++ {
				frame := big
				if i%2 == 1 {
					frame = small[i/2%len(small)]
				}
				if err := ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("spammer write: %w", err)
					}
					return
				}
				stats.sent.Add(1)
			}
		}()
	}
	return func() error {
		cancel()
		for _, ws := range conns {
			ws.Close()
		}
		wg.Wait()
		close(errs)
		return <-errs
	}, nil
}
