package filestore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// The subprocess crash test: a child applies deterministic commits to an os
// store and prints each acknowledged LSN; the parent kills it with SIGKILL
// and checks what survived.

const (
	crashDirEnv  = "FILESTORE_CRASH_DIR"
	crashSeedEnv = "FILESTORE_CRASH_SEED"
)

var crashOpts = OpenOptions{CheckpointBytes: 64 * entrySize}

// crashCommit returns the commit that brings the crash test's store to lsn;
// it depends only on seed and lsn.
func crashCommit(seed, lsn uint64) vfs.Commit {
	r := rand.New(rand.NewPCG(seed, lsn))
	c := vfs.Commit{LSN: lsn, PageCount: 20 + uint32(r.IntN(21))}
	if r.IntN(10) == 0 {
		c.PageCount = 1 + uint32(r.IntN(20))
	}
	for no := uint32(1); no <= c.PageCount; no++ {
		if r.IntN(5) == 0 {
			c.Pages = append(c.Pages, vfs.Page{No: no, Data: crashPage(no, lsn)})
		}
	}
	return c
}

func crashPage(no uint32, lsn uint64) []byte {
	b := make([]byte, vfs.PageSize)
	for i := 0; i < len(b); i += 16 {
		binary.LittleEndian.PutUint64(b[i:], lsn)
		binary.LittleEndian.PutUint64(b[i+8:], uint64(no))
	}
	return b
}

// TestCrashChild is the child of TestSubprocessCrash; it runs only there.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs as the child of TestSubprocessCrash")
	}
	seed, err := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenWithOptions(dirFS(t, dir), "db", crashOpts)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second) // in case the parent is gone
	for lsn := s.LSN() + 1; time.Now().Before(deadline); lsn++ {
		if err := s.Apply(crashCommit(seed, lsn)); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ack %d\n", lsn)
	}
}

func TestSubprocessCrash(t *testing.T) {
	switch runtime.GOOS {
	case "js", "wasip1", "ios", "android", "windows":
		t.Skipf("no SIGKILL of a re-executed test binary on %s", runtime.GOOS)
	}
	seed := uint64(rand.Int64())
	t.Logf("seed=%d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	fsys := dirFS(t, dir)
	var last uint64 // the last acknowledged LSN of any round
	for round := 0; round < 3; round++ {
		acked, ran := crashChild(t, dir, seed, time.Duration(10+r.IntN(600))*time.Millisecond)
		if acked == 0 {
			t.Fatalf("seed=%d round %d: no commit acknowledged", seed, round)
		}
		last = max(last, acked)
		s, err := OpenWithOptions(fsys, "db", crashOpts)
		if err != nil {
			t.Fatalf("seed=%d round %d: reopen after SIGKILL: %v", seed, round, err)
		}
		lsn := s.LSN()
		t.Logf("round %d: killed after %v, last ack %d, reopened at %d", round, ran, acked, lsn)
		if lsn < last || lsn > acked+1 {
			t.Fatalf("seed=%d round %d: reopened at LSN %d, last acknowledged %d", seed, round, lsn, acked)
		}
		checkCrashState(t, s, seed)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// crashChild runs the child until after it acknowledged a commit and then
// for wait, kills it and returns the last LSN it acknowledged.
func crashChild(t *testing.T, dir string, seed uint64, wait time.Duration) (acked uint64, ran time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(seed, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	acks := make(chan uint64, 1024)
	var other strings.Builder
	go func() {
		defer close(acks)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "ack "), 10, 64); err == nil && strings.HasPrefix(sc.Text(), "ack ") {
				acks <- n
			} else {
				fmt.Fprintln(&other, sc.Text())
			}
		}
	}()
	var kill <-chan time.Time
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n, ok := <-acks:
			if !ok {
				cmd.Wait()
				t.Fatalf("child exited early: %s%s", other.String(), stderr.String())
			}
			acked = n
			if kill == nil {
				kill = time.After(wait)
			}
			continue
		case <-kill:
		case <-timeout:
		}
		break
	}
	ran = time.Since(start)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for n := range acks { // lines written before the kill
		acked = n
	}
	cmd.Wait()
	return acked, ran
}

// checkCrashState checks s against the crash test's commits up to its LSN.
func checkCrashState(t *testing.T, s *Store, seed uint64) {
	t.Helper()
	written := map[uint32]uint64{} // page -> LSN of its newest version
	changed := map[uint32]uint64{} // page -> LSN it last changed, growth included
	var count uint32
	for lsn := uint64(1); lsn <= s.LSN(); lsn++ {
		c := crashCommit(seed, lsn)
		for no := range written {
			if no > c.PageCount {
				delete(written, no)
			}
		}
		for no := range changed {
			if no > c.PageCount {
				delete(changed, no)
			}
		}
		for no := count + 1; no <= c.PageCount; no++ {
			changed[no] = lsn
		}
		for _, p := range c.Pages {
			written[p.No] = lsn
			changed[p.No] = lsn
		}
		count = c.PageCount
	}
	if s.PageCount() != count {
		t.Fatalf("seed=%d: %d pages at LSN %d, want %d", seed, s.PageCount(), s.LSN(), count)
	}
	buf := make([]byte, vfs.PageSize)
	for no := uint32(1); no <= count; no++ {
		if err := s.ReadPage(no, buf); err != nil {
			t.Fatalf("seed=%d: %v", seed, err)
		}
		want := make([]byte, vfs.PageSize)
		if lsn, ok := written[no]; ok {
			want = crashPage(no, lsn)
		}
		if !bytes.Equal(buf, want) {
			t.Fatalf("seed=%d: page %d at LSN %d holds version %d, want %d", seed, no, s.LSN(),
				binary.LittleEndian.Uint64(buf), binary.LittleEndian.Uint64(want))
		}
	}
	for _, since := range []uint64{0, s.LSN() / 2, s.LSN() - 1} {
		var want []uint32
		for no, lsn := range changed {
			if lsn > since {
				want = append(want, no)
			}
		}
		slices.Sort(want)
		if got := s.ChangedSince(since); !slices.Equal(got, want) {
			t.Fatalf("seed=%d: ChangedSince(%d) = %v, want %v", seed, since, got, want)
		}
	}
}
