package server

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sqlsync-go/sqlsync/vfs/jetstore"
)

// jetLines is a lineLog on a JetStream subject: one message per append,
// holding its lines. Undo deletes the messages appended since the mark,
// replace publishes the new lines and purges what came before them.
type jetLines struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string
	seqs    []uint64 // the subject's messages, in order
	lines   []int    // how many lines each holds
	total   int
}

func openJetLines(ctx context.Context, j jetJournal, subject string, each func([]byte) (bool, error)) (*jetLines, error) {
	l := &jetLines{js: j.js, stream: j.stream, subject: subject}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stopped := false
	var drop []uint64 // messages after the line each stopped at
	_, err := jetstore.ReadSubject(ctx, j.stream, subject, func(seq uint64, data []byte) error {
		if stopped {
			drop = append(drop, seq)
			return nil
		}
		n := 0
		for line := range bytes.Lines(data) {
			keep, err := each(bytes.TrimSuffix(line, []byte("\n")))
			if err != nil {
				return fmt.Errorf("%s: corrupt line in message %d: %w", subject, seq, err)
			}
			if !keep {
				stopped = true
				break
			}
			n++
		}
		if stopped && n == 0 {
			drop = append(drop, seq)
			return nil
		}
		// A message is appended whole: one whose later lines were cut is
		// kept with the lines before (each has seen them).
		l.seqs, l.lines, l.total = append(l.seqs, seq), append(l.lines, n), l.total+n
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, seq := range drop {
		if err := j.stream.DeleteMsg(ctx, seq); err != nil {
			return nil, fmt.Errorf("%s: cut message %d: %w", subject, seq, err)
		}
	}
	return l, nil
}

func (l *jetLines) append(values ...any) error {
	buf, err := encodeLines(values)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := l.js.PublishMsg(ctx, &nats.Msg{Subject: l.subject, Data: buf})
	if err != nil {
		return fmt.Errorf("append to %s: %w", l.subject, err)
	}
	l.seqs, l.lines, l.total = append(l.seqs, ack.Sequence), append(l.lines, len(values)), l.total+len(values)
	return nil
}

func (l *jetLines) mark() lineMark { return lineMark{size: int64(len(l.seqs)), lines: l.total} }

func (l *jetLines) undo(m lineMark) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(l.seqs) > int(m.size) {
		last := len(l.seqs) - 1
		if err := l.stream.DeleteMsg(ctx, l.seqs[last]); err != nil {
			return fmt.Errorf("%s: undo message %d: %w", l.subject, l.seqs[last], err)
		}
		l.total -= l.lines[last]
		l.seqs, l.lines = l.seqs[:last], l.lines[:last]
	}
	return nil
}

func (l *jetLines) replace(values ...any) error {
	seqs, lines, total := l.seqs, l.lines, l.total
	l.seqs, l.lines, l.total = nil, nil, 0
	if err := l.append(values...); err != nil {
		l.seqs, l.lines, l.total = seqs, lines, total
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.stream.Purge(ctx, jetstream.WithPurgeSubject(l.subject), jetstream.WithPurgeSequence(l.seqs[0])); err != nil {
		return fmt.Errorf("%s: purge before %d: %w", l.subject, l.seqs[0], err)
	}
	return nil
}

func (l *jetLines) count() int { return l.total }

func (l *jetLines) close() error { return nil }
