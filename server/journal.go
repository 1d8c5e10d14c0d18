package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hack-pad/hackpadfs"
	osfs "github.com/hack-pad/hackpadfs/os"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/filestore"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore"
)

// Journal is where a coordinator keeps its documents' pages: the
// durable truth of each document, behind vfs.Store (both journals pass
// vfs/storetest). The default is the local disk under Config.DataDir;
// JetStreamJournal keeps them in a NATS JetStream stream.
type Journal interface {
	// OpenStore opens docID's store, creating it if needed.
	OpenStore(ctx context.Context, docID string) (vfs.Store, error)
}

// diskJournal keeps each document in a filestore under docs/<id>.
type diskJournal struct{ fsys hackpadfs.FS }

func (j diskJournal) OpenStore(_ context.Context, docID string) (vfs.Store, error) {
	return filestore.Open(j.fsys, "docs/"+docID)
}

// dataFS returns data directory dir (made absolute, with its docs
// directory created) as a hackpadfs FS, as the disk journal and the data
// directory's other files use it.
func dataFS(dir string) (hackpadfs.FS, string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
		return nil, "", err
	}
	fsys, err := osfs.NewFS().Sub(filepath.ToSlash(dir)[1:])
	return fsys, dir, err
}

// OpenDocumentStore opens document docID's store in the data directory of
// a coordinator keeping its documents on the local disk (serve --data),
// creating it if needed, for tools that fill or read a document while no
// coordinator runs on the directory (bench/cmd/sqlsync-fill). The caller
// closes it.
func OpenDocumentStore(dataDir, docID string) (vfs.Store, error) {
	if err := ValidDocID(docID); err != nil {
		return nil, err
	}
	fsys, _, err := dataFS(dataDir)
	if err != nil {
		return nil, fmt.Errorf("open document %s: %w", docID, err)
	}
	store, err := diskJournal{fsys: fsys}.OpenStore(context.Background(), docID)
	if err != nil {
		return nil, fmt.Errorf("open document %s: %w", docID, err)
	}
	return store, nil
}

// JetStreamJournal keeps every document's commits in stream, through js
// (see package vfs/jetstore): a commit is fenced on the document's last
// sequence, so of two coordinators writing one document only one
// succeeds; the other's document steps down (closes) and reopens from the
// stream on its next use.
func JetStreamJournal(js jetstream.JetStream, stream jetstream.Stream) Journal {
	return jetJournal{js: js, stream: stream}
}

type jetJournal struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

func (j jetJournal) OpenStore(ctx context.Context, docID string) (vfs.Store, error) {
	s, err := jetstore.Open(ctx, j.js, j.stream, docID, jetstore.Options{})
	if err != nil {
		return nil, fmt.Errorf("open %s from JetStream: %w", docID, err)
	}
	return s, nil
}

// openLines opens one kind of a document's lines (see lineLog), calling
// each with every line as lineFile's open does.
type openLines func(kind string, each func(line []byte) (keep bool, err error)) (lineLog, error)

// linesOf returns how docID's lines are opened: beside its pages, so that
// whoever opens the document finds them.
func (s *Server) linesOf(ctx context.Context, docID string) openLines {
	if j, ok := s.cfg.Journal.(interface {
		lines(ctx context.Context, docID string) openLines
	}); ok {
		return j.lines(ctx, docID)
	}
	return fileLines(s.fsys, docID) // a journal that keeps only pages
}

// lines keeps docID's lines in the stream, beside its commits.
func (j jetJournal) lines(ctx context.Context, docID string) openLines {
	return func(kind string, each func([]byte) (bool, error)) (lineLog, error) {
		return openJetLines(ctx, j, jetstore.LinesSubject(kind, docID), each)
	}
}

// fileLines opens docID's lines as files in its directory on fsys.
func fileLines(fsys hackpadfs.FS, docID string) openLines {
	return func(kind string, each func([]byte) (bool, error)) (lineLog, error) {
		return openLineFile(fsys, "docs/"+docID+"/"+kind, each)
	}
}
