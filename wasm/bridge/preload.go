package bridge

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// Preload returns a store that serves every page of s from memory: it
// reads them all now, and keeps the copy up to date as commits are applied
// through it. A WebAssembly mutator's SQL runs inside a call from
// JavaScript into Go (the guest's sqlsync.run), where waiting on a
// JavaScript promise, as an IndexedDB read does, would deadlock; with this
// store such a call never waits. It costs the document's size in memory.
// Closing it closes s.
func Preload(s vfs.Store) (vfs.Store, error) {
	p := &preloaded{Store: s, pages: map[uint32][]byte{}}
	zero := make([]byte, vfs.PageSize)
	buf := make([]byte, vfs.PageSize)
	for no := uint32(1); no <= s.PageCount(); no++ {
		if err := s.ReadPage(no, buf); err != nil {
			return nil, fmt.Errorf("preload page %d: %w", no, err)
		}
		if !bytes.Equal(buf, zero) {
			p.pages[no] = append([]byte(nil), buf...)
		}
	}
	return p, nil
}

type preloaded struct {
	vfs.Store
	// mu is held across Apply, so that readers see the pages, page count
	// and LSN of one commit or the next, never a mix.
	mu    sync.RWMutex
	pages map[uint32][]byte // absent: zeros
}

func (p *preloaded) LSN() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.Store.LSN()
}

func (p *preloaded) PageCount() uint32 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.Store.PageCount()
}

func (p *preloaded) ReadPage(no uint32, buf []byte) error {
	if len(buf) < vfs.PageSize {
		return fmt.Errorf("preload: read page %d: buffer holds %d bytes, need %d", no, len(buf), vfs.PageSize)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	page := p.pages[no]
	if page == nil || no > p.Store.PageCount() {
		clear(buf[:vfs.PageSize])
		return nil
	}
	copy(buf, page)
	return nil
}

func (p *preloaded) Apply(c vfs.Commit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	before := p.Store.PageCount()
	if err := p.Store.Apply(c); err != nil {
		return err
	}
	for _, pg := range c.Pages {
		p.pages[pg.No] = append(p.pages[pg.No][:0], pg.Data...)
	}
	if c.PageCount < before {
		for no := range p.pages {
			if no > c.PageCount {
				delete(p.pages, no)
			}
		}
	}
	return nil
}
