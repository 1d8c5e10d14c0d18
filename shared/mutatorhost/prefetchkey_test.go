package mutatorhost_test

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost/interrupt"
)

// The browser worker prefetches a module's browser build under the key
// the Go half will ask for (jsmutator with default limits): its constants
// must be the Go ones, or every prefetch is wasted.
func TestBrowserPrefetchKey(t *testing.T) {
	src, err := os.ReadFile("../../js/src/worker/mutator-host.ts")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{
		"DEFAULT_MEMORY_PAGES": int(mutatorhost.Limits{}.WithDefaults().MemoryPages),
		"REWRITER_VERSION":     interrupt.Version,
	} {
		m := regexp.MustCompile(`export const ` + name + ` = (\d+);`).FindSubmatch(src)
		if m == nil {
			t.Errorf("js/src/worker/mutator-host.ts does not declare %s", name)
			continue
		}
		if got, _ := strconv.Atoi(string(m[1])); got != want {
			t.Errorf("js/src/worker/mutator-host.ts: %s = %d, Go's is %d", name, got, want)
		}
	}
}
