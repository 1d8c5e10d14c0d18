package wasmhost

// ForgetDiskCaches drops the on-disk caches this process has opened, so
// that the next Compile reads their files as a new process would.
func ForgetDiskCaches() {
	diskMu.Lock()
	clear(diskCaches)
	diskMu.Unlock()
}
