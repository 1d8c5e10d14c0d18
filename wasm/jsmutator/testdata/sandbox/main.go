// Command sandbox is a test mutator that records what the WASI sandbox
// gives a guest: the wall clock, the monotonic clock, and math/rand/v2's
// generator, which the Go runtime seeds from WASI's random_get. Every host must give every instance the same,
// so the browser's host is checked against the same constants as wazero.
package main

import (
	mrand "math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/sqlsync-go/sqlsync/shared/guest"
)

var started = time.Now()

func init() {
	guest.Migrate(`CREATE TABLE facts(k TEXT PRIMARY KEY, v TEXT NOT NULL)`)
	guest.Handle("record", func(tx *guest.Tx, _ []byte) error {
		now := time.Now()
		b2 := tx.Batch()
		for k, v := range map[string]any{
			"wall":     now.UTC().Format(time.RFC3339Nano),
			"elapsed":  now.Sub(started).String(),
			"mathrand": strconv.FormatUint(mrand.Uint64(), 16),
			"args":     len(os.Args),
			"env":      len(os.Environ()),
		} {
			b2.Exec(`INSERT INTO facts(k, v) VALUES (?, ?)`, k, v)
		}
		_, err := b2.Run()
		return err
	})
}

func main() {}
