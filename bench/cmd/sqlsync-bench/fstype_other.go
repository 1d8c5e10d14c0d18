//go:build !linux

package main

// fsType is unknown outside Linux.
func fsType(dir string) string { return "" }
