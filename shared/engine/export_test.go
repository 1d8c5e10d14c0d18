package engine

// DiffsComputed returns how many diffs c has read from its store: Diff
// calls beyond it took a diff another call had read.
func DiffsComputed(c *Coordinator) int {
	c.diffs.mu.Lock()
	defer c.diffs.mu.Unlock()
	return c.diffs.computed
}
