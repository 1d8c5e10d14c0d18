package cli

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/server"
)

// TestTimeLimitFlags: --mutation-timeout and --batch-timeout reach the
// server's Config; without them, the mutation time limit is 5 s and the
// batch budget is left to the server's default (twice the mutation limit).
func TestTimeLimitFlags(t *testing.T) {
	for _, tt := range []struct {
		args            []string
		mutation, batch time.Duration
	}{
		{nil, 5 * time.Second, 0},
		{[]string{"--batch-timeout", "250ms"}, 5 * time.Second, 250 * time.Millisecond},
		{[]string{"--mutation-timeout", "2s", "--batch-timeout", "3s"}, 2 * time.Second, 3 * time.Second},
	} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var sec securityFlags
		sec.register(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		var cfg server.Config
		if err := sec.apply(&cfg, "127.0.0.1:0"); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if cfg.MutationTimeout != tt.mutation || cfg.BatchTimeout != tt.batch {
			t.Errorf("%v: MutationTimeout %v, BatchTimeout %v; want %v, %v", tt.args, cfg.MutationTimeout, cfg.BatchTimeout, tt.mutation, tt.batch)
		}
	}
}
