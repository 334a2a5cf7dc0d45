package ehrc

// Log attribute keys. Doctor tokens are never logged under any name.
const (
	logKeyComponent = "component"
	logKeyNamespace = "namespace"
	logKeyRoom      = "room"
	logKeySession   = "session"
	logKeyErr       = "err"
	logKeyPath      = "path"
	logKeyStatus    = "status"
)
