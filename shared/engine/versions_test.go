package engine

import (
	"testing"

	"github.com/sqlsync-go/sqlsync/vfs"
)

func TestVersionCacheEvictsOldestPages(t *testing.T) {
	var v versionCache
	page := func() []byte { return make([]byte, vfs.PageSize) }
	// Page 1 changes at every commit; pages 2.. once each, enough to go
	// well over the budget.
	n := 2 * versionBudget / vfs.PageSize
	var count uint32 = 1
	for lsn := uint64(1); lsn <= uint64(n); lsn++ {
		count++
		v.record(vfs.Commit{LSN: lsn, PageCount: count, Pages: []vfs.Page{{No: 1, Data: page()}, {No: count, Data: page()}}}, count-1)
	}
	if v.bytes > versionBudget {
		t.Fatalf("cache holds %d bytes, over its budget of %d", v.bytes, versionBudget)
	}
	last := uint64(n)
	if v.base(1, last-1, last) == nil {
		t.Fatal("the hottest page was evicted")
	}
	if v.base(2, 0, last) != nil {
		t.Fatal("the coldest page is still cached")
	}
	if len(v.order) > 4*len(v.pages)+64 {
		t.Fatalf("eviction queue holds %d entries for %d pages", len(v.order), len(v.pages))
	}
}
