package engine

import (
	"sync"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// versionBudget bounds the bytes a document's version cache holds.
const versionBudget = 2 << 20

// pageVersion is a page's content from the commit at lsn on.
type pageVersion struct {
	lsn  uint64
	data []byte
}

// versionCache keeps the two newest versions of recently committed pages,
// so a diff can carry a page as a delta against the copy its receiver has:
// for a receiver at LSN a, that copy is the older version when
// older.lsn <= a < newer.lsn. Pages it does not know go whole.
type versionCache struct {
	mu    sync.Mutex
	pages map[uint32]*[2]pageVersion // [older, newer]
	bytes int
	// order lists pages as they were recorded, oldest first, for evicting
	// the least recently changed pages when over budget. An entry whose
	// page was recorded again later is stale and skipped.
	order []recorded
}

type recorded struct {
	no  uint32
	lsn uint64
}

// record notes the pages of a commit. A commit that shrinks the database
// empties the cache: the receivers' copies of cut pages are then unclear.
func (v *versionCache) record(c vfs.Commit, before uint32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pages == nil || c.PageCount < before {
		v.pages, v.bytes, v.order = map[uint32]*[2]pageVersion{}, 0, nil
	}
	defer v.evict()
	for _, p := range c.Pages {
		e := v.pages[p.No]
		if e == nil {
			e = &[2]pageVersion{}
			v.pages[p.No] = e
		} else if e[0].data != nil {
			v.bytes -= len(e[0].data)
		}
		e[0], e[1] = e[1], pageVersion{lsn: c.LSN, data: p.Data}
		v.bytes += len(p.Data)
		v.order = append(v.order, recorded{p.No, c.LSN})
	}
}

// evict drops the least recently changed pages until the cache fits its
// budget.
func (v *versionCache) evict() {
	for v.bytes > versionBudget && len(v.order) > 0 {
		r := v.order[0]
		v.order = v.order[1:]
		if e := v.pages[r.no]; e != nil && e[1].lsn == r.lsn {
			v.bytes -= len(e[0].data) + len(e[1].data)
			delete(v.pages, r.no)
		}
	}
	if len(v.order) > 4*len(v.pages)+64 {
		live := v.order[:0]
		for _, r := range v.order {
			if e := v.pages[r.no]; e != nil && e[1].lsn == r.lsn {
				live = append(live, r)
			}
		}
		v.order = live
	}
}

// base returns the receiver's copy of page no, for a receiver at LSN from
// getting the version committed at or before upTo, if the cache knows it.
func (v *versionCache) base(no uint32, from, upTo uint64) []byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	e := v.pages[no]
	if e == nil || e[0].data == nil || e[1].lsn > upTo {
		return nil
	}
	if e[0].lsn <= from && from < e[1].lsn {
		return e[0].data
	}
	return nil
}
