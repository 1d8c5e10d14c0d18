package vfs

import (
	"errors"
	"fmt"
	"iter"

	"github.com/sqlsync-go/sqlsync/vfs/internal/storestate"
)

// PageSize is the size in bytes of every page sqlsync stores and sends.
const PageSize = 4096

// Page is one database page, numbered from 1 as SQLite numbers them.
type Page struct {
	No   uint32
	Data []byte
}

// Commit is one atomic change of a store: the pages it writes, the page count
// after it, and the LSN it brings the store to.
type Commit struct {
	LSN       uint64
	PageCount uint32
	Pages     []Page
}

// Store is durable page storage at an LSN: a client's snapshot, or the
// coordinator's copy of a document.
//
// Implementations are safe for concurrent use.
type Store interface {
	// LSN returns the LSN of the last applied commit (0 for a new store).
	LSN() uint64
	// PageCount returns the number of pages in the database.
	PageCount() uint32
	// ReadPage copies page no (1-based) into buf, which is PageSize long.
	// A page at or below PageCount that was never written reads as zeros.
	ReadPage(no uint32, buf []byte) error
	// Apply makes c durable: after it returns nil, all of c's pages, its page
	// count and its LSN survive a crash; if it fails or the process dies
	// first, none of them do.
	Apply(c Commit) error
	// ChangedSince returns, in ascending order, the numbers of the pages
	// (at or below PageCount) whose newest version was written after lsn.
	// It takes time proportional to the number of pages returned.
	ChangedSince(lsn uint64) []uint32
	// Close releases the store's resources.
	Close() error
}

// ChangeReader is a Store that can read its changed pages as one version.
// DiffFrom uses it to finish a read while commits go on.
type ChangeReader interface {
	// ReadChanged returns the store's LSN, its page count and the newest
	// copy of every page changed after lsn (as ChangedSince lists them),
	// all as of that one LSN: commits wait until it returns, so callers
	// keep the set small.
	ReadChanged(lsn uint64) (Commit, error)
}

// DeferredApplier is a Store that can apply a commit before it is durable,
// for commits that are durable elsewhere already (a replica's diffs from
// the coordinator): the commit reads at once and is durable once
// SyncApplied returns. A crash in between may lose deferred commits,
// newest first, each whole; a later Apply makes the deferred commits before
// it durable too.
type DeferredApplier interface {
	ApplyDeferred(c Commit) error
	SyncApplied() error
}

// Stager is a Store that takes one large commit in pieces, for a replica
// downloading a document too large to hold in memory: pages are staged
// durably and out of sight, and CommitStaged makes them visible, with the
// commit's LSN and page count, in one atomic step. A download that breaks
// (the connection, or the process) resumes from the stage left behind:
// Staged returns the cursor saved with the last pages staged.
//
// Apply and ApplyDeferred empty the stage: a replica that takes a diff
// otherwise has given the download up.
type Stager interface {
	// Staged returns the cursor given with the last pages staged and how
	// many page copies are staged (a page staged twice counts twice); ok is
	// false when the stage is empty.
	Staged() (cursor []byte, pages int, ok bool)
	// Stage adds pages to the stage, with cursor (at most MaxCursor bytes),
	// durably: once it returns, a reopened store reports cursor and the
	// pages; if it fails or the process dies first, it reports the cursor
	// and pages before. Pages come in any order, each PageSize long and
	// numbered from 1; a page staged again replaces its earlier copy.
	// Readers do not see staged pages.
	Stage(cursor []byte, pages []Page) error
	// CommitStaged applies, as one commit, the staged pages overlaid with
	// c's pages, at c's LSN and page count: staged pages above c.PageCount
	// are dropped, and every page above the store's page count up to
	// c.PageCount must be staged or in c (as a fast-forward diff carries
	// every page that came into being), else it fails with ErrBadCommit.
	// All of it survives a crash or none; either way the stage empties
	// once it returns nil.
	CommitStaged(c Commit) error
	// DropStaged empties the stage.
	DropStaged() error
}

// MaxCursor bounds the cursor a Stager keeps with its stage.
const MaxCursor = 1024

// ErrCursor reports a cursor longer than MaxCursor.
var ErrCursor = errors.New("sqlsync/vfs: stage cursor too long")

// ErrCorrupt reports stored state that fails its own checks.
var ErrCorrupt = errors.New("sqlsync/vfs: corrupt store")

// ErrBadCommit reports a commit that a store refuses before changing anything.
var ErrBadCommit = errors.New("sqlsync/vfs: bad commit")

// ReadCommit gathers the pages nos of a store at lsn with count pages, as
// read reads them, into one Commit: the body of a store's ReadChanged, run
// with the store locked against commits.
func ReadCommit(lsn uint64, count uint32, nos []uint32, read func(no uint32, buf []byte) error) (Commit, error) {
	c := Commit{LSN: lsn, PageCount: count, Pages: make([]Page, 0, len(nos))}
	for _, no := range nos {
		buf := make([]byte, PageSize)
		if err := read(no, buf); err != nil {
			return Commit{}, err
		}
		c.Pages = append(c.Pages, Page{No: no, Data: buf})
	}
	return c, nil
}

// CheckStaged checks c as the CommitStaged of a store at lsn with count
// pages, whose stage holds the distinct pages staged (each yielded once):
// c must be a valid commit, and every page that comes into being must be
// staged or in c.
func CheckStaged(lsn uint64, count uint32, c Commit, staged iter.Seq[uint32]) error {
	if err := c.Validate(lsn); err != nil {
		return err
	}
	if c.PageCount <= count {
		return nil
	}
	inC := map[uint32]bool{}
	for _, p := range c.Pages {
		if p.No > count {
			inC[p.No] = true
		}
	}
	covered := uint64(len(inC))
	for no := range staged {
		if no > count && no <= c.PageCount && !inC[no] {
			covered++
		}
	}
	if need := uint64(c.PageCount - count); covered != need {
		return fmt.Errorf("%w: grows from %d to %d pages but carries %d of the %d new pages", ErrBadCommit, count, c.PageCount, covered, need)
	}
	return nil
}

// ValidateStage checks pages and cursor for Stager.Stage.
func ValidateStage(cursor []byte, pages []Page) error {
	if len(cursor) > MaxCursor {
		return fmt.Errorf("%w: %d bytes", ErrCursor, len(cursor))
	}
	for _, p := range pages {
		if p.No == 0 || len(p.Data) != PageSize {
			return fmt.Errorf("%w: staged page %d has %d bytes", ErrBadCommit, p.No, len(p.Data))
		}
	}
	return nil
}

// PageNumbers returns the numbers of c's pages, in c's order.
func (c Commit) PageNumbers() []uint32 {
	nos := make([]uint32, len(c.Pages))
	for i, p := range c.Pages {
		nos[i] = p.No
	}
	return nos
}

// Validate checks c against a store at lsn: the LSN must grow, and pages must
// be full, ascending, unique and within the page count.
func (c Commit) Validate(lsn uint64) error {
	if err := storestate.Check(lsn, c.LSN, c.PageCount, c.PageNumbers()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCommit, err)
	}
	for _, p := range c.Pages {
		if len(p.Data) != PageSize {
			return fmt.Errorf("%w: page %d has %d bytes", ErrBadCommit, p.No, len(p.Data))
		}
	}
	return nil
}

// ErrClosed reports use of a closed store or database.
var ErrClosed = errors.New("sqlsync/vfs: closed")

// Partial is a Store that holds only some pages of its snapshot: a lazy
// replica's. ReadPage of a page it lacks fetches the page, or fails with a
// *MissError; its LSN and page count are the whole snapshot's.
type Partial interface {
	Store
	Holder
	// Held returns the numbers of the pages it holds, ascending.
	Held() []uint32
}

// Holder is a Store whose ReadPage may wait (for the network, or for a
// JavaScript promise) on pages it does not hold in memory: a Partial
// store, or a cache over IndexedDB.
type Holder interface {
	// Holds reports whether ReadPage of page no returns without waiting.
	Holds(no uint32) bool
}

// ErrMustFetch reports a page a Holder store lacks, read where the read
// must not wait for the network (Database.SetNoWait): the caller fetches
// it (ReadPage, where waiting is fine) and runs the statement again.
var ErrMustFetch = errors.New("sqlsync/vfs: the page must be fetched before the statement runs again")

// ErrOffline reports a page a lazy replica lacks while it cannot fetch it
// (it is not connected).
var ErrOffline = errors.New("sqlsync/vfs: the page is not held by this lazy replica, and it is offline")

// MissError is a page a Partial store lacks and could not fetch. With LSN
// set, the page changed after the snapshot's LSN: it can be read once the
// snapshot has reached LSN, and the read should then be tried again.
// Otherwise Err says why (ErrOffline, or the fetch's error).
type MissError struct {
	Page uint32
	LSN  uint64
	Err  error
}

func (e *MissError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("sqlsync/vfs: page %d changed after this lazy replica's snapshot: read it again at LSN %d", e.Page, e.LSN)
	}
	return fmt.Sprintf("read page %d: %v", e.Page, e.Err)
}

func (e *MissError) Unwrap() error { return e.Err }
