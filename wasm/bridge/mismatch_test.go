package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// bytesModule is the todo mutator posing as the module with the given
// bytes, for a coordinator to announce their hash.
type bytesModule struct {
	testmutator.Mutator
	b []byte
}

func (m bytesModule) Hash() string {
	sum := sha256.Sum256(m.b)
	return hex.EncodeToString(sum[:])
}

func (m bytesModule) Bytes() []byte { return m.b }

// TestMutatorMismatchStatus: a document opened with a module whose hash is
// not the coordinator's reports mutatorMismatch, the coordinator's hash and
// a lastError naming both in its status JSON; with the coordinator's own
// module it does not.
func TestMutatorMismatchStatus(t *testing.T) {
	coordModule := []byte("the coordinator's module")
	url := startCoordinator(t, bytesModule{b: coordModule})
	theirs := bytesModule{b: coordModule}.Hash()

	old := ModuleRuntime
	ModuleRuntime = func(context.Context, Config, *slog.Logger) (engine.Mutator, error) { return testmutator.Mutator{}, nil }
	t.Cleanup(func() { ModuleRuntime = old })

	for _, tc := range []struct {
		name     string
		module   []byte
		mismatch bool
	}{
		{"another module", []byte("an older module"), true},
		{"the coordinator's module", coordModule, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(context.Background(), Config{URL: url, DocID: "doc", Module: tc.module}, State{Kind: "memory"}, slog.New(slog.DiscardHandler), func([]byte) {})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var s Status
			deadline := time.Now().Add(20 * time.Second)
			for {
				if err := json.Unmarshal(d.Status(), &s); err != nil {
					t.Fatal(err)
				}
				if s.CoordinatorMutator != "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no Welcome after 20 s: %+v", s)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got, want := s.CoordinatorMutator, theirs; got != want {
				t.Fatalf("coordinatorMutator: got %q, want %q", got, want)
			}
			if got, want := s.MutatorMismatch, tc.mismatch; got != want {
				t.Fatalf("mutatorMismatch: got %v, want %v (%+v)", got, want, s)
			}
			if tc.mismatch && !strings.Contains(s.LastError, theirs[:12]) {
				t.Fatalf("lastError %q does not name the coordinator's module", s.LastError)
			}
		})
	}
}

// startCoordinator starts a coordinator on loopback whose documents run
// mut, stopped when t ends, and returns its sync URL.
func startCoordinator(t *testing.T, mut engine.Mutator) string {
	t.Helper()
	srv, err := server.New(server.Config{
		DataDir: t.TempDir(),
		Mutator: func(string) engine.Mutator { return mut },
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close(context.Background())
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + server.SyncPath
}
