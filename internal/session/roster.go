package session

// Admitted reports whether id is invited to the running session sessionID
// right now. The TURN server asks it for every authenticated request and
// for every live allocation a few times a second, so it reads the
// session's token table without taking the Manager's lock for long: after
// remove, stop or a failed start it answers false.
func (m *Manager) Admitted(sessionID int64, id Identity) bool {
	m.mu.RLock()
	l := m.live[sessionID]
	m.mu.RUnlock()
	if l == nil {
		return false
	}
	t := l.tokens.Load()
	return t != nil && id.UUID != "" && t.members.Has(id.Kind, id.UUID)
}
