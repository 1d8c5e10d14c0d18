// Command badimport is a mutator that imports a host function sqlsync does
// not grant; the host must refuse to load it.
package main

import "github.com/sqlsync-go/sqlsync/shared/guest"

//go:wasmimport env open_socket
func openSocket() int32

func init() {
	guest.Handle("escape", func(*guest.Tx, []byte) error {
		openSocket()
		return nil
	})
}

func main() {}
