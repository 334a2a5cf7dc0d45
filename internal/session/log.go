package session

// Log attribute keys, one spelling per package so that log queries stay
// stable. Keys (tokens) are never logged under any name.
const (
	logKeySession = "session"
	logKeyPort    = "port"
	logKeyErr     = "err"
	logKeyTimeout = "timeout"
	logKeyOnSFU   = "media_on_sfu"
)
