package cli_test

import (
	"strings"
	"syscall"
	"testing"

	"github.com/sqlsync-go/sqlsync/vfs/jetstore/jetstoretest"
)

// TestServeOnJetStream: with --nats, a coordinator keeps the documents'
// pages in JetStream, not in its data directory. Killed with SIGKILL, it is
// replaced by a coordinator on another, empty data directory that serves
// every acknowledged mutation; writing goes on there.
func TestServeOnJetStream(t *testing.T) {
	url := jetstoretest.Listen(t)
	first := startServe(t, freeAddr(t), t.TempDir(), "--nats", url)
	for _, id := range []string{"1", "2", "3"} {
		runOK(t, "mutate", "--url", first.url(), "--doc", "groceries.list", "add", `{"id":"`+id+`","title":"item `+id+`"}`)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done

	second := startServe(t, freeAddr(t), t.TempDir(), "--nats", url)
	runOK(t, "mutate", "--url", second.url(), "--doc", "groceries.list", "add", `{"id":"4","title":"item 4"}`)
	out := runOK(t, "query", "--url", second.url(), "--doc", "groceries.list", "SELECT id FROM items ORDER BY id")
	if want := `[{"id":"1"},{"id":"2"},{"id":"3"},{"id":"4"}]`; strings.TrimSpace(out) != want {
		t.Fatalf("after the first coordinator was killed, the second serves %s, want %s", out, want)
	}
}
