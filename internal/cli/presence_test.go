package cli

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/server"
)

func TestPresenceFlags(t *testing.T) {
	parse := func(args ...string) server.PresenceConfig {
		t.Helper()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var pf presenceFlags
		pf.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		var cfg server.Config
		pf.apply(&cfg)
		return cfg.Presence
	}
	if got, want := parse(), (server.PresenceConfig{MaxBytes: 1024, Timeout: 30 * time.Second, Rate: 10, Burst: 20, MaxPeers: 100}); got != want {
		t.Fatalf("defaults: got %+v, want %+v", got, want)
	}
	got := parse("--presence-max-bytes", "4096", "--presence-timeout", "2s", "--presence-rate", "3", "--presence-burst", "6",
		"--presence-max-peers", "20", "--presence-readers=false")
	if want := (server.PresenceConfig{MaxBytes: 4096, Timeout: 2 * time.Second, Rate: 3, Burst: 6, MaxPeers: 20, DenyReaders: true}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got := parse("--presence=false"); !got.Disabled {
		t.Fatalf("--presence=false: got %+v", got)
	}
}
