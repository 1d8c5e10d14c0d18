package wasmhost_test

import (
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/hosttest"
	"github.com/sqlsync-go/sqlsync/shared/wasmhost"
)

// BenchmarkMutation measures the host's overhead per mutation (see
// hosttest.BenchmarkMutation), and the todo app's add on a module stopped
// by wazero's own checks instead of the interrupt flag
// (wasm-wazero-checks/insert).
//
//	go test ./shared/wasmhost -run '^$' -bench Mutation -benchtime 20000x -count 5
func BenchmarkMutation(b *testing.B) {
	hosttest.BenchmarkMutation(b, host(true))
	b.Run("wasm-wazero-checks/insert", func(b *testing.B) {
		defer wasmhost.UseInterruptFlag(false)()
		h := host(false)
		mod, err := h.Compile(b, h.Load(b, hosttest.Full), mutatorhost.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		hosttest.BenchmarkInsert(b, mod)
	})
}

// BenchmarkStart measures a document's first call: starting an instance
// and a no-op mutation.
func BenchmarkStart(b *testing.B) { hosttest.BenchmarkStart(b, host(true)) }
