package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// recordingStore is a memstore that keeps every commit applied to it: the
// pages each commit changed, as the VFS handed them over.
type recordingStore struct {
	*memstore.Store
	mu      sync.Mutex
	commits []vfs.Commit
}

func (s *recordingStore) Apply(c vfs.Commit) error {
	if err := s.Store.Apply(c); err != nil {
		return err
	}
	s.mu.Lock()
	s.commits = append(s.commits, c)
	s.mu.Unlock()
	return nil
}

func (s *recordingStore) last() vfs.Commit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commits[len(s.commits)-1]
}

// logMutator writes an append-only log: "grow" appends n rows of 1 KiB,
// "append" one short row. With no index, a small append touches few pages.
type logMutator struct{}

func (logMutator) Migrate(ctx context.Context, conn *sqlite3.Conn) error {
	return conn.Exec(`CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY, body TEXT NOT NULL)`)
}

func (logMutator) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, args []byte) error {
	switch name {
	case "grow":
		n, err := strconv.Atoi(string(args))
		if err != nil {
			return err
		}
		return sqlrows.Exec(conn, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO log(body) SELECT printf('%.1024c', 'x') FROM n`, n)
	case "append":
		return sqlrows.Exec(conn, `INSERT INTO log(body) VALUES (?)`, string(args))
	}
	return fmt.Errorf("unknown mutation %q", name)
}

func applyOne(t *testing.T, c *engine.Coordinator, m engine.Mutation) {
	t.Helper()
	res, err := c.Apply(context.Background(), []engine.Mutation{m})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) > 0 || len(res.Gaps) > 0 {
		t.Fatalf("%s: %+v", m.ID(), res)
	}
}

// TestDiffOneCommitBehind: the fast-forward diff for a replica one commit
// behind holds exactly the pages that commit changed, however large the
// document, and brings the replica to the coordinator's bytes.
func TestDiffOneCommitBehind(t *testing.T) {
	ctx := context.Background()
	store := &recordingStore{Store: memstore.New()}
	coord, err := engine.OpenCoordinator(ctx, store, logMutator{}, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	applyOne(t, coord, engine.Mutation{ClientID: "w", Seq: 1, Name: "grow", Args: []byte("1000")})
	replica, err := engine.OpenClient(ctx, memstore.New(), pendinglog.NewMemory("r"), logMutator{})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	full, err := coord.Diff(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.Rebase(ctx, full); err != nil {
		t.Fatal(err)
	}

	for i := range 3 {
		applyOne(t, coord, engine.Mutation{ClientID: "w", Seq: uint64(2 + i), Name: "append", Args: []byte("small " + strconv.Itoa(i))})
		lsn := coord.LSN()
		commit := store.last()
		if got, want := commit.LSN, lsn; got != want {
			t.Fatalf("last commit: got LSN %v, want %v", got, want)
		}
		d, err := coord.Diff(lsn - 1)
		if err != nil {
			t.Fatal(err)
		}
		pageNos := func(ps []vfs.Page) []uint32 {
			var out []uint32
			for _, p := range ps {
				out = append(out, p.No)
			}
			return out
		}
		t.Logf("append %d: document of %d pages, commit changed %v, diff holds %v", i, d.PageCount, pageNos(commit.Pages), pageNos(d.Pages))
		if d.PageCount < 250 {
			t.Fatalf("document of %d pages: not grown", d.PageCount)
		}
		if got, want := pageNos(d.Pages), pageNos(commit.Pages); !slices.Equal(got, want) {
			t.Fatalf("diff pages: got %v, want the commit's %v", got, want)
		}
		for j := range d.Pages {
			if !bytes.Equal(d.Pages[j].Data, commit.Pages[j].Data) {
				t.Fatalf("page %d: diff content differs from the commit's", d.Pages[j].No)
			}
		}
		if n := len(d.Pages); n < 1 || n > 3 {
			t.Fatalf("a one-row insert: diff of %d pages, want 1 to 3", n)
		}
		if got, want := d.PageCount, commit.PageCount; got != want {
			t.Fatalf("page count: got %v, want %v", got, want)
		}
		if got, want := d.From, lsn-1; got != want {
			t.Fatalf("from: got %v, want %v", got, want)
		}
		if err := replica.Rebase(ctx, d); err != nil {
			t.Fatal(err)
		}
		got, _ := replica.Database().Bytes()
		want, _ := coord.Database().Bytes()
		if !bytes.Equal(got, want) {
			t.Fatalf("append %d: replica differs from the coordinator after the one-commit diff", i)
		}
	}
}
