// Package jetstore is a [vfs.Store] whose durable truth is a NATS JetStream
// stream: the scale-out journal of a coordinator's documents (the local
// filestore is the single-machine one). Both pass vfs/storetest.
//
// Layout: one stream (see EnsureStream) holds every document's commits, one
// subject per document (Subject). A commit is one message, or several
// ("parts") when its pages do not fit in one message; a part starts with a
// small binary header (see part) and carries whole pages. Each part is
// published with the subject's last sequence as this store last saw it
// (Nats-Expected-Last-Subject-Sequence): if anyone else has written the
// subject since, the stream refuses the write (error 10071, or 10164 on a
// replicated stream) and Apply fails with ErrFenced. That is the fence: a
// deposed owner's next write fails even while it still runs; so does the
// next write of a store whose publish failed after the stream stored it
// (a lost ack): reopened, it reads the truth. Each part also carries a
// Nats-Msg-Id unique to the attempt, so the client library's own retry of
// a publish is a no-op.
//
// A commit is durable once its last part is acked. The parts of a commit
// cut short (a failed publish, a crash between parts) stay in the stream;
// readers skip them: a group of parts counts only when complete, and a new
// first part drops an unfinished group.
//
// Pages are served from memory, rebuilt from the stream on Open. Snapshots
// and compaction (so that an open need not read every commit) are not
// built yet.
package jetstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sqlsync-go/sqlsync/vfs"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// SubjectPrefix begins every document's commit subject.
const SubjectPrefix = "sqlsync.commits."

// Subject returns the subject of docID's commits. Document IDs may hold
// '.', which separates subject tokens: the ID goes in base64url.
func Subject(docID string) string {
	return SubjectPrefix + base64.RawURLEncoding.EncodeToString([]byte(docID))
}

// LinesPrefix begins the subjects of what a coordinator keeps beside each
// document (its client identities, its recent rejections): see
// LinesSubject.
const LinesPrefix = "sqlsync.lines."

// LinesSubject returns the subject of docID's lines of one kind.
func LinesSubject(kind, docID string) string {
	return LinesPrefix + kind + "." + base64.RawURLEncoding.EncodeToString([]byte(docID))
}

// EnsureStream creates the stream name holding every document's commits
// (and the lines kept beside them), or updates its configuration, with
// replicas copies (1 on a single node).
func EnsureStream(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.Stream, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Subjects:    []string{SubjectPrefix + ">", LinesPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
		Compression: jetstream.S2Compression,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstore: ensure stream %s: %w", name, err)
	}
	return st, nil
}

// ErrFenced reports a commit the stream refused because someone else wrote
// the document's subject since this store last read it: another owner
// took the document over. The store refuses every later Apply; reopen it
// to follow the new owner.
var ErrFenced = errors.New("jetstore: fenced: another writer has appended to the document")

// ErrUncertain reports a publish that failed without saying whether the
// stream stored it (a timeout, a lost connection): the store cannot know
// its own state, refuses every later Apply, and must be reopened.
var ErrUncertain = errors.New("jetstore: a publish failed and may have been stored")

// Options tune a store.
type Options struct {
	// MaxPartBytes bounds one message; 0 means the connection's max
	// payload (1 MiB by default).
	MaxPartBytes int
	// Timeout bounds each publish and each read while opening; 0 means
	// 10 s.
	Timeout time.Duration
}

// Store is one document's pages, kept in memory and journaled in JetStream.
type Store struct {
	js      jetstream.JetStream
	subject string
	opts    Options
	session [16]byte // in every Msg-Id this store publishes
	mem     *memstore.Store

	mu      sync.Mutex // serialises Apply
	last    uint64     // the subject's last stream sequence this store saw
	stale   error      // set once a write was fenced or its outcome unknown
	attempt uint64     // Apply calls so far, in every Msg-Id
}

var (
	_ vfs.Store        = (*Store)(nil)
	_ vfs.ChangeReader = (*Store)(nil)
)

// Open reads docID's commits from stream and returns its store.
func Open(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, docID string, opts Options) (*Store, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxPartBytes == 0 {
		opts.MaxPartBytes = int(js.Conn().MaxPayload())
	}
	if opts.MaxPartBytes < headerSize+pageEntry {
		return nil, fmt.Errorf("jetstore: open %s: parts of %d bytes cannot hold a page", docID, opts.MaxPartBytes)
	}
	s := &Store{js: js, subject: Subject(docID), opts: opts, mem: memstore.New()}
	if _, err := rand.Read(s.session[:]); err != nil {
		return nil, fmt.Errorf("jetstore: open %s: %w", docID, err)
	}
	if err := s.load(ctx, stream); err != nil {
		return nil, fmt.Errorf("jetstore: open %s: %w", docID, err)
	}
	return s, nil
}

// load applies every complete commit on the subject to memory.
func (s *Store) load(ctx context.Context, stream jetstream.Stream) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var group assembler
	last, err := ReadSubject(ctx, stream, s.subject, func(seq uint64, data []byte) error {
		c, done, err := group.add(data)
		if err != nil {
			return fmt.Errorf("commit message %d: %w", seq, err)
		}
		if done {
			if err := s.mem.Apply(c); err != nil {
				return fmt.Errorf("commit message %d: %w: %w", seq, vfs.ErrCorrupt, err)
			}
		}
		return nil
	})
	s.last = last
	return err
}

// ReadSubject calls each with every message on subject, in order, and
// returns the stream sequence of the last (0 for none). It asks for one
// message at a time ("the next on subject from sequence n"), each request
// bounded by ctx: an ordered consumer would be faster, but while JetStream
// elects a leader it retries creating itself without end, whatever ctx
// says (seen as a coordinator stuck opening a document after a node died).
func ReadSubject(ctx context.Context, stream jetstream.Stream, subject string, each func(seq uint64, data []byte) error) (uint64, error) {
	lastMsg, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", subject, err)
	}
	last := lastMsg.Sequence
	for seq := uint64(1); seq <= last; {
		msg, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			return 0, fmt.Errorf("read %s: the message at or after %d of %d: %w", subject, seq, last, err)
		}
		if msg.Sequence > last {
			break
		}
		if err := each(msg.Sequence, msg.Data); err != nil {
			return 0, err
		}
		seq = msg.Sequence + 1
	}
	return last, nil
}

// LSN returns the LSN of the last applied commit.
func (s *Store) LSN() uint64 { return s.mem.LSN() }

// PageCount returns the number of pages.
func (s *Store) PageCount() uint32 { return s.mem.PageCount() }

// ReadPage copies page no into buf.
func (s *Store) ReadPage(no uint32, buf []byte) error { return s.mem.ReadPage(no, buf) }

// ChangedSince returns the pages changed after lsn.
func (s *Store) ChangedSince(lsn uint64) []uint32 { return s.mem.ChangedSince(lsn) }

// ReadChanged returns the pages changed after lsn as one version.
func (s *Store) ReadChanged(lsn uint64) (vfs.Commit, error) { return s.mem.ReadChanged(lsn) }

// Apply publishes c, part by part, each fenced on the subject's last
// sequence, and applies it to memory once its last part is acked.
func (s *Store) Apply(c vfs.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stale != nil {
		return fmt.Errorf("apply commit %d: %w", c.LSN, s.stale)
	}
	if err := c.Validate(s.mem.LSN()); err != nil {
		return fmt.Errorf("apply commit: %w", err)
	}
	parts, err := split(c, s.opts.MaxPartBytes)
	if err != nil {
		return fmt.Errorf("apply commit %d: %w", c.LSN, err)
	}
	s.attempt++
	for i, data := range parts {
		if err := s.publish(c.LSN, i, data); err != nil {
			return fmt.Errorf("apply commit %d: part %d of %d: %w", c.LSN, i+1, len(parts), err)
		}
	}
	return s.mem.Apply(c)
}

func (s *Store) publish(lsn uint64, part int, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	msg := &nats.Msg{Subject: s.subject, Data: data}
	// Unique to this attempt: the engine may retry an LSN with other
	// pages after a failed publish whose ack was only lost, and a Msg-Id
	// seen before would make the stream ack the new pages as a duplicate
	// of the old ones (the fence then refuses the retry instead).
	id := fmt.Sprintf("%s/%x/%d/%d/%d", s.subject, s.session, s.attempt, lsn, part)
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(s.last), jetstream.WithMsgID(id))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		s.stale = fmt.Errorf("%w (%v)", ErrFenced, err)
		return s.stale
	}
	if err != nil {
		s.stale = fmt.Errorf("%w: %v", ErrUncertain, err)
		return s.stale
	}
	s.last = ack.Sequence
	return nil
}

// Stale returns why the store refuses commits (ErrFenced: another writer
// took over; ErrUncertain: a publish's outcome is unknown), else nil: a
// caller whose commit failed (the error may come back through SQLite
// without its cause) learns from it that it must reopen the document.
func (s *Store) Stale() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stale
}

// Close drops the pages from memory; the stream keeps the document.
func (s *Store) Close() error { return s.mem.Close() }
