package session

// answeredBy reports whether the invitee answering r is the session's
// creator. The creator's uuid decides when known (a main server told it, or
// the request named it). Without it (no main server: Redis only), the
// caller's database id does: OpenTera's main server puts the caller's own
// id in id_creator_<kind> of every session_manage it forwards, and the
// caller's own uuid in invite_reply's <kind>_uuid, so the same id as the
// creator's means the same person. Both modes then follow OpenTera's rule
// (a creator who refuses ends the session, opentera#260).
func (c Creator) answeredBy(r *InviteReply, caller Creator) bool {
	if c.UUID != "" {
		return c.UUID == r.UUID
	}
	switch r.Kind {
	case KindUser:
		return sameID(c.UserID, caller.UserID)
	case KindParticipant:
		return sameID(c.ParticipantID, caller.ParticipantID)
	case KindDevice:
		return sameID(c.DeviceID, caller.DeviceID)
	}
	return false
}

func sameID(a, b *int64) bool { return a != nil && b != nil && *a == *b }
