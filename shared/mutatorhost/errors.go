package mutatorhost

import (
	"errors"

	"github.com/sqlsync-go/sqlsync/shared/abi"
)

// Errors of a mutator call, matched with errors.Is. Each fails that call
// only: the document's transaction goes on, and an instance that may be
// damaged is discarded and started afresh for the next call.
var (
	ErrUnknownMutation = errors.New("unknown mutation")  // the guest has no handler of that name
	ErrBadArgs         = errors.New("bad mutation args") // the guest could not decode the args
	ErrPanic           = errors.New("mutator panicked")  // the guest recovered from a panic
	ErrTrap            = errors.New("mutator trapped")   // the guest trapped, exited or broke the ABI
	ErrTimeLimit       = errors.New("mutator exceeded its time limit")
	ErrMemoryLimit     = errors.New("mutator exceeded its memory limit")
	ErrArgsTooLarge    = errors.New("mutation args exceed the size limit")
	ErrNoTransaction   = errors.New("mutator called outside a transaction")
	ErrClosed          = errors.New("mutator closed")
)

// ErrBadModule reports a module that is not a sqlsync mutator: not
// WebAssembly, lacking the ABI's exports, importing what the host does not
// grant, or of another ABI version.
var ErrBadModule = errors.New("not a sqlsync mutator")

// GuestError is an error the mutator itself reported: its handler's error,
// an unknown mutation name, bad args or a recovered panic. Its message is
// the guest's, unchanged, so it reaches the client as the mutator wrote it.
type GuestError struct {
	Status  abi.Status
	Message string
}

func (e *GuestError) Error() string { return e.Message }

// Is matches ErrUnknownMutation, ErrBadArgs and ErrPanic by status.
func (e *GuestError) Is(target error) bool {
	switch target {
	case ErrUnknownMutation:
		return e.Status == abi.StatusUnknown
	case ErrBadArgs:
		return e.Status == abi.StatusBadArgs
	case ErrPanic:
		return e.Status == abi.StatusPanic
	}
	return false
}

// MaxMessage caps the part of an error record a host reads: its status
// byte and message.
const MaxMessage = 64 << 10

// DecodeRecord decodes an error record: a status byte and a UTF-8 message
// (the first MaxMessage bytes of the record a guest returned). Unknown
// statuses read as abi.StatusError; an empty message is the status's name.
// The host discards the instance after a record of status abi.StatusPanic.
func DecodeRecord(b []byte) *GuestError {
	if len(b) == 0 {
		return &GuestError{Status: abi.StatusError, Message: abi.StatusError.String()}
	}
	status := abi.Status(b[0])
	switch status {
	case abi.StatusUnknown, abi.StatusBadArgs, abi.StatusPanic:
	default:
		status = abi.StatusError
	}
	msg := string(b[1:])
	if msg == "" {
		msg = status.String()
	}
	return &GuestError{Status: status, Message: msg}
}
