// Package engine is the document engine both sides of sqlsync run, free of
// network I/O: [Coordinator] orders and applies mutations and produces
// fast-forward diffs; [Client] mutates locally, keeps the pending log and
// rebases on diffs. Transports feed them messages and send what they return.
package engine
