// Command sqlsync is the sqlsync coordinator and a command-line client.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sqlsync-go/sqlsync/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
