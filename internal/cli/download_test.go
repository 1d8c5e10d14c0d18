package cli_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sqlsync-go/sqlsync/internal/bigdoc"
	"github.com/sqlsync-go/sqlsync/server/servertest"
)

// bigDocBytes is the size of the document TestLargeDownloadSurvivesKill
// downloads; make bench goes to 1 GiB (bench/scenario's download rows).
const bigDocBytes = 64 << 20

// fillDoc writes a document of about size bytes into a data directory,
// before a coordinator serves it, and returns its rows.
func fillDoc(t *testing.T, dataDir, docID string, size int64) int64 {
	t.Helper()
	rows, _, err := bigdoc.FillDocument(dataDir, docID, size)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// peakRSS returns a finished process's peak resident set, in bytes.
func peakRSS(p *os.ProcessState) int64 {
	if ru, ok := p.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10
	}
	return 0
}

// resetOwnPeak frees what this process can and resets its peak RSS, and
// returns its RSS now: a child's Maxrss starts from the peak of the process
// that started it (Go starts children with vfork, and exec carries the
// peak over), so without this the fill's memory would hide the child's.
func resetOwnPeak(t *testing.T) int64 {
	t.Helper()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Logf("cannot reset this process's peak RSS (%v): client figures include it", err)
	}
	return procKiB(t, os.Getpid(), "VmRSS")
}

// procKiB returns field (VmRSS, VmHWM) of a live process, in bytes.
func procKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc/%d/status", field, pid)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10
}

// TestLargeDownloadSurvivesKill is issue 16's first sync, as a user meets
// it: `sqlsync query --state` on a 64 MiB document it has never seen
// shows the download's progress; killed with SIGKILL half-way, the next
// run resumes at the point reached rather than starting over, and answers
// with every row. Neither process's memory grows by the document's size.
func TestLargeDownloadSurvivesKill(t *testing.T) {
	data := t.TempDir()
	rows := fillDoc(t, data, "big", bigDocBytes)
	srv := startServe(t, freeAddr(t), data)
	query := []string{"query", "--url", srv.url(), "--doc", "big", "--timeout", "120s"}

	// Baseline: the same command on a small document, run twice on one
	// state directory, as the download's second run is (the first compiles
	// the mutator module and keeps its code there).
	fillDoc(t, data, "small", 1<<20)
	own := resetOwnPeak(t)
	baseState := t.TempDir()
	var base *exec.Cmd
	for range 2 {
		base = exec.Command(sqlsyncBin, append(query[:len(query):len(query)], "--state", baseState, "--doc", "small", `SELECT count(*) AS n FROM big`)...)
		if out, err := base.CombinedOutput(); err != nil {
			t.Fatalf("query of the small document: %v\n%s", err, out)
		}
	}
	baseRSS := peakRSS(base.ProcessState)
	// The coordinator's peak from here on (where the kernel lets the
	// test reset it; else its peak since it started, which only counts
	// more).
	pid := srv.cmd.Process.Pid
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	coordBefore := procKiB(t, pid, "VmRSS")

	state := t.TempDir()
	first := exec.Command(sqlsyncBin, append(query, "--state", state, `SELECT count(*) AS n FROM big`)...)
	pipe, err := first.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	pct := regexp.MustCompile(`downloading big: (\d+)%`)
	var seen []string
	killed := false
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if m := pct.FindStringSubmatch(sc.Text()); m != nil && !killed {
			if n, _ := strconv.Atoi(m[1]); n >= 50 {
				first.Process.Kill() // SIGKILL
				killed = true
			}
		}
	}
	io.Copy(io.Discard, pipe)
	first.Wait()
	if !killed {
		t.Fatalf("the download never showed 50%%; stderr:\n%s", strings.Join(seen, "\n"))
	}
	if first.ProcessState.Success() {
		t.Fatal("the first query finished before it was killed")
	}

	own = max(own, resetOwnPeak(t))
	second := exec.Command(sqlsyncBin, append(query, "--state", state, `SELECT count(*) AS n FROM big`)...)
	var out, errOut strings.Builder
	second.Stdout, second.Stderr = &out, &errOut
	if err := second.Run(); err != nil {
		t.Fatalf("second query: %v\n%s", err, errOut.String())
	}
	m := regexp.MustCompile(`resuming the download of big at (\d+)%`).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("the second query did not resume the download; stderr:\n%s", errOut.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < 40 {
		t.Fatalf("resumed at %d%%, after the first run had shown 50%%", n)
	}
	if want := fmt.Sprintf(`"n":%d`, rows); !strings.Contains(out.String(), want) {
		t.Fatalf("second query printed %q, want %s", out.String(), want)
	}
	_, body := servertest.Get(t, srv.url()+"/metrics")
	metrics := string(body)
	if !strings.Contains(metrics, `sqlsync_streams_total{event="resumed"} 1`) {
		t.Fatalf("the coordinator resumed no stream:\n%s", grepLines(metrics, "sqlsync_stream"))
	}

	if peakRSS(second.ProcessState) <= own || baseRSS <= own {
		t.Fatalf("client peak RSS %d and %d MiB, not above this process's %d MiB: the figures are this process's", peakRSS(second.ProcessState)>>20, baseRSS>>20, own>>20)
	}
	clientGrowth := peakRSS(second.ProcessState) - baseRSS
	coordGrowth := procKiB(t, pid, "VmHWM") - coordBefore
	t.Logf("%d rows, %d MiB: client peak RSS %d MiB (small document: %d MiB; this process, which a child's figure starts from: %d MiB), coordinator peak RSS growth %d MiB",
		rows, bigDocBytes>>20, peakRSS(second.ProcessState)>>20, baseRSS>>20, own>>20, coordGrowth>>20)
	if clientGrowth >= bigDocBytes || coordGrowth >= bigDocBytes {
		t.Fatalf("memory grew by the document's size: client +%d MiB, coordinator +%d MiB", clientGrowth>>20, coordGrowth>>20)
	}

	// The same document read lazily: a point query downloads nothing and
	// fetches under 1% of the pages.
	lazy := exec.Command(sqlsyncBin, append(query, "--lazy", "--cache-mib", "4",
		`SELECT id, length(body) AS n FROM big WHERE k = ?`, fmt.Sprintf("[%d]", 777*7919%1000003))...)
	out.Reset()
	errOut.Reset()
	lazy.Stdout, lazy.Stderr = &out, &errOut
	if err := lazy.Run(); err != nil {
		t.Fatalf("lazy query: %v\n%s", err, errOut.String())
	}
	if want := `[{"id":777,"n":1000}]`; strings.TrimSpace(out.String()) != want {
		t.Fatalf("lazy query printed %q, want %s", out.String(), want)
	}
	if strings.Contains(errOut.String(), "download") {
		t.Fatalf("the lazy query downloaded the document:\n%s", errOut.String())
	}
	_, body = servertest.Get(t, srv.url()+"/metrics")
	sent := regexp.MustCompile(`sqlsync_lazy_pages_total\{outcome="sent"\} (\d+)`).FindSubmatch(body)
	if sent == nil {
		t.Fatalf("no lazy pages counted:\n%s", grepLines(string(body), "sqlsync_lazy"))
	}
	if n, _ := strconv.Atoi(string(sent[1])); n*100 > bigDocBytes/4096 || n == 0 {
		t.Fatalf("the lazy point query fetched %d pages of %d", n, bigDocBytes/4096)
	} else {
		t.Logf("lazy point query: %d pages fetched of %d", n, bigDocBytes/4096)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
