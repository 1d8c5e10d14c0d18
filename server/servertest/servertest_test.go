package servertest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNotInProduction: neither the sqlsync command nor the browser worker
// imports this package, directly or not.
func TestNotInProduction(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	const self = "github.com/sqlsync-go/sqlsync/server/servertest"
	for _, tt := range []struct{ pkg, goos, goarch string }{
		{"github.com/sqlsync-go/sqlsync/cmd/sqlsync", runtime.GOOS, runtime.GOARCH},
		{"github.com/sqlsync-go/sqlsync/wasm", "js", "wasm"},
	} {
		cmd := exec.Command(goBin, "list", "-deps", tt.pkg)
		cmd.Env = append(os.Environ(), "GOOS="+tt.goos, "GOARCH="+tt.goarch)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tt.pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == self {
				t.Errorf("%s (%s/%s) imports %s", tt.pkg, tt.goos, tt.goarch, self)
			}
		}
	}
}
