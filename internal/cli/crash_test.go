package cli_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/client"
	"github.com/sqlsync-go/sqlsync/server/servertest"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// writerLog is what one replica's writer did: every mutation Mutate
// returned for is durably recorded and must end applied exactly once.
type writerLog struct {
	added   []string
	toggles int    // toggles of the writer's flag item
	last    uint64 // seq of its last mutation
	err     error
}

// TestCrashRecovery kills the coordinator process with SIGKILL while three
// replicas stream mutations, restarts it on the same data directory, and
// checks that the replicas reconnect by themselves and catch up with a diff
// (not a download of the document), that every mutation any replica
// recorded is applied exactly once, and that all converge on an intact
// document.
func TestCrashRecovery(t *testing.T) {
	seed := servertest.Seed(t)
	addr, dir := freeAddr(t), t.TempDir()
	srv := startServe(t, addr, dir)
	const doc = "crash"
	streamFor := 400 * time.Millisecond
	if testing.Short() {
		streamFor = 150 * time.Millisecond
	}

	wires := make([]*servertest.WireLog, 3)
	replicas := make([]*client.Doc, 3)
	for i := range replicas {
		wires[i] = &servertest.WireLog{}
		replicas[i] = openReplica(t, srv.url(), doc, client.Options{StateDir: t.TempDir(), Dial: wires[i].Dial})
		replicas[i].Watch(func(e client.Event) {
			if e.Rejected != nil {
				t.Errorf("replica %d: unexpected rejection %v", i, e.Rejected)
			}
		})
	}
	// A document large enough that a full download and a catch-up diff
	// are easy to tell apart.
	if _, err := replicas[0].Mutate(context.Background(), "bulk", testmutator.Args{Prefix: "bulk-", N: 8000}.Encode()); err != nil {
		t.Fatal(err)
	}
	for i, d := range replicas {
		if _, err := d.Mutate(context.Background(), "add", testmutator.Args{ID: fmt.Sprintf("flag-%d", i), Title: "flag"}.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	waitSameLSN(t, replicas...)

	logs := make([]writerLog, len(replicas))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, d := range replicas {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			w := &logs[i]
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				name, a := "add", testmutator.Args{ID: fmt.Sprintf("c%d-%04d", i, j), Title: fmt.Sprintf("item %d of %d", j, i)}
				if r.IntN(4) == 0 {
					name, a = "toggle", testmutator.Args{ID: fmt.Sprintf("flag-%d", i)}
				}
				seq, err := d.Mutate(context.Background(), name, a.Encode())
				if err != nil {
					w.err = fmt.Errorf("replica %d: %s %s: %w", i, name, a.ID, err)
					return
				}
				w.last = seq
				if name == "add" {
					w.added = append(w.added, a.ID)
				} else {
					w.toggles++
				}
				time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
			}
		})
	}

	time.Sleep(streamFor)
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	marks := make([]int, len(replicas))
	for i, w := range wires {
		marks[i] = w.Len()
	}
	time.Sleep(streamFor / 2) // the replicas go on writing offline
	srv = startServe(t, addr, dir)
	time.Sleep(streamFor) // and on after the restart
	close(stop)
	wg.Wait()
	for _, w := range logs {
		if w.err != nil {
			t.Fatal(w.err)
		}
	}
	lsn := waitSameLSN(t, replicas...)

	// Each replica reconnected with the LSN of its snapshot and caught up
	// with a diff from there.
	for i, w := range wires {
		hello, diffs := w.AfterHello(marks[i])
		if hello == nil || len(diffs) == 0 {
			t.Fatalf("replica %d: hello %v and %d diff frames after the restart", i, hello, len(diffs))
		}
		if hello.LSN == 0 {
			t.Fatalf("replica %d reconnected from LSN 0", i)
		}
		first := diffs[0]
		if got, want := first.From, hello.LSN; got != want {
			t.Fatalf("replica %d: first diff after the restart from %v, want its hello's %v", i, got, want)
		}
		pages, total := 0, 0
		for _, f := range diffs { // the catch-up diff's frames
			pages += len(f.Pages)
			if !f.More {
				break
			}
		}
		for _, f := range diffs {
			total += len(f.Pages)
		}
		t.Logf("replica %d: reconnected at LSN %d; catch-up diff to %d has %d of %d pages; %d pages in %d frames until LSN %d",
			i, hello.LSN, first.To, pages, first.PageCount, total, len(diffs), lsn)
		if pages*4 > int(first.PageCount) {
			t.Fatalf("replica %d: catch-up diff of %d pages for a %d-page document: a download, not a diff", i, pages, first.PageCount)
		}
	}

	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d", code)
	}
	file, db := coordinatorFile(t, dir, doc)
	for i, d := range replicas {
		b, err := d.Engine().Database().Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(file) {
			t.Fatalf("replica %d differs from the coordinator's file", i)
		}
		rows, err := d.Query(context.Background(), `PRAGMA integrity_check`)
		if err != nil || fmt.Sprint(rows.Values) != "[[ok]]" {
			t.Fatalf("replica %d integrity_check: %v %v", i, rows.Values, err)
		}
	}

	// Exactly once: every recorded add is there, each flag was toggled as
	// many times as recorded, and each replica's last seq is its last
	// mutation's.
	conn, err := db.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	count := func(sql string, args ...any) int64 {
		t.Helper()
		rows, err := sqlrows.Query(conn, sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		return rows.Values[0][0].(int64)
	}
	total := 0
	for i, w := range logs {
		total += len(w.added)
		for _, id := range w.added {
			if got, want := count(`SELECT count(*) FROM items WHERE id = ?`, id), int64(1); got != want {
				t.Fatalf("replica %d's %s: got %v copies, want %v", i, id, got, want)
			}
		}
		if got, want := count(`SELECT done FROM items WHERE id = ?`, fmt.Sprintf("flag-%d", i)), int64(w.toggles%2); got != want {
			t.Fatalf("replica %d toggled its flag %d times: done got %v, want %v", i, w.toggles, got, want)
		}
		if got, want := count(`SELECT last_seq FROM `+engine.ClientsTable+` WHERE client_id = ?`, replicas[i].ClientID()), int64(w.last); got != want {
			t.Fatalf("replica %d: last_seq got %v, want %v", i, got, want)
		}
		t.Logf("replica %d: %d adds and %d toggles, last seq %d", i, len(w.added), w.toggles, w.last)
	}
	if got, want := count(`SELECT count(*) FROM items`), int64(8000+len(replicas)+total); got != want {
		t.Fatalf("items: got %v, want %v", got, want)
	}
}
