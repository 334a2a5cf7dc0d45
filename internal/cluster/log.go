package cluster

// Log attribute keys, one spelling so that log queries stay stable (the
// same as session's for the session, port and error).
const (
	logKeySession = "session"
	logKeyPort    = "port"
	logKeyErr     = "err"
	logKeyNode    = "node"    // an incarnation, "id#incarnation"
	logKeyNodeID  = "node_id" // the configured id
	logKeyToken   = "token"   // a lease's fencing token (not a secret)
	logKeyCount   = "count"
	logKeyPorts   = "ports" // the first few of a list
	logKeyTook    = "took"  // the port a start took after skipping some
	logKeyWait    = "wait"
	logKeyLease   = "lease_time"
)
