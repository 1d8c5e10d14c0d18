package server

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// TestCatchUpWhileCommitting is issue 11 end to end: a replica starting
// from nothing on a document of about 3000 pages catches up, within 30 s,
// while another replica commits one mutation at a time as fast as it can,
// and then both converge with the coordinator. (At this size a read of the
// document is shorter than a commit's round trip, so the old DiffFrom got
// there too; shared/engine's TestDiffWhileCommitting is the one that
// reproduces the livelock.)
func TestCatchUpWhileCommitting(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, Config{Mutator: func(string) engine.Mutator { return testmutator.SQL{} }})
	w := openClient(t, ts, "doc", clientOptions{mutator: testmutator.SQL{}})
	exec := func(sql string) error {
		_, err := w.Mutate(ctx, "exec", testmutator.SQLArgs{SQL: sql}.Encode())
		return err
	}
	if err := exec(`CREATE TABLE big(b BLOB); CREATE TABLE small(x INTEGER);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
		INSERT INTO big SELECT randomblob(3000) FROM n`); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, w)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	var writes int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// One mutation per commit: wait for each.
			if writeErr = exec(`INSERT INTO small(x) VALUES (` + strconv.Itoa(i) + `)`); writeErr == nil {
				writeErr = w.WaitSynced(ctx)
			}
			if writeErr != nil {
				return
			}
			writes = i + 1
		}
	}()
	stopWriting := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriting()

	_, lsn0 := ts.coordinatorBytes(t, "doc")
	late := openClient(t, ts, "doc", clientOptions{mutator: testmutator.SQL{}})
	deadline := time.Now().Add(30 * time.Second)
	for late.Status().LSN < lsn0 {
		if time.Now().After(deadline) {
			_, lsn := ts.coordinatorBytes(t, "doc")
			t.Fatalf("the late replica is at LSN %d after 30 s, not yet at %d; the document went on to %d", late.Status().LSN, lsn0, lsn)
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, lsn1 := ts.coordinatorBytes(t, "doc")
	t.Logf("the late replica caught up with LSN %d while the document went from %d to %d", late.Status().LSN, lsn0, lsn1)
	stopWriting()
	t.Logf("%d writes", writes)
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	waitConverged(t, ts, "doc", w, late)
}
