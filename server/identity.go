package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// identitiesFile is the file, in a document's directory, binding its
// client IDs to their secrets. It stays on the coordinator: unlike
// __sqlsync_clients it is never replicated.
const identitiesFile = "identities"

// ErrIdentity reports a Hello whose client ID is bound to another secret.
var ErrIdentity = errors.New("client ID is bound to another secret")

// identities binds a document's client IDs to the secrets their clients
// keep: the first Hello with a secret for an ID binds it, and every later
// Hello for that ID must bring the same secret. Only a hash of each secret
// is kept: SHA-256 over the document ID, the client ID and the secret. The
// secrets are 128-bit random strings, so a fast hash is as good as a slow
// one, and binding the IDs in stops a line being moved to another client.
//
// File format: one JSON object per line, {"client": ID, "hash": hex}. Lines
// are appended and synced before the client is welcomed; a torn last line
// (a crash mid-append: that client was never welcomed) is cut off on open.
type identities struct {
	docID string

	mu     sync.Mutex
	f      lineLog
	hashes map[string][]byte
}

type identityLine struct {
	Client string `json:"client"`
	Hash   string `json:"hash"`
}

func openIdentities(open openLines, docID string) (*identities, error) {
	ids := &identities{docID: docID, hashes: map[string][]byte{}}
	f, err := open(identitiesFile, func(b []byte) (bool, error) {
		var l identityLine
		if err := json.Unmarshal(b, &l); err != nil {
			return false, err
		}
		h, err := hex.DecodeString(l.Hash)
		if err != nil || len(h) != sha256.Size || l.Client == "" {
			return false, errors.New("no client or no SHA-256")
		}
		ids.hashes[l.Client] = h
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("open client identities: %w", err)
	}
	ids.f = f
	return ids, nil
}

func (ids *identities) hash(clientID, secret string) []byte {
	h := sha256.New()
	for _, s := range []string{"sqlsync client secret v1", ids.docID, clientID, secret} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return h.Sum(nil)
}

// check admits clientID with secret, binding the ID to the secret if it has
// none yet. A Hello without a secret is admitted, unbound, for an ID with
// none bound (a client older than Hello.Secret); it fails with ErrIdentity
// for an ID with one. bound says whether the ID is now bound.
func (ids *identities) check(clientID, secret string) (bound bool, err error) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	want, ok := ids.hashes[clientID]
	switch {
	case ok && secret == "":
		return true, fmt.Errorf("%w: the hello has none", ErrIdentity)
	case ok:
		if subtle.ConstantTimeCompare(ids.hash(clientID, secret), want) != 1 {
			return true, fmt.Errorf("%w: the hello's does not match", ErrIdentity)
		}
		return true, nil
	case secret == "":
		return false, nil
	}
	h := ids.hash(clientID, secret)
	if err := ids.f.append(identityLine{Client: clientID, Hash: hex.EncodeToString(h)}); err != nil {
		return false, fmt.Errorf("bind client %s: %w", clientID, err)
	}
	ids.hashes[clientID] = h
	return true, nil
}

func (ids *identities) close() error {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	return ids.f.close()
}
