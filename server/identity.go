package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"

	"github.com/hack-pad/hackpadfs"
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
	fsys  hackpadfs.FS
	name  string

	mu     sync.Mutex
	f      hackpadfs.File
	size   int64
	hashes map[string][]byte
}

type identityLine struct {
	Client string `json:"client"`
	Hash   string `json:"hash"`
}

func openIdentities(fsys hackpadfs.FS, name, docID string) (*identities, error) {
	_, err := hackpadfs.Stat(fsys, name)
	created := errors.Is(err, hackpadfs.ErrNotExist)
	if err != nil && !created {
		return nil, fmt.Errorf("open client identities: %w", err)
	}
	f, err := hackpadfs.OpenFile(fsys, name, hackpadfs.FlagReadWrite|hackpadfs.FlagCreate, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open client identities: %w", err)
	}
	if created {
		// Lines synced into a file whose directory entry is not durable
		// could vanish with it in a crash, and with them the bindings of
		// clients already welcomed.
		if err := syncDir(fsys, path.Dir(name)); err != nil {
			f.Close()
			return nil, fmt.Errorf("open client identities: %w", err)
		}
	}
	ids := &identities{docID: docID, fsys: fsys, name: name, f: f, hashes: map[string][]byte{}}
	if err := ids.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("open client identities %s: %w", name, err)
	}
	return ids, nil
}

func (ids *identities) load() error {
	info, err := ids.f.Stat()
	if err != nil {
		return err
	}
	data := make([]byte, info.Size())
	n, err := hackpadfs.ReadAtFile(ids.f, data, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	data = data[:n]
	off := 0
	for {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break // a torn or empty tail
		}
		var l identityLine
		if err := json.Unmarshal(data[off:off+i], &l); err != nil {
			return fmt.Errorf("corrupt line at byte %d: %v", off, err)
		}
		h, err := hex.DecodeString(l.Hash)
		if err != nil || len(h) != sha256.Size || l.Client == "" {
			return fmt.Errorf("corrupt line at byte %d", off)
		}
		ids.hashes[l.Client] = h
		off += i + 1
	}
	ids.size = int64(off)
	if off < len(data) {
		if err := hackpadfs.TruncateFile(ids.f, ids.size); err != nil {
			return fmt.Errorf("cut torn tail: %w", err)
		}
	}
	return nil
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
	line, err := json.Marshal(identityLine{Client: clientID, Hash: hex.EncodeToString(h)})
	if err != nil {
		return false, err
	}
	line = append(line, '\n')
	if _, err := hackpadfs.WriteAtFile(ids.f, line, ids.size); err != nil {
		return false, fmt.Errorf("bind client %s: %w", clientID, err)
	}
	if err := hackpadfs.SyncFile(ids.f); err != nil && !errors.Is(err, hackpadfs.ErrNotImplemented) {
		return false, fmt.Errorf("bind client %s: sync: %w", clientID, err)
	}
	ids.size += int64(len(line))
	ids.hashes[clientID] = h
	return true, nil
}

func (ids *identities) close() error {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	return ids.f.Close()
}

// syncDir makes a creation in dir durable, on file systems whose
// directories can be synced.
func syncDir(fsys hackpadfs.FS, dir string) error {
	d, err := hackpadfs.OpenFile(fsys, dir, hackpadfs.FlagReadOnly, 0)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	err = hackpadfs.SyncFile(d)
	if errors.Is(err, hackpadfs.ErrNotImplemented) || errors.Is(err, hackpadfs.ErrInvalid) || errors.Is(err, errors.ErrUnsupported) {
		err = nil // the file system cannot sync directories
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
