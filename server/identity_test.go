package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

func helloSecret(docID, clientID, secret string) protocol.Frame {
	f := hello(docID, clientID)
	f.Hello.Secret = secret
	return f
}

// waitState waits until d is in state.
func waitState(t *testing.T, d *client.Doc, state client.State) {
	t.Helper()
	servertest.WaitState(t, d, state, testTimeout)
}

// TestSpoofedClientID: a client that says Hello with another client's ID,
// without that client's secret or with a wrong one, is refused with
// "identity" before it can push; the victim's pending mutations, pushed
// after the attempts, are applied exactly once; the binding survives a
// restart of the coordinator and the victim's own restarts.
func TestSpoofedClientID(t *testing.T) {
	dataDir := t.TempDir()
	ts := startServer(t, Config{DataDir: dataDir})
	state := t.TempDir()
	victim := openClient(t, ts, "doc", clientOptions{stateDir: state})
	id := victim.ClientID()
	mutate(t, victim, "add", testmutator.Args{ID: "a1", Title: "one"})
	waitSynced(t, victim) // the coordinator has bound id to the victim's secret

	victim.SetOnline(false)
	waitState(t, victim, client.Offline)
	mutate(t, victim, "add", testmutator.Args{ID: "a2", Title: "two"})
	mutate(t, victim, "add", testmutator.Args{ID: "a3", Title: "three"})

	// Before the binding, such a spoofer was welcomed and its push of the
	// victim's next seqs was applied under the victim's ID: the victim's
	// own seqs 2 and 3 were then dropped as resends.
	for _, secret := range []string{"", "0123456789abcdef0123456789abcdef"} {
		c := dialRaw(t, ts)
		c.Send(helloSecret("doc", id, secret))
		c.Send(protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{
			{Seq: 2, Name: "add", Args: testmutator.Args{ID: "evil2", Title: "spoofed"}.Encode()},
			{Seq: 3, Name: "add", Args: testmutator.Args{ID: "evil3", Title: "spoofed"}.Encode()},
		}}})
		c.ExpectRefused(protocol.CodeIdentity, "bound to another secret")
	}

	victim.SetOnline(true)
	waitConverged(t, ts, "doc", victim)
	if got, want := queryString(t, victim, `SELECT id, title FROM items ORDER BY id`), "[[a1 one] [a2 two] [a3 three]]"; got != want {
		t.Fatalf("items %s, want %s", got, want)
	}
	ts.coordinator(t, "doc", func(c *engine.Coordinator) {
		if last, err := c.LastSeq(id); err != nil || last != 3 {
			t.Fatalf("last seq of the victim %d (%v), want 3", last, err)
		}
	})

	// The victim reopens its state (same ID, same secret) and the
	// coordinator restarts: the binding holds on both sides.
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ts = startServer(t, Config{DataDir: dataDir})
	c := dialRaw(t, ts)
	c.Send(hello("doc", id))
	c.ExpectRefused(protocol.CodeIdentity, "the hello has none")

	victim = openClient(t, ts, "doc", clientOptions{stateDir: state})
	if victim.ClientID() != id {
		t.Fatalf("reopened replica has client ID %s, want %s", victim.ClientID(), id)
	}
	mutate(t, victim, "add", testmutator.Args{ID: "a4", Title: "four"})
	waitConverged(t, ts, "doc", victim)
	if got, want := queryString(t, victim, `SELECT count(*) FROM items`), "[[4]]"; got != want {
		t.Fatalf("%s items, want %s", got, want)
	}
}

// TestIdentityMigration: a client ID first seen without a secret (a client
// older than Hello.Secret) is served unbound, and can be claimed once by a
// Hello with a secret; from then on that secret is required.
func TestIdentityMigration(t *testing.T) {
	ts := startServer(t, Config{})

	c := dialRaw(t, ts)
	c.Send(hello("doc", "old-client"))
	c.ExpectWelcome()
	c.Send(pushFrame(1, "add", testmutator.Args{ID: "x", Title: "old"}))
	c.WS.Close()

	c = dialRaw(t, ts)
	c.Send(hello("doc", "old-client"))
	c.ExpectWelcome() // still unbound
	c.WS.Close()

	const secret = "fedcba9876543210fedcba9876543210"
	c = dialRaw(t, ts)
	c.Send(helloSecret("doc", "old-client", secret))
	c.ExpectWelcome() // claimed
	c.WS.Close()

	for _, s := range []string{"", "another secret"} {
		c = dialRaw(t, ts)
		c.Send(helloSecret("doc", "old-client", s))
		c.ExpectRefused(protocol.CodeIdentity, "bound to another secret")
	}
	c = dialRaw(t, ts)
	c.Send(helloSecret("doc", "old-client", secret))
	c.ExpectWelcome()

	// Bindings are per document: the same ID is free in another one.
	c = dialRaw(t, ts)
	c.Send(helloSecret("other", "old-client", "another secret"))
	c.ExpectWelcome()
}

// TestLostSecretStopsReplica: a replica whose state lost its secret (here
// replaced) is refused for good, State Stopped, with a LastError saying so;
// its pending mutation is not applied under its ID.
func TestLostSecretStopsReplica(t *testing.T) {
	ts := startServer(t, Config{})
	state := t.TempDir()
	d := openClient(t, ts, "doc", clientOptions{stateDir: state})
	mutate(t, d, "add", testmutator.Args{ID: "a1", Title: "one"})
	waitSynced(t, d)
	id := d.ClientID()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	name := filepath.Join(state, "doc", "identity")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var kept struct {
		ClientID string `json:"client_id"`
		Secret   string `json:"secret"`
	}
	if err := json.Unmarshal(b, &kept); err != nil || kept.ClientID != id || len(kept.Secret) != 32 {
		t.Fatalf("identity file %s: %q (%v)", name, b, err)
	}
	kept.Secret = strings.Repeat("0", 32)
	if b, err = json.Marshal(kept); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}

	d = openClient(t, ts, "doc", clientOptions{stateDir: state})
	mutate(t, d, "add", testmutator.Args{ID: "a2", Title: "two"})
	msg := waitStopped(t, d, testTimeout)
	if !strings.Contains(msg, protocol.CodeIdentity) || !strings.Contains(msg, "bound to another secret") {
		t.Fatalf("LastError %q does not say the identity was refused", msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := d.WaitSynced(ctx); err == nil || !strings.Contains(err.Error(), "identity") {
		t.Fatalf("WaitSynced: %v, want the identity refusal", err)
	}
	ts.coordinator(t, "doc", func(c *engine.Coordinator) {
		if last, err := c.LastSeq(id); err != nil || last != 1 {
			t.Fatalf("last seq %d (%v), want 1", last, err)
		}
	})
}
