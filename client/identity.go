package client

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"github.com/hack-pad/hackpadfs"
	"github.com/sqlsync-go/sqlsync/vfs/fsync"
)

// SecretKeeper is implemented by a PendingLog (Options.PendingLog) that
// also keeps the client's identity secret, durably, beside its client ID.
// The coordinator binds a client ID to the first secret it sees with it,
// so that no one else can push under that ID; a replica that loses its
// secret is refused (State Stopped) and must start afresh. A PendingLog
// without this method sends no secret: its client ID stays unbound, as a
// client older than the secret's protocol field was.
type SecretKeeper interface {
	ClientSecret() (string, error)
}

// identityFile, beside the pending log in a state directory, holds the
// client's secret and the ID it belongs to.
const identityFile = "identity"

type identity struct {
	ClientID string `json:"client_id"`
	Secret   string `json:"secret"`
}

// newSecret returns a fresh random secret: 128 bits, in hex.
func newSecret() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// loadSecret returns the secret kept in the file name on fsys for
// clientID, creating it (written to a temporary file, synced, renamed into
// place) if the file is missing, unreadable, or holds another ID's secret
// (the pending log, and so the client ID, was made anew).
func loadSecret(fsys hackpadfs.FS, name, clientID string) (string, error) {
	if b, err := hackpadfs.ReadFile(fsys, name); err == nil {
		var id identity
		if json.Unmarshal(b, &id) == nil && id.ClientID == clientID && id.Secret != "" {
			return id.Secret, nil
		}
	} else if !errors.Is(err, hackpadfs.ErrNotExist) {
		return "", fmt.Errorf("read client secret: %w", err)
	}
	id := identity{ClientID: clientID, Secret: newSecret()}
	b, err := json.Marshal(id)
	if err != nil {
		return "", err
	}
	tmp := name + ".tmp"
	f, err := hackpadfs.OpenFile(fsys, tmp, hackpadfs.FlagReadWrite|hackpadfs.FlagCreate|hackpadfs.FlagTruncate, 0o600)
	if err != nil {
		return "", fmt.Errorf("write client secret: %w", err)
	}
	_, err = hackpadfs.WriteFile(f, b)
	if err == nil {
		err = fsync.File(f)
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = hackpadfs.Rename(fsys, tmp, name)
	}
	if err == nil {
		// The coordinator binds the ID to this secret on the next
		// Hello: a rename lost in a crash would lock the replica out.
		err = fsync.Dir(fsys, path.Dir(name))
	}
	if err != nil {
		return "", fmt.Errorf("write client secret: %w", err)
	}
	return id.Secret, nil
}
