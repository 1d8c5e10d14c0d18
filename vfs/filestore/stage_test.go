package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/hack-pad/hackpadfs"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
	"github.com/sqlsync-go/sqlsync/vfs/storetest"
)

// stagerStore is a store under test, or its model.
type stagerStore interface {
	vfs.Store
	vfs.Stager
}

// stageSnap is everything a Stager shows: its state and its stage.
type stageSnap struct {
	st     state
	cursor string
	copies int
	staged bool
}

func snapStage(t testing.TB, s stagerStore) stageSnap {
	t.Helper()
	cursor, copies, ok := s.Staged()
	return stageSnap{st: capture(t, s), cursor: string(cursor), copies: copies, staged: ok}
}

func sameStage(t testing.TB, what string, got, want stageSnap) {
	t.Helper()
	sameState(t, what, got.st, want.st)
	if got.staged != want.staged || got.cursor != want.cursor || got.copies != want.copies {
		t.Fatalf("%s: Staged() = %q, %d, %v; want %q, %d, %v", what, got.cursor, got.copies, got.staged, want.cursor, want.copies, want.staged)
	}
}

// stageOp is one step of a scripted run against a store and its model.
type stageOp struct {
	name string
	do   func(s stagerStore) error
}

func stageStep(name, cursor string, pages ...vfs.Page) stageOp {
	return stageOp{name, func(s stagerStore) error { return s.Stage([]byte(cursor), pages) }}
}

func commitStep(name string, c vfs.Commit) stageOp {
	return stageOp{name, func(s stagerStore) error { return s.CommitStaged(c) }}
}

func applyStep(name string, c vfs.Commit) stageOp {
	return stageOp{name, func(s stagerStore) error { return s.Apply(c) }}
}

func dropStep(name string) stageOp {
	return stageOp{name, func(s stagerStore) error { return s.DropStaged() }}
}

// stageScript writes every kind of record: after op 0, the log holds only
// the records of ops 1 on (the first Stage starts a version 2 log).
var stageScript = []stageOp{
	applyStep("apply 1", vfs.Commit{LSN: 1, PageCount: 3, Pages: []vfs.Page{storetest.Page(1, 'a'), storetest.Page(2, 'a'), storetest.Page(3, 'a')}}),
	stageStep("stage c1", "c1", storetest.Page(4, 's'), storetest.Page(2, 's')),
	stageStep("stage c2", "c2", storetest.Page(3, 's')),
	commitStep("commit 5", vfs.Commit{LSN: 5, PageCount: 5, Pages: []vfs.Page{storetest.Page(5, 'c')}}),
	stageStep("stage d1", "d1", storetest.Page(1, 'x')),
	dropStep("drop d"),
	stageStep("stage e1", "e1", storetest.Page(2, 'y'), storetest.Page(6, 'y')),
	applyStep("apply 6", vfs.Commit{LSN: 6, PageCount: 5, Pages: []vfs.Page{storetest.Page(1, 'z')}}),
	stageStep("stage f1", "f1", storetest.Page(6, 'f')),
	stageStep("stage f2", "f2"),
}

// Indexes of stageScript's records that TestStageTornTail tears at every
// byte offset.
const (
	scriptStage  = 2 // stage c2
	scriptCommit = 3 // commit 5
)

// runScript runs ops 0..n-1 of stageScript on s.
func runScript(t testing.TB, s stagerStore, n int) {
	t.Helper()
	for _, op := range stageScript[:n] {
		if err := op.do(s); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
	}
}

// storeFiles returns the contents of the files of the store in db.
func storeFiles(t testing.TB, fsys hackpadfs.FS) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range []string{dataName, lsnsName, logName} {
		b, err := hackpadfs.ReadFile(fsys, "db/"+name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	return files
}

// withFiles returns a file system holding a store in db made of files, its
// log cut to logBytes bytes.
func withFiles(t testing.TB, files map[string][]byte, logBytes int64) hackpadfs.FS {
	t.Helper()
	fsys := memFS(t)
	if err := hackpadfs.MkdirAll(fsys, "db", 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if name == logName {
			b = b[:logBytes]
		}
		if err := hackpadfs.WriteFullFile(fsys, "db/"+name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fsys
}

// TestStageTornTail runs stageScript and reopens its log cut at byte
// offsets throughout its records: every byte of a stage record and of the
// stage-commit record, and a spread of bytes of the others. A reopened
// store must show exactly the state and stage after the last op whose
// record is whole (the torn one cut off), and go on from there.
func TestStageTornTail(t *testing.T) {
	opts := OpenOptions{CheckpointBytes: -1}
	fsys := memFS(t)
	s := mustOpen(t, fsys, "db", opts)
	model := memstore.New()
	snaps := []stageSnap{}
	ends := []int64{} // ends[i]: the log's size after op i
	for i, op := range stageScript {
		if err := op.do(s); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if err := op.do(model); err != nil {
			t.Fatalf("model: %s: %v", op.name, err)
		}
		snaps = append(snaps, snapStage(t, model))
		sameStage(t, op.name, snapStage(t, s), snaps[i])
		ends = append(ends, s.logSize)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := storeFiles(t, fsys)
	if v := binary.LittleEndian.Uint32(files[logName][4:]); v != stageVersion {
		t.Fatalf("log of format version %d after staging, want %d", v, stageVersion)
	}
	ends[0] = headerSize // the first Stage folded op 0's record into data

	// The cuts: every byte offset of the two chosen records; of the others,
	// the first and last 40 bytes, those around each page entry, and every
	// 97th byte.
	var cuts []int64
	for i := 1; i < len(stageScript); i++ {
		from, to := ends[i-1], ends[i]
		for at := from; at <= to; at++ {
			rel, back := at-from, to-at
			entry := (rel - recordFixed) % entrySize
			if i == scriptStage || i == scriptCommit || rel < 40 || back < 40 || entry < 8 || entry > entrySize-8 || rel%97 == 0 {
				cuts = append(cuts, at)
			}
		}
	}
	cuts = slices.Compact(cuts)
	t.Logf("%d cuts over %d log bytes", len(cuts), ends[len(ends)-1]-headerSize)

	for n, cut := range cuts {
		// The last op whose record is whole.
		k := 0
		for i, end := range ends {
			if end <= cut {
				k = i
			}
		}
		what := fmt.Sprintf("log cut at %d (op %d %q whole)", cut, k, stageScript[k].name)
		cfs := withFiles(t, files, cut)
		s, err := OpenWithOptions(cfs, "db", opts)
		if err != nil {
			t.Fatalf("%s: reopen: %v", what, err)
		}
		sameStage(t, what, snapStage(t, s), snaps[k])
		if got := logSize(t, cfs, "db/log"); got != ends[k] {
			t.Fatalf("%s: log is %d bytes after reopen, want the torn record cut at %d", what, got, ends[k])
		}
		// Now and then, and at each record's end, check the store goes on.
		if cut == ends[k] || n%23 == 0 {
			model := memstore.New()
			runScript(t, model, k+1)
			lsn, count := model.LSN(), model.PageCount()
			next := []stageOp{
				stageStep("stage z", "z", storetest.Page(count+1, 'q'), storetest.Page(1, 'q')),
				commitStep("commit z", vfs.Commit{LSN: lsn + 1, PageCount: count + 2, Pages: []vfs.Page{storetest.Page(count+2, 'r')}}),
			}
			for _, op := range next {
				if err := op.do(s); err != nil {
					t.Fatalf("%s: %s: %v", what, op.name, err)
				}
				if err := op.do(model); err != nil {
					t.Fatalf("%s: model: %s: %v", what, op.name, err)
				}
			}
			want := snapStage(t, model)
			sameStage(t, what+", then staged and committed", snapStage(t, s), want)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, cfs, "db", opts)
			sameStage(t, what+", then staged, committed and reopened", snapStage(t, s), want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStageDamage checks that a damaged record of a stage with a valid
// record after it is corruption, not a torn tail, and that records whose
// CRC holds but that their writer would have refused are too.
func TestStageDamage(t *testing.T) {
	opts := OpenOptions{CheckpointBytes: -1}
	// script runs stageScript to its end and returns the files and where
	// each op's record ends.
	script := func(t *testing.T) (map[string][]byte, []int64) {
		fsys := memFS(t)
		s := mustOpen(t, fsys, "db", opts)
		var ends []int64
		for _, op := range stageScript {
			if err := op.do(s); err != nil {
				t.Fatalf("%s: %v", op.name, err)
			}
			ends = append(ends, s.logSize)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		ends[0] = headerSize
		return storeFiles(t, fsys), ends
	}
	for i := 1; i < len(stageScript); i++ {
		for _, where := range []string{"magic", "fixed part", "crc"} {
			t.Run(fmt.Sprintf("%s/%s", stageScript[i].name, where), func(t *testing.T) {
				files, ends := script(t)
				at := map[string]int64{"magic": ends[i-1] + 3, "fixed part": ends[i-1] + 5, "crc": ends[i] - 1}[where]
				files[logName] = slices.Clone(files[logName])
				files[logName][at] ^= 0x10
				fsys := withFiles(t, files, int64(len(files[logName])))
				s, err := OpenWithOptions(fsys, "db", opts)
				if i < len(stageScript)-1 {
					if !errors.Is(err, vfs.ErrCorrupt) {
						t.Fatalf("Open = %v, want ErrCorrupt", err)
					}
					return
				}
				// The last record is a torn tail.
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				model := memstore.New()
				runScript(t, model, i)
				sameStage(t, "reopened", snapStage(t, s), snapStage(t, model))
			})
		}
	}

	// Records appended to the log of stageScript (a stage pending, at LSN
	// 6 with 5 pages) that a store never writes.
	bad := map[string][]byte{
		"drop at another LSN":       encodeDrop(5),
		"staged page 0":             encodeStage([]byte("x"), []vfs.Page{{No: 0, Data: make([]byte, vfs.PageSize)}}),
		"stage commit missing page": encodeCommit(stageCommitMagic, vfs.Commit{LSN: 7, PageCount: 7}),
		"stage commit old LSN":      encodeCommit(stageCommitMagic, vfs.Commit{LSN: 6, PageCount: 5}),
	}
	for name, rec := range bad {
		t.Run(name, func(t *testing.T) {
			files, _ := script(t)
			files[logName] = append(slices.Clone(files[logName]), rec...)
			s, err := OpenWithOptions(withFiles(t, files, int64(len(files[logName]))), "db", opts)
			if !errors.Is(err, vfs.ErrCorrupt) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
		})
	}

	// A version 1 log holds no stage records: one is damage, or a torn tail
	// if nothing valid follows.
	t.Run("stage record in a version 1 log", func(t *testing.T) {
		fsys := memFS(t)
		_, at3, _ := threeCommits(t, fsys)
		stage := encodeStage([]byte("x"), []vfs.Page{storetest.Page(1, 's')})
		size := logSize(t, fsys, "db/log")
		editFile(t, fsys, "db/log", func(b []byte) []byte { return append(b, stage...) })
		s := mustOpen(t, fsys, "db", opts)
		sameState(t, "reopened", capture(t, s), at3)
		if _, _, ok := s.Staged(); ok {
			t.Fatal("a stage record in a version 1 log made a stage")
		}
		if got := logSize(t, fsys, "db/log"); got != size {
			t.Fatalf("log is %d bytes, want the stray record cut at %d", got, size)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		editFile(t, fsys, "db/log", func(b []byte) []byte {
			return append(append(b, stage...), encodeRecord(vfs.Commit{LSN: 4, PageCount: 1})...)
		})
		if s, err := Open(fsys, "db"); !errors.Is(err, vfs.ErrCorrupt) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("Open = %v, want ErrCorrupt", err)
		}
	})
}

// countFS counts the bytes read from and written to each file.
type countFS struct {
	*faultFS
	mu            sync.Mutex
	read, written map[string]int64
}

func newCountFS(t testing.TB) *countFS {
	return &countFS{faultFS: newFaultFS(t), read: map[string]int64{}, written: map[string]int64{}}
}

func (f *countFS) OpenFile(name string, flag int, perm hackpadfs.FileMode) (hackpadfs.File, error) {
	file, err := f.faultFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countFile{File: file, fs: f, name: name}, nil
}

// counts returns the bytes read from and written to name so far.
func (f *countFS) counts(name string) (read, written int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read[name], f.written[name]
}

type countFile struct {
	hackpadfs.File
	fs   *countFS
	name string
}

func (f *countFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := hackpadfs.ReadAtFile(f.File, p, off)
	f.fs.mu.Lock()
	f.fs.read[f.name] += int64(n)
	f.fs.mu.Unlock()
	return n, err
}

func (f *countFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := hackpadfs.WriteAtFile(f.File, p, off)
	f.fs.mu.Lock()
	f.fs.written[f.name] += int64(n)
	f.fs.mu.Unlock()
	return n, err
}

func (f *countFile) Sync() error               { return hackpadfs.SyncFile(f.File) }
func (f *countFile) Truncate(size int64) error { return hackpadfs.TruncateFile(f.File, size) }

// TestStageManyPages stages a download of many pages in frames, in random
// order with pages staged again, across reopens and a crash, and commits
// it: CommitStaged must only append its own record, the next Apply folds
// the log, and the store must then match a memstore of the same calls,
// ChangedSince included, before and after reopening.
func TestStageManyPages(t *testing.T) {
	seed := uint64(rand.Int64())
	t.Logf("seed=%d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	fsys := newCountFS(t)
	opts := OpenOptions{} // default checkpoints
	s := mustOpen(t, fsys, "db", opts)
	model := memstore.New()
	both := func(what string, do func(s stagerStore) error) {
		t.Helper()
		if err := do(s); err != nil {
			t.Fatalf("seed=%d: %s: %v", seed, what, err)
		}
		if err := do(model); err != nil {
			t.Fatalf("seed=%d: model: %s: %v", seed, what, err)
		}
	}
	// A small document with a history.
	for lsn := uint64(1); lsn <= 3; lsn++ {
		c := randomCommit(r, model.LSN(), max(model.PageCount(), 40))
		both(fmt.Sprintf("apply %d", c.LSN), func(s stagerStore) error { return s.Apply(c) })
	}

	// The download: pages 1..total in frames, in random order; some sent
	// twice; some left for the commit.
	const total, frame = 1500, 64
	order := r.Perm(total)
	for i := 0; i < total/10; i++ {
		order = append(order, r.IntN(total))
	}
	var inCommit []uint32
	frames := 0
	for len(order) > 0 {
		n := min(frame, len(order))
		var pages []vfs.Page
		for _, i := range order[:n] {
			no := uint32(i + 1)
			if no%97 == 0 {
				inCommit = append(inCommit, no) // the commit carries these
				continue
			}
			pages = append(pages, storetest.Page(no, byte(frames)|1))
		}
		order = order[n:]
		frames++
		cursor := fmt.Sprintf("frame %d", frames)
		both(cursor, func(s stagerStore) error { return s.Stage([]byte(cursor), pages) })
		switch frames {
		case 5:
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, fsys, "db", opts)
		case 11:
			abandon(s)
			s = mustOpen(t, fsys, "db", opts)
		case 13:
			size := s.logSize
			if err := s.Checkpoint(); err != nil || s.logSize != size {
				t.Fatalf("Checkpoint with a stage pending = %v, log %d -> %d bytes; want nil and no change", err, size, s.logSize)
			}
		}
	}
	sameStage(t, "staged", snapStage(t, s), snapStage(t, model))

	slices.Sort(inCommit)
	inCommit = slices.Compact(inCommit)
	c := vfs.Commit{LSN: model.LSN() + 10, PageCount: total - 20}
	for _, no := range inCommit {
		if no <= c.PageCount {
			c.Pages = append(c.Pages, storetest.Page(no, 'c'))
		}
	}
	read, written := fsys.counts("db/log")
	size := s.logSize
	both("commit", func(s stagerStore) error { return s.CommitStaged(c) })
	read2, written2 := fsys.counts("db/log")
	if read2 != read || written2-written != recordSize(len(c.Pages)) || s.logSize != size+recordSize(len(c.Pages)) {
		t.Fatalf("CommitStaged of %d pages read %d bytes of the log and wrote %d (log %d -> %d bytes); want none read and one record of %d bytes",
			len(c.Pages), read2-read, written2-written, size, s.logSize, recordSize(len(c.Pages)))
	}
	sameStage(t, "committed", snapStage(t, s), snapStage(t, model))

	// The next Apply folds the log, whose staged pages are now committed.
	next := vfs.Commit{LSN: c.LSN + 1, PageCount: c.PageCount, Pages: []vfs.Page{storetest.Page(3, 'n')}}
	both("apply after the commit", func(s stagerStore) error { return s.Apply(next) })
	if s.logSize != headerSize || s.ckptErr != nil {
		t.Fatalf("log %d bytes after the Apply that follows CommitStaged (checkpoint error %v), want it folded", s.logSize, s.ckptErr)
	}
	if info, err := hackpadfs.Stat(fsys, "db/data"); err != nil || info.Size() != int64(c.PageCount)*vfs.PageSize {
		t.Fatalf("data after the checkpoint: %v, %v", info, err)
	}
	want := snapStage(t, model)
	sameStage(t, "checkpointed", snapStage(t, s), want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, fsys, "db", opts)
	sameStage(t, "reopened", snapStage(t, s), want)
}

// TestStageFormatVersion: a store's log is of format version 1 until the
// first Stage, which checkpoints to start a version 2 log; the checkpoint
// after the stage is committed starts a version 1 log again.
func TestStageFormatVersion(t *testing.T) {
	fsys := memFS(t)
	opts := OpenOptions{CheckpointBytes: -1}
	s := mustOpen(t, fsys, "db", opts)
	version := func(want uint32) {
		t.Helper()
		b, err := hackpadfs.ReadFile(fsys, "db/log")
		if err != nil {
			t.Fatal(err)
		}
		if got := binary.LittleEndian.Uint32(b[4:]); got != want || s.version != want {
			t.Fatalf("log of format version %d (%d in memory), want %d", got, s.version, want)
		}
	}
	version(formatVersion)
	mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 2, Pages: []vfs.Page{storetest.Page(1, 'a')}})
	version(formatVersion)
	if err := s.CommitStaged(vfs.Commit{LSN: 2, PageCount: 2, Pages: []vfs.Page{storetest.Page(2, 'b')}}); err != nil {
		t.Fatal(err)
	}
	version(formatVersion) // with nothing staged, a plain commit record
	want := capture(t, s)
	if err := s.Stage([]byte("c"), []vfs.Page{storetest.Page(3, 's')}); err != nil {
		t.Fatal(err)
	}
	version(stageVersion)
	if got := s.logSize; got != headerSize+stageFixed+1+entrySize+crcSize {
		t.Fatalf("log of %d bytes after the first Stage, want a fresh log with its record only", got)
	}
	sameState(t, "staged", capture(t, s), want)
	if err := s.DropStaged(); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	version(formatVersion)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, fsys, "db", opts)
	sameState(t, "reopened", capture(t, s), want)
}

// TestStageAfterDeferred: Stage syncs a deferred commit before it appends
// its record, so that a crash may tear only the stage record; both survive
// a crash once Stage returns.
func TestStageAfterDeferred(t *testing.T) {
	fsys := memFS(t)
	opts := OpenOptions{CheckpointBytes: -1}
	s := mustOpen(t, fsys, "db", opts)
	model := memstore.New()
	mustApply(t, s, vfs.Commit{LSN: 1, PageCount: 1, Pages: []vfs.Page{storetest.Page(1, 'a')}})
	if err := s.Stage([]byte("c1"), []vfs.Page{storetest.Page(2, 's')}); err != nil {
		t.Fatal(err)
	}
	c := vfs.Commit{LSN: 2, PageCount: 2, Pages: []vfs.Page{storetest.Page(2, 'b')}}
	if err := s.ApplyDeferred(c); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.Staged(); ok {
		t.Fatal("ApplyDeferred left the stage")
	}
	if err := s.Stage([]byte("c2"), []vfs.Page{storetest.Page(3, 's')}); err != nil {
		t.Fatal(err)
	}
	if s.deferred {
		t.Fatal("Stage left a deferred commit unsynced")
	}
	for _, c := range []vfs.Commit{{LSN: 1, PageCount: 1, Pages: []vfs.Page{storetest.Page(1, 'a')}}, c} {
		mustApply(t, model, c)
	}
	if err := model.Stage([]byte("c2"), []vfs.Page{storetest.Page(3, 's')}); err != nil {
		t.Fatal(err)
	}
	abandon(s)
	s = mustOpen(t, fsys, "db", opts)
	sameStage(t, "reopened", snapStage(t, s), snapStage(t, model))
}

// TestStageAgainstMemstore drives a store and a memstore with the same
// random commits, stages, stage commits and drops, with clean reopens,
// abandoned stores and checkpoints that crash at random steps, and
// compares everything they show.
func TestStageAgainstMemstore(t *testing.T) {
	for _, fc := range fileSystems {
		t.Run(fc.name, func(t *testing.T) {
			seed := uint64(rand.Int64())
			t.Logf("seed=%d", seed)
			r := rand.New(rand.NewPCG(seed, 0))
			fsys := fc.fs(t)
			opts := OpenOptions{CheckpointBytes: 3 * recordSize(4)}
			s := mustOpen(t, fsys, "db", opts)
			model := memstore.New()
			staged := map[uint32]bool{} // the pages staged
			steps := 300
			if fc.name == "os" {
				steps = 100
			}
			for i := 0; i < steps; i++ {
				what := fmt.Sprintf("seed=%d step %d", seed, i)
				var op stageOp
				switch r.IntN(10) {
				case 0, 1:
					c := randomCommit(r, model.LSN(), model.PageCount())
					op = applyStep("apply", c)
					clear(staged)
				case 2, 3, 4, 5:
					var pages []vfs.Page
					for n := r.IntN(5); n > 0; n-- {
						no := uint32(1 + r.IntN(int(model.PageCount())+8))
						pages = append(pages, storetest.Page(no, byte(i)))
						staged[no] = true
					}
					op = stageStep("stage", fmt.Sprintf("cursor %d", i), pages...)
				case 6, 7:
					c := randomCommit(r, model.LSN(), model.PageCount())
					if r.IntN(2) == 0 {
						c.PageCount = model.PageCount() + uint32(r.IntN(10))
					}
					// Carry every new page the stage does not.
					var pages []vfs.Page
					for no := uint32(1); no <= c.PageCount; no++ {
						if no > model.PageCount() && !staged[no] || no <= model.PageCount() && r.IntN(4) == 0 {
							pages = append(pages, storetest.Page(no, byte(c.LSN)))
						}
					}
					c.Pages = pages
					op = commitStep("commit staged", c)
					clear(staged)
				case 8:
					op = dropStep("drop")
					clear(staged)
				case 9:
					switch r.IntN(3) {
					case 0:
						if err := s.Close(); err != nil {
							t.Fatalf("%s: close: %v", what, err)
						}
					case 1:
						abandon(s)
					case 2:
						calls, stop := 0, 1+r.IntN(12)
						s.hook = func(string) error {
							if calls++; calls == stop {
								return errCrash
							}
							return nil
						}
						if err := s.Checkpoint(); err != nil && !errors.Is(err, errCrash) {
							t.Fatalf("%s: checkpoint: %v", what, err)
						}
						abandon(s)
					}
					s = mustOpen(t, fsys, "db", opts)
				}
				if op.do != nil {
					if err := op.do(s); err != nil {
						t.Fatalf("%s: %s: %v", what, op.name, err)
					}
					if err := op.do(model); err != nil {
						t.Fatalf("%s: model: %s: %v", what, op.name, err)
					}
				}
				if i%10 == 0 || i == steps-1 {
					sameStage(t, what, snapStage(t, s), snapStage(t, model))
				}
			}
		})
	}
}
