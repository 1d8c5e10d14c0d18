package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/engine"
)

// clientFlags are the flags every client subcommand takes.
type clientFlags struct {
	url     string
	doc     string
	state   string
	token   string
	timeout time.Duration
	lazy    bool
	cache   int64 // MiB
}

func parseClient(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*clientFlags, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f clientFlags
	fs.StringVar(&f.url, "url", "", "coordinator address, e.g. http://127.0.0.1:8080 (required); several of one cluster, comma-separated, are tried in turn")
	fs.StringVar(&f.doc, "doc", "", "document ID (required)")
	fs.StringVar(&f.state, "state", "", "directory keeping this replica, its mutator and the mutator's compiled code between runs (default: in memory); mutate queues in it while the coordinator is unreachable (exit 4)")
	fs.StringVar(&f.token, "token", "", "access token for the coordinator")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after this long")
	fs.BoolVar(&f.lazy, "lazy", false, "fetch only the pages the command reads instead of the whole document (for a large one); the pages are not kept in --state")
	fs.Int64Var(&f.cache, "cache-mib", client.DefaultCacheBytes>>20, "with --lazy, the most MiB of pages held at once")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, usageError{err.Error()}
	}
	if f.url == "" || f.doc == "" {
		return nil, nil, usagef("%s needs --url and --doc", name)
	}
	if f.cache <= 0 {
		return nil, nil, usagef("--cache-mib must be positive, got %d", f.cache)
	}
	return &f, fs.Args(), nil
}

// replica is an open document replica for one command.
type replica struct {
	*client.Doc
	// offline is set when the coordinator could not be reached and the
	// replica was opened from --state alone, without a URL.
	offline bool
	// unreachable is why the coordinator could not be reached, if offline.
	unreachable error

	mu       sync.Mutex
	rejected map[uint64]*engine.RejectedError // by seq, as the coordinator said
}

// rejection returns what the coordinator said rejecting seq, or nil.
func (r *replica) rejection(seq uint64) *engine.RejectedError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected[seq]
}

// close closes the replica, first telling stderr of the mutations queued by
// earlier commands that the coordinator rejected while this one ran (all
// but the seq given, which the command reports itself).
func (r *replica) close(stderr io.Writer, except uint64) {
	r.mu.Lock()
	seqs := slices.Sorted(maps.Keys(r.rejected))
	for _, seq := range seqs {
		if seq != except {
			fmt.Fprintf(stderr, "sqlsync: the coordinator rejected queued mutation %d (%s): %s\n", seq, r.rejected[seq].Name, r.rejected[seq].Message)
		}
	}
	r.mu.Unlock()
	r.Close()
}

// open opens the replica; the command then waits until it is in sync with
// the coordinator. --url may list several coordinators of a cluster,
// comma-separated: the first that answers says which mutator the document
// runs, and the replica moves to the next when one will not have it.
//
// With offlineOK and --state, a coordinator that cannot be reached is not
// an error if the state directory keeps the document's mutator from an
// earlier command: the replica opens without a URL (replica.offline), to
// run and queue mutations that a later command pushes.
func (f *clientFlags) open(parent context.Context, offlineOK bool, stderr io.Writer) (*replica, context.Context, context.CancelFunc, error) {
	var urls []string
	for _, raw := range strings.Split(f.url, ",") {
		u, err := syncURL(strings.TrimSpace(raw))
		if err != nil {
			return nil, nil, nil, err
		}
		urls = append(urls, u)
	}
	ctx, cancel := context.WithTimeout(parent, f.timeout)
	// Run the document's own mutator, as the coordinator announces it.
	var mut engine.Mutator
	var hash string
	var err error
	unreachable := true
	for _, u := range urls {
		base, _ := url.Parse(u)
		base.Scheme = map[string]string{"ws": "http", "wss": "https"}[base.Scheme]
		if mut, hash, err = documentMutator(ctx, base, f.doc, f.state); err == nil {
			break
		}
		var ue unreachableError
		unreachable = unreachable && errors.As(err, &ue)
	}
	r := &replica{rejected: map[uint64]*engine.RejectedError{}}
	if err != nil && unreachable && offlineOK && f.state != "" {
		// The wait for the coordinator may have used up the time: the
		// local work gets its own.
		cancel()
		ctx, cancel = context.WithTimeout(parent, f.timeout)
		var ok bool
		var cerr error
		mut, hash, ok, cerr = cachedMutator(ctx, f.state, f.doc)
		switch {
		case cerr != nil:
			err = fmt.Errorf("%w; and the mutator kept in --state: %w", err, cerr)
		case !ok:
			err = fmt.Errorf("%w (and --state %s keeps no mutator of document %q to run it offline)", err, f.state, f.doc)
		default:
			r.offline, r.unreachable, err = true, err, nil
			urls = nil
		}
	}
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	opts := client.Options{
		DocID: f.doc, StateDir: f.state, Token: f.token,
		Mutator: mut, MutatorHash: hash,
		Logger: slog.New(slog.DiscardHandler),
		Lazy:   f.lazy, CacheBytes: f.cache << 20,
	}
	if len(urls) > 0 {
		opts.URL, opts.URLs = urls[0], urls[1:]
	}
	// Installed before the replica connects, so that no rejection of a
	// mutation an earlier command queued goes unreported.
	shown := -1 // the tenth of the download last shown
	opts.Watch = func(e client.Event) {
		if e.Rejected != nil {
			r.mu.Lock()
			r.rejected[e.Rejected.Seq] = e.Rejected
			r.mu.Unlock()
		}
		if p := e.Progress; p != nil {
			tenth := int(p.Pages * 10 / max(p.TotalPages, 1))
			switch {
			case p.Resumed:
				fmt.Fprintf(stderr, "sqlsync: resuming the download of %s at %s\n", f.doc, progressText(p))
			case p.Done:
				fmt.Fprintf(stderr, "sqlsync: downloaded %s: %s\n", f.doc, mib(p.Bytes))
				shown = -1
				return
			case tenth == shown:
				return
			default:
				fmt.Fprintf(stderr, "sqlsync: downloading %s: %s\n", f.doc, progressText(p))
			}
			shown = tenth
		}
	}
	doc, err := client.Open(ctx, opts)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	r.Doc = doc
	return r, ctx, cancel, nil
}

// progressText says how far a download has come: "45% (29.0 of 64.1 MiB)".
func progressText(p *client.Progress) string {
	return fmt.Sprintf("%d%% (%s of %s)", p.Pages*100/max(p.TotalPages, 1), mib(p.Bytes), mib(p.TotalBytes))
}

// mib formats a byte count in MiB.
func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func mutate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, rest, err := parseClient("mutate", args, stderr, nil)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return usagef("mutate takes NAME and ARGS_JSON, got %d arguments", len(rest))
	}
	if !json.Valid([]byte(rest[1])) {
		return usagef("ARGS_JSON is not valid JSON: %s", rest[1])
	}
	doc, ctx, cancel, err := f.open(ctx, true, stderr)
	if err != nil {
		return err
	}
	defer cancel()
	var seq uint64
	defer func() { doc.close(stderr, seq) }()
	if doc.offline {
		// The document as this replica last saw it, plus what is queued.
		if seq, err = doc.Mutate(ctx, rest[0], []byte(rest[1])); err != nil {
			return rejectedError{err}
		}
		s := doc.Status()
		fmt.Fprintf(stdout, "{\"seq\":%d,\"lsn\":%d,\"queued\":true,\"pending\":%d}\n", seq, s.LSN, s.Pending)
		return queuedError{seq: seq, pending: s.Pending, state: f.state, err: doc.unreachable}
	}
	// Catch up first: the mutation must run on the document as it is, not
	// on an empty replica that has not heard from the coordinator yet.
	if err := doc.WaitSynced(ctx); err != nil {
		return err
	}
	if seq, err = doc.Mutate(ctx, rest[0], []byte(rest[1])); err != nil {
		return rejectedError{err}
	}
	if err := doc.WaitSynced(ctx); err != nil {
		return fmt.Errorf("mutation %d is saved locally but not confirmed: %w", seq, err)
	}
	if rej := doc.rejection(seq); rej != nil {
		return rejectedError{fmt.Errorf("coordinator rejected %s: %s", rest[0], rej.Message)}
	}
	fmt.Fprintf(stdout, "{\"seq\":%d,\"lsn\":%d}\n", seq, doc.Status().LSN)
	return nil
}

func query(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, rest, err := parseClient("query", args, stderr, nil)
	if err != nil {
		return err
	}
	if len(rest) < 1 || len(rest) > 2 {
		return usagef("query takes SQL and optional PARAMS_JSON (an array), got %d arguments", len(rest))
	}
	var params []any
	if len(rest) == 2 {
		if err := json.Unmarshal([]byte(rest[1]), &params); err != nil {
			return usagef("PARAMS_JSON must be a JSON array: %v", err)
		}
		for i, p := range params {
			if n, ok := p.(float64); ok && n == float64(int64(n)) {
				params[i] = int64(n)
			}
		}
	}
	doc, ctx, cancel, err := f.open(ctx, false, stderr)
	if err != nil {
		return err
	}
	defer cancel()
	defer doc.close(stderr, 0)
	if err := doc.WaitSynced(ctx); err != nil {
		return err
	}
	rows, err := doc.Query(ctx, rest[0], params...)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(rows.Values))
	for _, r := range rows.Values {
		obj := make(map[string]any, len(r))
		for i, v := range r {
			if b, ok := v.([]byte); ok {
				v = base64.StdEncoding.EncodeToString(b)
			}
			obj[rows.Columns[i]] = v
		}
		out = append(out, obj)
	}
	enc := json.NewEncoder(stdout)
	return enc.Encode(out)
}

func dump(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var raw bool
	f, rest, err := parseClient("dump", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&raw, "raw", false, "write the database file's bytes instead of SQL text")
	})
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usagef("dump takes no arguments, got %q", rest)
	}
	doc, ctx, cancel, err := f.open(ctx, false, stderr)
	if err != nil {
		return err
	}
	defer cancel()
	defer doc.close(stderr, 0)
	if err := doc.WaitSynced(ctx); err != nil {
		return err
	}
	if raw {
		b, err := doc.Engine().Database().Bytes()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	return doc.Engine().Dump(stdout)
}
