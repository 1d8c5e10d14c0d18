// Command sqlsync-fill writes a large document into a coordinator's data
// directory before `sqlsync serve` starts on it, for the tests and
// benchmarks of large documents (internal/bigdoc: a table big of 1000-byte
// rows, k indexed):
//
//	sqlsync-fill -data DIR -doc ID -mib 64
//
// It adds to a document already there, and prints the rows of big.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sqlsync-go/sqlsync/internal/bigdoc"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sqlsync-fill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "the coordinator's data `directory` (serve --data)")
	doc := fs.String("doc", "", "the document `ID`")
	mib := fs.Int64("mib", 64, "fill the document to about this many MiB")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *data == "" || *doc == "" || *mib <= 0 {
		fmt.Fprintln(stderr, "sqlsync-fill: needs -data, -doc and a positive -mib")
		return 2
	}
	rows, _, err := bigdoc.FillDocument(*data, *doc, *mib<<20)
	if err != nil {
		fmt.Fprintln(stderr, "sqlsync-fill:", err)
		return 1
	}
	fmt.Fprintln(stdout, rows)
	return 0
}
