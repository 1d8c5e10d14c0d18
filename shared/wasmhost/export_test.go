package wasmhost

// UseInterruptFlag chooses how calls are stopped for modules compiled
// afterwards: the interrupt flag (the default) or wazero's termination
// checks. It returns a function that restores the default.
func UseInterruptFlag(on bool) (restore func()) {
	useInterruptFlag = on
	return func() { useInterruptFlag = true }
}

// Interruptible reports whether m carries the interrupt flag.
func (m *Module) Interruptible() bool { return m.interruptible }
