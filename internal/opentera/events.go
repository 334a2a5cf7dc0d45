package opentera

import (
	"context"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// processTimeout bounds the Manager calls the publisher makes (busy
// replies, listing sessions for a re-invitation).
const processTimeout = 10 * time.Second

// process publishes what one item means on OpenTera's channels (spec
// §3.10): invitations, leave, reply and stop events to the members
// concerned, each followed by its UserManager copy.
func (s *Service) process(it item) {
	if it.who != nil {
		s.reinvite(*it.who)
		return
	}
	c := it.change
	v := c.Session
	switch c.Type {
	case session.ChangeStarted, session.ChangeInvited:
		s.invite(c)
	case session.ChangeRemoved:
		// Everyone who was in the session before the removal hears of it.
		s.broadcast(leaveEvent(v, s.cfg.ServiceUUID, c.Removed), beforeRemoval(v, c.Removed))
	case session.ChangeReplied:
		s.broadcast(replyEvent(v, c.Reply), members(v)) // the remaining members
	case session.ChangeStopped:
		s.broadcast(stopEvent(v, s.cfg.ServiceUUID), members(v))
	}
	s.log.Debug("OpenTera events sent", "change", c.Type, "session", v.ID)
}

// invite sends every member the invitation of a started session, or of a
// session someone was invited to (OpenTera re-sends it to all, so they
// update their lists). With busy_reply, invitees connected to another
// session are answered REPLY_BUSY first, and not invited.
func (s *Service) invite(c *session.Change) {
	v := c.Session
	if s.cfg.BusyReply {
		ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
		v = s.replyBusy(ctx, v, c.Added)
		cancel()
		if v == nil {
			return // the session ended meanwhile
		}
	}
	s.sendJoin(v, members(v))
}

// reinvite re-sends the invitation of every ready session id is invited
// to, to id alone (issue #37: an invitee that reconnects gets it again).
func (s *Service) reinvite(id session.Identity) {
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	views, err := s.sessions.List(ctx, true)
	if err != nil {
		s.log.Warn("presence: cannot list sessions", "err", err)
		return
	}
	for _, v := range views {
		if v.Ready && contains(members(v), id) {
			s.log.Info("presence: re-sending invitation", "session", v.ID, "kind", id.Kind, "uuid", id.UUID)
			s.sendJoin(v, []session.Identity{id})
		}
	}
}
