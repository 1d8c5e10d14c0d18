package engine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/enginetest"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// storeAt returns a store holding what history's commits up to lsn make.
func storeAt(t *testing.T, history []vfs.Commit, lsn uint64) *memstore.Store {
	t.Helper()
	s := memstore.New()
	for _, c := range history {
		if c.LSN > lsn {
			break
		}
		if err := s.Apply(c); err != nil {
			t.Fatalf("replay commit %d: %v", c.LSN, err)
		}
	}
	if s.LSN() != lsn {
		t.Fatalf("history reaches LSN %d, not %d", s.LSN(), lsn)
	}
	return s
}

// checkDiff applies d to a replica at d.From made from history and
// compares the result with the store at d.LSN: a diff must be one version.
func checkDiff(t *testing.T, history []vfs.Commit, d engine.Diff) error {
	t.Helper()
	replica := storeAt(t, history, d.From)
	if d.LSN > d.From {
		if err := replica.Apply(d.Commit); err != nil {
			return fmt.Errorf("apply the diff %d..%d: %w", d.From, d.LSN, err)
		}
	}
	want := storeAt(t, history, d.LSN)
	if got, want := replica.PageCount(), want.PageCount(); got != want {
		return fmt.Errorf("diff %d..%d: page count %d, want %d", d.From, d.LSN, got, want)
	}
	got, exp := make([]byte, vfs.PageSize), make([]byte, vfs.PageSize)
	for no := uint32(1); no <= want.PageCount(); no++ {
		replica.ReadPage(no, got)
		want.ReadPage(no, exp)
		if !bytes.Equal(got, exp) {
			return fmt.Errorf("diff %d..%d: page %d is not the page at LSN %d", d.From, d.LSN, no, d.LSN)
		}
	}
	return nil
}

// slowReader reads a recordingStore as a reader of a large document would,
// letting commits through: every 256th page read waits for the writer's
// next commit (a second at most). So a read of the whole document spans
// commits however fast the machine reads. It counts the pages read.
type slowReader struct {
	*recordingStore
	reads     int
	committed chan struct{} // the writer sends, without blocking, after each commit
}

func (s *slowReader) ReadPage(no uint32, buf []byte) error {
	if s.reads++; s.reads%256 == 0 {
		select {
		case <-s.committed: // an older commit's
		default:
		}
		select {
		case <-s.committed:
		case <-time.After(time.Second):
		}
	}
	return s.recordingStore.ReadPage(no, buf)
}

func (s *slowReader) ReadChanged(lsn uint64) (vfs.Commit, error) {
	c, err := s.recordingStore.ReadChanged(lsn)
	s.reads += len(c.Pages)
	return c, err
}

// TestDiffWhileCommitting is issue 11: a replica far behind a large
// document asks for its diff while the document commits as fast as it can.
// The diff must be one consistent version, come within 30 s, and cost
// about one read of the document: the old DiffFrom restarted its read
// whenever the LSN moved, and as each read of the whole document spans
// commits, it never finished while the writer went on (here, until the
// writer stops after maxCommits).
func TestDiffWhileCommitting(t *testing.T) {
	const maxCommits = 2000
	ctx := context.Background()
	store := &recordingStore{Store: memstore.New()}
	coord, err := engine.OpenCoordinator(ctx, store, logMutator{}, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	from := coord.LSN()
	applyOne(t, coord, engine.Mutation{ClientID: "w", Seq: 1, Name: "grow", Args: []byte("8000")})

	var commits atomic.Int64
	committed := make(chan struct{}, 1)
	var writerErr error
	stop, writerExit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(writerExit)
		for seq := uint64(2); commits.Load() < maxCommits; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			m := engine.Mutation{ClientID: "w", Seq: seq, Name: "append", Args: []byte("row " + strconv.FormatUint(seq, 10))}
			if _, err := coord.Apply(ctx, []engine.Mutation{m}); err != nil {
				writerErr = err
				return
			}
			commits.Add(1)
			select {
			case committed <- struct{}{}:
			default:
			}
		}
	}()
	stopWriter := sync.OnceFunc(func() { close(stop); <-writerExit })
	defer stopWriter()
	// Let the writer get going, so that the read starts among commits.
	deadline := time.Now().Add(30 * time.Second)
	for commits.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	reader := &slowReader{recordingStore: store, committed: committed}
	type result struct {
		d   engine.Diff
		err error
	}
	got := make(chan result, 1)
	before := commits.Load()
	go func() {
		d, err := engine.DiffFrom(reader, from)
		got <- result{d, err}
	}()
	var r result
	select {
	case r = <-got:
	case <-time.After(30 * time.Second):
		t.Fatalf("no diff in 30 s, while the writer made %d commits", commits.Load()-before)
	}
	during := commits.Load() - before
	stopWriter()
	if writerErr != nil {
		t.Fatal(writerErr)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("diff %d..%d of %d pages (document of %d), %d pages read, while the writer made %d commits",
		r.d.From, r.d.LSN, len(r.d.Pages), r.d.PageCount, reader.reads, during)
	if r.d.PageCount < 1500 {
		t.Fatalf("document of %d pages: not grown", r.d.PageCount)
	}
	if during == 0 {
		t.Fatal("no commit during the read")
	}
	if limit := 2 * int(r.d.PageCount); reader.reads > limit {
		t.Fatalf("%d pages read for a diff of %d: more than %d, the read restarted while the writer made %d commits",
			reader.reads, len(r.d.Pages), limit, during)
	}
	store.mu.Lock()
	history := store.commits
	store.mu.Unlock()
	if err := checkDiff(t, history, r.d); err != nil {
		t.Fatal(err)
	}
}

// racingStore commits to itself while it is read: before every page read,
// with probability p, it applies a random commit (rewriting random pages,
// sometimes shrinking or growing the database), until it has made limit.
// Its ReadChanged, promoted from the memstore, holds still.
type racingStore struct {
	*memstore.Store
	t       *testing.T
	r       *rand.Rand
	p       float64
	limit   int
	made    int
	history []vfs.Commit
}

func (s *racingStore) commit() {
	lsn, count := s.LSN()+1, s.PageCount()
	c := vfs.Commit{LSN: lsn, PageCount: count}
	switch k := s.r.IntN(10); {
	case count == 0 || k == 1:
		c.PageCount = count + uint32(s.r.IntN(8)+1)
	case k == 0:
		c.PageCount = uint32(s.r.IntN(int(count)) + 1)
	}
	for no := uint32(1); no <= c.PageCount; no++ {
		if s.r.IntN(int(c.PageCount)) < 3 {
			c.Pages = append(c.Pages, versionPage(no, lsn))
		}
	}
	if err := s.Store.Apply(c); err != nil {
		s.t.Fatal(err)
	}
	s.history = append(s.history, c)
}

// versionPage is page no as the commit at lsn writes it: no two versions
// alike.
func versionPage(no uint32, lsn uint64) vfs.Page {
	d := make([]byte, vfs.PageSize)
	for i := 0; i < len(d); i += 16 {
		binary.LittleEndian.PutUint64(d[i:], lsn)
		binary.LittleEndian.PutUint64(d[i+8:], uint64(no))
	}
	return vfs.Page{No: no, Data: d}
}

func (s *racingStore) ReadPage(no uint32, buf []byte) error {
	if s.made < s.limit && s.r.Float64() < s.p {
		s.made++
		s.commit()
	}
	return s.Store.ReadPage(no, buf)
}

// plainStore hides the stores' optional interfaces (vfs.ChangeReader).
type plainStore struct{ vfs.Store }

// TestDiffFromRacingCommits: DiffFrom over a store that commits between its
// page reads returns one consistent version, seeded. With a commit before
// every read, only a store's ReadChanged lets the diff finish: it must take
// fewer than limit commits. A store without ReadChanged gets there when
// commits pause between reads.
func TestDiffFromRacingCommits(t *testing.T) {
	first, n, err := enginetest.Seeds(20)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 20000
	for _, tc := range []struct {
		name  string
		p     float64
		plain bool
	}{
		{"every read", 1, false},
		{"some reads", 0.2, false},
		{"plain store, some reads", 0.2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := first; seed < first+uint64(n); seed++ {
				s := &racingStore{Store: memstore.New(), t: t, r: rand.New(rand.NewPCG(seed, 11))}
				for range 50 {
					s.commit()
				}
				s.p, s.limit = tc.p, limit
				from := uint64(s.r.IntN(50))
				var store vfs.Store = s
				if tc.plain {
					store = plainStore{s}
				}
				d, err := engine.DiffFrom(store, from)
				if err != nil {
					t.Fatalf("seed=%d: %v", seed, err)
				}
				if !tc.plain && s.made >= limit {
					t.Fatalf("seed=%d: the diff took %d commits or more: it does not settle", seed, limit)
				}
				if err := checkDiff(t, s.history, d); err != nil {
					t.Fatalf("seed=%d: %d commits during the read: %v", seed, s.made, err)
				}
			}
		})
	}
}

// TestDiffShared: receivers at the same LSN asking at once, or one after
// another before the next commit, share one diff; after a commit they get
// a new one, never the one kept from before.
func TestDiffShared(t *testing.T) {
	const receivers = 8
	ctx := context.Background()
	coord, err := engine.OpenCoordinator(ctx, memstore.New(), logMutator{}, engine.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	applyOne(t, coord, engine.Mutation{ClientID: "w", Seq: 1, Name: "grow", Args: []byte("100")})
	from := coord.LSN()
	applyOne(t, coord, engine.Mutation{ClientID: "w", Seq: 2, Name: "append", Args: []byte("a")})

	diffAll := func() []engine.Diff {
		out := make([]engine.Diff, receivers)
		errs := make([]error, receivers)
		var start, wg sync.WaitGroup
		start.Add(1)
		for i := range receivers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				out[i], errs[i] = coord.Diff(from)
			}()
		}
		start.Done()
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		return out
	}
	computed := engine.DiffsComputed(coord)
	ds := diffAll()
	for _, d := range ds {
		if d.From != from || d.LSN != coord.LSN() || len(d.Pages) == 0 {
			t.Fatalf("diff %d..%d of %d pages, want %d..%d", d.From, d.LSN, len(d.Pages), from, coord.LSN())
		}
	}
	if _, err := coord.Diff(from); err != nil {
		t.Fatal(err)
	}
	if got, want := engine.DiffsComputed(coord)-computed, 1; got != want {
		t.Fatalf("%d receivers at LSN %d, then one more: %d diffs computed, want %d", receivers+1, from, got, want)
	}

	applyOne(t, coord, engine.Mutation{ClientID: "w", Seq: 3, Name: "append", Args: []byte("b")})
	computed = engine.DiffsComputed(coord)
	for _, d := range diffAll() {
		if got, want := d.LSN, coord.LSN(); got != want {
			t.Fatalf("after a commit: diff to %d, want %d", got, want)
		}
	}
	if got, want := engine.DiffsComputed(coord)-computed, 1; got != want {
		t.Fatalf("after a commit: %d diffs computed, want %d", got, want)
	}
	// Another LSN is another diff.
	if d, err := coord.Diff(from + 1); err != nil || d.From != from+1 {
		t.Fatalf("diff from %d: %+v, %v", from+1, d.Commit, err)
	}
	if got, want := engine.DiffsComputed(coord)-computed, 2; got != want {
		t.Fatalf("a receiver at another LSN: %d diffs computed, want %d", got, want)
	}
}
