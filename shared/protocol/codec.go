package protocol

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// ErrBadFrame is wrapped by every error for a frame that is malformed or
// breaks a field rule; a server answers it with Close{Code: CodeBadFrame}.
var ErrBadFrame = errors.New("protocol: bad frame")

// ErrTooLarge is wrapped by every error for a frame that exceeds a Limits
// bound; a server answers it with Close{Code: CodeLimit}. It is distinct
// from ErrBadFrame.
var ErrTooLarge = errors.New("protocol: too large")

// frameError is a validation or decoding failure: its message is err's, and
// it matches both kind (ErrBadFrame or ErrTooLarge) and err with errors.Is.
type frameError struct {
	kind error
	err  error
}

func (e *frameError) Error() string   { return e.err.Error() }
func (e *frameError) Unwrap() []error { return []error{e.kind, e.err} }

func badf(format string, args ...any) error {
	return &frameError{kind: ErrBadFrame, err: fmt.Errorf(format, args...)}
}

func largef(format string, args ...any) error {
	return &frameError{kind: ErrTooLarge, err: fmt.Errorf(format, args...)}
}

const (
	// maxNestedLevels allows the deepest message (frame, push, mutation
	// array, mutation) plus some room for unknown fields.
	maxNestedLevels = 8
	// maxMapPairs bounds every map, including unknown keys; no message has
	// more than a handful of fields.
	maxMapPairs = 32
	// minArrayElements is the smallest MaxArrayElements cbor accepts.
	minArrayElements = 16
)

var encMode = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// decModes caches one cbor.DecMode per array-element bound.
var decModes sync.Map // int -> cbor.DecMode

func decMode(maxArray int) (cbor.DecMode, error) {
	if dm, ok := decModes.Load(maxArray); ok {
		return dm.(cbor.DecMode), nil
	}
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  maxNestedLevels,
		MaxArrayElements: maxArray,
		MaxMapPairs:      maxMapPairs,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		return nil, err
	}
	decModes.Store(maxArray, dm)
	return dm, nil
}

// Encode validates f and encodes it as Core Deterministic CBOR. It checks
// that exactly one message is set and that the message follows the field
// rules Decode enforces, but not Limits, which are the receiver's to set.
func Encode(f Frame) ([]byte, error) {
	if err := validate(f, nil); err != nil {
		return nil, fmt.Errorf("encode frame: %w", err)
	}
	b, err := encMode.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode frame: %w", err)
	}
	return b, nil
}

// Decode decodes and validates one frame. It refuses b with ErrTooLarge if
// it is longer than lim.MaxFrameBytes, before decoding anything, and
// whenever another limit is exceeded; any other failure wraps ErrBadFrame.
// Zero fields in lim take their DefaultLimits values. Unknown map keys are
// ignored. Empty byte strings and arrays decode as nil slices.
func Decode(b []byte, lim Limits) (Frame, error) {
	lim = lim.WithDefaults()
	if len(b) > lim.MaxFrameBytes {
		return Frame{}, fmt.Errorf("decode frame: %w",
			largef("%d bytes, limit %d", len(b), lim.MaxFrameBytes))
	}
	if len(b) == 0 {
		return Frame{}, fmt.Errorf("decode frame: %w", badf("empty frame"))
	}
	dm, err := decMode(max(minArrayElements, lim.MaxMutationsPerPush, lim.MaxPagesPerDiff, lim.MaxPresencePeers))
	if err != nil {
		return Frame{}, fmt.Errorf("decode frame: %w", err)
	}
	var f Frame
	if err := dm.Unmarshal(b, &f); err != nil {
		return Frame{}, fmt.Errorf("decode frame: %w", cborError(err))
	}
	normalize(&f)
	if err := validate(f, &lim); err != nil {
		return Frame{}, fmt.Errorf("decode frame: %w", err)
	}
	return f, nil
}

// cborError classifies an error from the cbor decoder.
func cborError(err error) error {
	var arr *cbor.MaxArrayElementsError
	var pairs *cbor.MaxMapPairsError
	if errors.As(err, &arr) || errors.As(err, &pairs) {
		return &frameError{kind: ErrTooLarge, err: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return badf("truncated: %w", err)
	}
	return &frameError{kind: ErrBadFrame, err: err}
}

// normalize turns empty slices into nil, so that a decoded frame equals the
// decoding of its re-encoding (Encode omits empty fields).
func normalize(f *Frame) {
	normalizePresence(f)
	if p := f.Push; p != nil {
		if len(p.Mutations) == 0 {
			p.Mutations = nil
		}
		for i := range p.Mutations {
			if len(p.Mutations[i].Args) == 0 {
				p.Mutations[i].Args = nil
			}
		}
	}
	if d := f.Diff; d != nil {
		if len(d.Pages) == 0 {
			d.Pages = nil
		}
		for i := range d.Pages {
			if len(d.Pages[i].Data) == 0 {
				d.Pages[i].Data = nil
			}
		}
	}
	if h := f.Hello; h != nil && len(h.Held) == 0 {
		h.Held = nil
	}
	if r := f.PageRequest; r != nil && len(r.Pages) == 0 {
		r.Pages = nil
	}
	if r := f.PageReply; r != nil {
		if len(r.Pages) == 0 {
			r.Pages = nil
		}
		if len(r.Stale) == 0 {
			r.Stale = nil
		}
		for i := range r.Pages {
			if len(r.Pages[i].Data) == 0 {
				r.Pages[i].Data = nil
			}
		}
	}
}
