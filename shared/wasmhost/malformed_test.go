package wasmhost_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
)

// A module whose code section claims four billion functions in nine bytes
// is refused as a bad module, before wazero would allocate for them all.
func TestCompileRefusesMalformedVector(t *testing.T) {
	wasm := []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x000\n\t\xff\xff\xff\xff\v0000")
	_, err := wasmhost.Compile(context.Background(), wasm, wasmhost.Limits{})
	if !errors.Is(err, wasmhost.ErrBadModule) {
		t.Fatalf("got %v, want ErrBadModule", err)
	}
	t.Log(err)
}
