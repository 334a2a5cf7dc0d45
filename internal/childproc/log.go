package childproc

// Log attribute keys, one spelling per package so that log queries stay
// stable. Keys (tokens) are never logged under any name.
const (
	logKeyErr    = "err"
	logKeyPID    = "pid"
	logKeyAddr   = "addr"
	logKeyOp     = "op"
	logKeyKind   = "kind"
	logKeyUUID   = "uuid"
	logKeyStream = "stream"
)
