package hub

// Log attribute keys, shared so that log queries stay stable. Keys (join
// tokens) are never logged under any name.
const (
	logKeyPeer   = "peer"
	logKeyRole   = "role"
	logKeyUUID   = "uuid"
	logKeyName   = "name"
	logKeyErr    = "err"
	logKeyCode   = "code"
	logKeyClose  = "close"
	logKeyReason = "reason"
	logKeyPeers  = "peers"
	logKeyBy     = "by"
	logKeyLimit  = "limit"
	logKeyAddr   = "addr"
)
