package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sqlsync-go/sqlsync/server"
)

// maxInspectAnswer bounds the inspector answer the command reads.
const maxInspectAnswer = 32 << 20

// inspect reads the coordinator's inspector API (docs/inspector.md): the
// open documents, one document's clients, commits and rejections, or a
// read-only query on it.
func inspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rawURL := fs.String("url", "", "coordinator address, e.g. http://127.0.0.1:8080 (required)")
	doc := fs.String("doc", "", "document to show (default: list the open documents)")
	token := fs.String("token", "", "token with role admin (or env SQLSYNC_TOKEN); none in open development mode")
	asJSON := fs.Bool("json", false, "print the inspector API's JSON answer as it is")
	maxRows := fs.Int("max-rows", 0, "with SQL: return at most this many rows (default and most: the coordinator's limit, 1000)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sqlsync inspect --url URL [--token T] [--doc ID [SQL]] [--json]

Without --doc, lists the documents open on the coordinator; with --doc, shows
one: its clients and their lag, recent commits and rejections, its mutator;
with SQL too, runs that one read-only statement on the document's current
state. Needs a token with role admin when the coordinator has a token key.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *rawURL == "" {
		return usagef("inspect needs --url")
	}
	if fs.NArg() > 1 {
		return usagef("inspect takes at most one argument, the SQL (quote it), got %d", fs.NArg())
	}
	if fs.NArg() == 1 && *doc == "" {
		return usagef("inspect SQL needs --doc: the document to query")
	}
	if *maxRows < 0 {
		return usagef("--max-rows must not be negative, got %d", *maxRows)
	}
	base, err := inspectBase(*rawURL)
	if err != nil {
		return err
	}
	if *token == "" {
		*token = os.Getenv("SQLSYNC_TOKEN")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := inspectClient{base: base, token: *token}
	switch {
	case *doc == "":
		var o server.InspectOverview
		raw, err := c.call(ctx, http.MethodGet, "docs", nil, &o)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(raw)
			return err
		}
		return printOverview(stdout, o)
	case fs.NArg() == 0:
		var d server.InspectDoc
		raw, err := c.call(ctx, http.MethodGet, "docs/"+url.PathEscape(*doc), nil, &d)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(raw)
			return err
		}
		return printDoc(stdout, d)
	default:
		var res server.InspectQueryResult
		req := server.InspectQueryRequest{SQL: fs.Arg(0), MaxRows: *maxRows}
		raw, err := c.call(ctx, http.MethodPost, "docs/"+url.PathEscape(*doc)+"/query", req, &res)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(raw)
			return err
		}
		return printResult(stdout, stderr, res)
	}
}

// inspectBase turns a coordinator address (http, https, ws or wss) into
// the base URL of its inspector API.
func inspectBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, usagef("bad --url %q: want http://host:port", raw)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return nil, usagef("bad --url %q: scheme must be http or https", raw)
	}
	u.Path, u.RawQuery, u.Fragment = strings.TrimSuffix(server.InspectAPIPath, "/"), "", ""
	return u, nil
}

// inspectClient calls the inspector API.
type inspectClient struct {
	base  *url.URL
	token string
}

// call sends a request to path under the API (body as JSON, if not nil),
// decodes the answer into out and returns it raw. An error answer is an
// error with the coordinator's reason.
func (c inspectClient) call(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	u := c.base.String() + "/" + path
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("inspect: encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxInspectAnswer))
	if err != nil {
		return nil, fmt.Errorf("inspect: read the answer of %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw[:min(len(raw), 500)]))
		}
		return nil, fmt.Errorf("inspect: %s (HTTP %d from %s)", e.Error, resp.StatusCode, u)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // a console value prints as the coordinator wrote it
	if err := dec.Decode(out); err != nil {
		return nil, fmt.Errorf("inspect: the answer of %s is not the inspector's JSON: %w", u, err)
	}
	return raw, nil
}

// table writes rows under a header, columns aligned.
func table(w io.Writer, header string, rows [][]any) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, v := range r {
			cells[i] = fmt.Sprint(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// plural says n things: "1 row", "2 rows".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// shortHash is a module hash as the inspector's page shows it.
func shortHash(h string) string {
	if h == "" {
		return "built-in"
	}
	return h[:min(len(h), 12)]
}

func printOverview(w io.Writer, o server.InspectOverview) error {
	mode := ""
	if o.OpenMode {
		mode = " (open development mode)"
	}
	fmt.Fprintf(w, "%s open, %s%s\n", plural(o.Total, "document"), plural(o.Connections, "connection"), mode)
	if len(o.Documents) == 0 {
		return nil
	}
	var rows [][]any
	for _, d := range o.Documents {
		rows = append(rows, []any{d.ID, d.LSN, d.PageCount, d.Bytes, d.Clients, shortHash(d.MutatorHash)})
	}
	return table(w, "DOCUMENT\tLSN\tPAGES\tBYTES\tCLIENTS\tMUTATOR", rows)
}

func printDoc(w io.Writer, d server.InspectDoc) error {
	m := "built-in Go mutator"
	if d.Mutator.Kind == "wasm" {
		m = fmt.Sprintf("WebAssembly module %s, ABI version %d, %d bytes", d.Mutator.Hash, d.Mutator.ABIVersion, d.Mutator.Bytes)
	}
	fmt.Fprintf(w, "document %s\nLSN %d, %d pages (%d bytes), schema version %d\nmutator: %s\n\n", d.ID, d.LSN, d.PageCount, d.Bytes, d.SchemaVersion, m)
	fmt.Fprintf(w, "clients: %d\n", d.Clients)
	var rows [][]any
	for _, c := range d.ClientList {
		remote := c.Remote
		if c.Forwarded {
			remote += " (forwarded)"
		}
		rows = append(rows, []any{c.ClientID, remote, c.Role, c.SentLSN, c.Lag, c.Pending, c.LastSeq, c.ConnectedAt.Format(time.RFC3339)})
	}
	if len(rows) > 0 {
		if err := table(w, "CLIENT\tREMOTE\tROLE\tSENT LSN\tLAG\tPENDING\tLAST SEQ\tCONNECTED", rows); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\npresences: %d\n", d.PresenceTotal)
	rows = nil
	for _, p := range d.Presences {
		role := "write"
		if p.ReadOnly {
			role = "read"
		}
		rows = append(rows, []any{p.ID, p.ClientID, role, string(p.State), p.Expires.Format(time.RFC3339)})
	}
	if len(rows) > 0 {
		if err := table(w, "PRESENCE\tCLIENT\tROLE\tSTATE\tEXPIRES", rows); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nrecent commits: %d\n", len(d.Commits))
	rows = nil
	for _, c := range d.Commits {
		var names []string
		for _, m := range c.Mutations {
			names = append(names, fmt.Sprintf("%s(%s/%d)", m.Name, m.Client, m.Seq))
		}
		if c.More > 0 {
			names = append(names, fmt.Sprintf("+%d more", c.More))
		}
		rows = append(rows, []any{c.LSN, c.Applied, c.Rejected, c.PagesChanged, fmt.Sprintf("%.1fms", c.DurationMS), strings.Join(names, " ")})
	}
	if len(rows) > 0 {
		if err := table(w, "LSN\tAPPLIED\tREJECTED\tPAGES CHANGED\tTOOK\tMUTATIONS", rows); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nrecent rejections: %d\n", len(d.Rejections))
	rows = nil
	for _, r := range d.Rejections {
		rows = append(rows, []any{r.LSN, r.Client, r.Seq, r.Name, strings.ReplaceAll(r.Message, "\n", " ")})
	}
	if len(rows) > 0 {
		return table(w, "LSN\tCLIENT\tSEQ\tMUTATION\tMESSAGE", rows)
	}
	return nil
}

func printResult(w, stderr io.Writer, res server.InspectQueryResult) error {
	rows := make([][]any, len(res.Rows))
	for i, r := range res.Rows {
		rows[i] = make([]any, len(r))
		for j, v := range r {
			switch v := v.(type) {
			case nil:
				rows[i][j] = "NULL"
			case map[string]any: // a blob
				rows[i][j] = fmt.Sprintf("x'%v'", v["blob_hex"])
			case string:
				rows[i][j] = strings.ReplaceAll(v, "\n", `\n`)
			default:
				rows[i][j] = v
			}
		}
	}
	if err := table(w, strings.Join(res.Columns, "\t"), rows); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s at LSN %d", plural(len(res.Rows), "row"), res.LSN)
	if res.Truncated {
		fmt.Fprintf(stderr, " (truncated at the %s limit)", res.TruncatedBy)
	}
	fmt.Fprintln(stderr)
	return nil
}
