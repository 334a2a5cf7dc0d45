package endpoint

// Log attribute keys, one spelling per package so that log queries stay
// stable. Keys (tokens) are never logged under any name.
const (
	logKeyErr         = "err"
	logKeyKind        = "kind"
	logKeyUUID        = "uuid"
	logKeyConnections = "connections"
	logKeyComponent   = "component"
	logKeyPeer        = "peer"
	logKeyPeers       = "peers"
	logKeyType        = "type"
	logKeyMode        = "media_mode"
	logKeyDefault     = "default"
)
