package opentera

import (
	"context"
	"errors"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// busyMsg is the reply_msg of an automatic REPLY_BUSY.
const busyMsg = "Busy in another session"

// replyBusy answers REPLY_BUSY on behalf of the newly invited people who
// are busy (OpenTera issue #267) and returns the session as it is then, or
// nil if it ended. Busy means: connected right now to another running
// session of this service, and not to this one. The session's creator is
// never answered for.
func (s *Service) replyBusy(ctx context.Context, v *session.View, added []session.Identity) *session.View {
	busy := s.busyAmong(ctx, v, added)
	for _, id := range busy {
		req := &session.Request{
			Action: session.ActionInviteReply, SessionID: v.ID,
			Reply: &session.InviteReply{Code: session.ReplyBusy, Msg: busyMsg, Kind: id.Kind, UUID: id.UUID},
		}
		r, err := s.sessions.Manage(ctx, req)
		var se *session.Error
		switch {
		case errors.As(err, &se) && se.Code == session.CodeNotFound:
			return nil
		case err != nil:
			s.log.Warn("busy reply failed", "session", v.ID, "uuid", id.UUID, "err", err)
			continue
		case r.Session != nil:
			v = r.Session
		}
		s.log.Info("invitee busy in another session: answered REPLY_BUSY", "session", v.ID, "kind", id.Kind, "uuid", id.UUID)
	}
	return v
}

// busyAmong returns the identities of ids (creator excepted) connected to
// another running session and not to v.
func (s *Service) busyAmong(ctx context.Context, v *session.View, ids []session.Identity) []session.Identity {
	if len(ids) == 0 {
		return nil
	}
	views, err := s.sessions.List(ctx, true)
	if err != nil {
		s.log.Warn("busy check: cannot list sessions", "err", err)
		return nil
	}
	elsewhere, here := map[string]bool{}, map[string]bool{}
	for _, o := range views {
		for _, p := range o.Peers {
			if o.ID == v.ID {
				here[p.UUID] = true
			} else {
				elsewhere[p.UUID] = true
			}
		}
	}
	var busy []session.Identity
	for _, id := range ids {
		if id.UUID != v.CreatorUUID && elsewhere[id.UUID] && !here[id.UUID] {
			busy = append(busy, id)
		}
	}
	return busy
}
