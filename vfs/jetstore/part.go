package jetstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sqlsync-go/sqlsync/vfs"
)

// A part is one message of a commit:
//
//	magic "SQJ1" | LSN u64 | page count u32 | part u16 | parts u16 | pages
//
// big-endian, each page its number (u32) and its PageSize bytes. A commit
// of n parts is whole once parts 0 to n-1 have come in order.
const (
	magic      = "SQJ1"
	headerSize = len(magic) + 8 + 4 + 2 + 2
	pageEntry  = 4 + vfs.PageSize
	maxParts   = 1<<16 - 1
)

// split encodes c into parts of at most maxBytes each.
func split(c vfs.Commit, maxBytes int) ([][]byte, error) {
	per := (maxBytes - headerSize) / pageEntry
	n := max(1, (len(c.Pages)+per-1)/per)
	if n > maxParts {
		return nil, errTooManyParts
	}
	parts := make([][]byte, n)
	for i := range parts {
		pages := c.Pages[min(i*per, len(c.Pages)):min((i+1)*per, len(c.Pages))]
		b := make([]byte, headerSize, headerSize+len(pages)*pageEntry)
		copy(b, magic)
		binary.BigEndian.PutUint64(b[4:], c.LSN)
		binary.BigEndian.PutUint32(b[12:], c.PageCount)
		binary.BigEndian.PutUint16(b[16:], uint16(i))
		binary.BigEndian.PutUint16(b[18:], uint16(n))
		for _, p := range pages {
			b = binary.BigEndian.AppendUint32(b, p.No)
			b = append(b, p.Data...)
		}
		parts[i] = b
	}
	return parts, nil
}

// errTooManyParts reports a commit too large for one group of parts.
var errTooManyParts = errors.New("commit needs more than 65535 parts")

// assembler puts commits back together from their parts, in stream order.
type assembler struct {
	c     vfs.Commit
	next  int // the part expected next; 0: none begun
	parts int
}

// add takes the next message of the subject; done says it completed c.
func (a *assembler) add(b []byte) (c vfs.Commit, done bool, err error) {
	if len(b) < headerSize || string(b[:4]) != magic || (len(b)-headerSize)%pageEntry != 0 {
		return vfs.Commit{}, false, fmt.Errorf("%w: not a commit part (%d bytes)", vfs.ErrCorrupt, len(b))
	}
	lsn := binary.BigEndian.Uint64(b[4:])
	count := binary.BigEndian.Uint32(b[12:])
	part := int(binary.BigEndian.Uint16(b[16:]))
	parts := int(binary.BigEndian.Uint16(b[18:]))
	if parts == 0 || part >= parts {
		return vfs.Commit{}, false, fmt.Errorf("%w: part %d of %d", vfs.ErrCorrupt, part, parts)
	}
	switch {
	case part == 0:
		// A first part begins a commit; an unfinished one before it was
		// cut short and never became durable.
		*a = assembler{c: vfs.Commit{LSN: lsn, PageCount: count}, parts: parts}
	case a.next != part || a.c.LSN != lsn || a.parts != parts:
		// The rest of a commit whose beginning was cut short: skip.
		*a = assembler{}
		return vfs.Commit{}, false, nil
	}
	for off := headerSize; off < len(b); off += pageEntry {
		data := make([]byte, vfs.PageSize)
		copy(data, b[off+4:off+pageEntry])
		a.c.Pages = append(a.c.Pages, vfs.Page{No: binary.BigEndian.Uint32(b[off:]), Data: data})
	}
	a.next = part + 1
	if a.next < a.parts {
		return vfs.Commit{}, false, nil
	}
	c = a.c
	*a = assembler{}
	return c, true, nil
}
