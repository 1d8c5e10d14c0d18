package mutatorhost

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
)

// Output receives a guest's stdout and stderr (WASI fd_write): it logs
// them line by line at debug level, up to a byte budget per call, and keeps
// the start of the call's stderr for error messages (a Go guest prints its
// fatal errors there before it exits). It is not safe for concurrent use:
// a host gives each instance its own and calls it from one call at a time.
type Output struct {
	log     *slog.Logger
	budget  int // bytes that may still be logged during this call
	limit   int
	dropped bool
	partial [2][]byte // an unfinished line per stream
	stderr  []byte    // the start of this call's stderr
}

const (
	stderrKeep  = 4 << 10 // stderr bytes kept per call for error messages
	maxLineSize = 1 << 10 // a longer unfinished line is logged in pieces
)

// NewOutput returns an Output logging to log, at most limit bytes per call.
func NewOutput(log *slog.Logger, limit int) *Output {
	return &Output{log: log, limit: limit, budget: limit}
}

// SetLogger changes the logger, as when an instance passes to a new owner.
func (o *Output) SetLogger(log *slog.Logger) { o.log = log }

// Begin starts a call: a fresh log budget and stderr record.
func (o *Output) Begin() {
	o.budget, o.dropped = o.limit, false
	o.partial[0], o.partial[1] = o.partial[0][:0], o.partial[1][:0]
	o.stderr = o.stderr[:0]
}

// Stdout and Stderr are the guest's two output streams, as WASI numbers
// them less one.
const (
	Stdout = 0
	Stderr = 1
)

// Stream returns the writer of stream idx ([Stdout] or [Stderr]).
func (o *Output) Stream(idx int) io.Writer { return stream{o, idx} }

// stream is one of the guest's two output streams.
type stream struct {
	o   *Output
	idx int // 0: stdout, 1: stderr
}

var streamNames = [2]string{"stdout", "stderr"}

func (s stream) Write(p []byte) (int, error) {
	o := s.o
	if s.idx == 1 && len(o.stderr) < stderrKeep {
		o.stderr = append(o.stderr, p[:min(len(p), stderrKeep-len(o.stderr))]...)
	}
	if !o.log.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	buf := append(o.partial[s.idx], p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		o.line(s.idx, buf[:i])
		buf = buf[i+1:]
	}
	if len(buf) > maxLineSize {
		o.line(s.idx, buf)
		buf = buf[:0]
	}
	o.partial[s.idx] = append(o.partial[s.idx][:0], buf...)
	return len(p), nil
}

func (o *Output) line(idx int, line []byte) {
	if o.budget <= 0 {
		if !o.dropped {
			o.dropped = true
			o.log.Debug("mutator output truncated", "limit", o.limit)
		}
		return
	}
	o.budget -= len(line) + 1
	o.log.Debug("mutator output", "stream", streamNames[idx], "line", string(line))
}

// Summary returns the telling line of this call's stderr, as " (stderr:
// line)", or "" if there is none: a Go runtime's "fatal error:" or
// "panic:" line if present, else the first line.
func (o *Output) Summary() string {
	text := strings.ToValidUTF8(string(o.stderr), "\uFFFD")
	var first string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "fatal error:") || strings.HasPrefix(line, "panic:") {
			return " (stderr: " + line + ")"
		}
		if first == "" {
			first = line
		}
	}
	if first == "" {
		return ""
	}
	return " (stderr: " + first + ")"
}

// OutOfMemory reports whether this call's stderr says the guest ran out of
// memory (as a Go runtime does before it exits).
func (o *Output) OutOfMemory() bool {
	return bytes.Contains(o.stderr, []byte("out of memory"))
}
