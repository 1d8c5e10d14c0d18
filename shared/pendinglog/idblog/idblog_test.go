//go:build js

package idblog

import (
	"context"
	"fmt"
	"syscall/js"
	"testing"
	"time"

	"github.com/hack-pad/go-indexeddb/idb"
	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog/logtest"
)

// TestBrowser runs the pending log contract over the real IndexedDB (in
// Chromium: see js/test/gowasm).
func TestBrowser(t *testing.T) {
	n := 0
	logtest.Run(t, func(t *testing.T) logtest.Opener {
		n++
		name := fmt.Sprintf("gotest-log-%d-%d", time.Now().UnixNano(), n)
		return func(t *testing.T) logtest.Log {
			l, err := Open(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
	})
}

// The browser's IndexedDB replicas bind their client ID too.
var _ client.SecretKeeper = (*Log)(nil)

// TestSecret: a new log gets a secret, which survives reopening with its
// client ID; a log made before secrets were kept gets one and keeps it.
func TestSecret(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("gotest-secret-%d", time.Now().UnixNano())
	defer Delete(ctx, name)
	l, err := Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	id, secret := l.ClientID(), l.j.secret
	if s, err := l.ClientSecret(); err != nil || len(s) != 32 || s == id {
		t.Fatalf("secret %q, %v: want 32 hex digits of its own", s, err)
	}
	l.Close()
	if l, err = Open(ctx, name); err != nil {
		t.Fatal(err)
	}
	if s, _ := l.ClientSecret(); l.ClientID() != id || s != secret {
		t.Fatalf("reopened: ID %q secret %q, want %q %q", l.ClientID(), s, id, secret)
	}
	// As if from before secrets: the ID stays, a secret is added.
	err = l.j.writeStore(metaStore, func(meta *idb.ObjectStore) error {
		_, err := meta.Delete(js.ValueOf(secretKey))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err = Open(ctx, name); err != nil {
		t.Fatal(err)
	}
	migrated, _ := l.ClientSecret()
	l.Close()
	if l.ClientID() != id || migrated == "" || migrated == secret {
		t.Fatalf("migrated: ID %q secret %q, want %q and a new secret", l.ClientID(), migrated, id)
	}
	if l, err = Open(ctx, name); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if s, _ := l.ClientSecret(); s != migrated {
		t.Fatalf("the migrated secret did not persist: %q, want %q", s, migrated)
	}
}
