package protocol

// CapStream is the capability a client names in Hello.Capabilities when it
// can take a streamed diff: one it stages durably frame by frame and makes
// visible only with the last (see Stream). The coordinator streams a large
// diff to such a client, and resumes a broken stream that the client's
// Hello.Resume names; to other clients it sends every diff whole.
const CapStream = "stream"

// Stream marks a Diff frame as a piece of a streamed diff, which the
// coordinator reads out of its store as it sends, so neither end ever holds
// the diff whole.
//
// A streamed diff is sent in passes: the first sends, in ascending order,
// the pages changed after the diff's From (Since = From), each read at the
// moment it goes out, while commits go on. Each later pass sends again the
// pages changed after the LSN the pass before began at (its Since is that
// pass's Begin), until a pass finds the document still at its Begin. The
// last frame (More unset) names that LSN as To and the page count at it.
// So a page's last copy in the stream is its copy at To; pages above
// PageCount are dropped. Every page is whole (no Delta).
//
// Until the last frame, To and PageCount are 0. The receiver stages each
// frame and applies the stream, all of it, only at the last. A client whose
// stream broke names in Hello.Resume the Stream of the last frame it staged,
// with After set to that frame's last page: the coordinator then goes on
// with that pass from the next page (its later passes catch every page
// changed since the pass began), or starts a new stream, whose first frame
// has Since = From and After = 0, if it cannot.
type Stream struct {
	// Since is the LSN after which this pass's pages changed.
	Since uint64 `cbor:"1,keyasint,omitempty"`
	// Begin is the document's LSN when this pass began to read.
	Begin uint64 `cbor:"2,keyasint,omitempty"`
	// After is the pass's last page sent before this frame (0: the pass
	// begins with this frame); every page of the frame comes after it.
	After uint32 `cbor:"3,keyasint,omitempty"`
	// Pages is the number of pages the whole pass sends, for progress.
	Pages uint32 `cbor:"4,keyasint,omitempty"`
}

func validateStream(d *Diff, s *Stream, lim *Limits) error {
	if s.Begin < s.Since || s.Since < d.From {
		return badf("stream pass from %d to %d, diff from %d", s.Since, s.Begin, d.From)
	}
	if lim != nil && len(d.Pages) > lim.MaxPagesPerDiff {
		return largef("%d pages, limit %d", len(d.Pages), lim.MaxPagesPerDiff)
	}
	if d.More && (d.To != 0 || d.PageCount != 0) {
		return badf("stream frame before the last names to %d and %d pages", d.To, d.PageCount)
	}
	if !d.More && (d.To < s.Begin || d.To <= d.From) {
		return badf("stream ends at %d, pass began at %d, diff from %d", d.To, s.Begin, d.From)
	}
	prev := s.After
	for i, p := range d.Pages {
		switch {
		case p.No == 0 || (!d.More && p.No > d.PageCount):
			return badf("page index %d: number %d not in 1..%d", i, p.No, d.PageCount)
		case p.No <= prev:
			return badf("page index %d: number %d not after %d", i, p.No, prev)
		case len(p.Data) != PageSize:
			return badf("page index %d: data is %d bytes, want %d", i, len(p.Data), PageSize)
		case p.Delta:
			return badf("page index %d: a delta in a stream", i)
		}
		prev = p.No
	}
	return nil
}

func validateResume(h *Hello) error {
	if r := h.Resume; r != nil && (r.Since < h.LSN || r.Begin < r.Since) {
		return badf("resume of a pass from %d to %d, replica at %d", r.Since, r.Begin, h.LSN)
	}
	return nil
}
