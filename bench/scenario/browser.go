package scenario

import (
	"context"

	"github.com/sqlsync-go/sqlsync/bench/report"
)

// BrowserResults is where the Playwright run of the browser client writes
// its records (same layout as latest.json, scenario 8); the suite merges
// them into its table when the file exists.
const BrowserResults = "bench/results/browser.json"

// runBrowser is scenario 8's placeholder: the browser rows are measured by
// a Playwright script of the browser client, not by this process. Until it
// writes BrowserResults, the rows say so.
func runBrowser(ctx context.Context, e *env) ([]report.Record, error) {
	note := "not measured yet: the Playwright script of the browser client writes " + BrowserResults
	rows := []struct{ id, name, aim string }{
		{"8.cold", "browser cold start to first query (Chromium)", "≤ 1 s"},
		{"8.opfs", "browser mutate p50/p99, OPFS", "report"},
		{"8.idb", "browser mutate p50/p99, IndexedDB", "report"},
	}
	var out []report.Record
	for _, r := range rows {
		rec := report.Record{ID: r.id, Scenario: 8, Name: r.name, Status: report.StatusNotMeasured, Note: note,
			Params: map[string]any{"baseline": "the same SQL through the same wasm SQLite with no sync layer"}}
		if r.aim != "report" {
			rec.Aim = &report.Aim{Text: r.aim}
		}
		out = append(out, rec)
	}
	return out, nil
}
