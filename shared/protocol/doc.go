// Package protocol defines sqlsync's versioned binary wire protocol: the
// frames exchanged between clients and the coordinator, encoded as
// deterministic CBOR with integer map keys.
// It is sans-I/O: Encode and Decode turn frames into bytes and back,
// validating every field, and never touch a connection.
package protocol
