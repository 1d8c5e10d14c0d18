package filestore_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/hack-pad/hackpadfs/mem"

	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/filestore"
)

func Example() {
	// Any hackpadfs.FS works; for files on disk use
	// hackpadfs.Sub(os.NewFS(), "path/to/dir") from hackpadfs/os.
	fsys, err := mem.NewFS()
	if err != nil {
		log.Fatal(err)
	}
	s, err := filestore.Open(fsys, "docs/1")
	if err != nil {
		log.Fatal(err)
	}
	page := bytes.Repeat([]byte{'x'}, vfs.PageSize)
	if err := s.Apply(vfs.Commit{LSN: 1, PageCount: 2, Pages: []vfs.Page{{No: 2, Data: page}}}); err != nil {
		log.Fatal(err)
	}
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}

	// Reopening finds the commit.
	s, err = filestore.Open(fsys, "docs/1")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, vfs.PageSize)
	if err := s.ReadPage(2, buf); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.LSN(), s.PageCount(), string(buf[:3]), s.ChangedSince(0))
	// Output: 1 2 xxx [1 2]
}
