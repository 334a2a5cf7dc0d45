package opentera

import (
	"context"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// presenceChange is what a UserManager event means for us.
type presenceChange int

const (
	presenceOther presenceChange = iota
	presenceConnected
	presenceDisconnected
)

// presence handles one TeraEvent of module.TeraServer.UserManagerModule.events
// (spec §3.11): a member that connects gets its invitations again (through
// the publisher's queue, so they follow any event already queued); a
// session whose creator disconnects is stopped (on the worker pool).
func (s *Service) presence(payload []byte) {
	var te pb.TeraEvent
	if err := proto.Unmarshal(payload, &te); err != nil {
		s.log.Warn("presence: malformed TeraEvent", "bytes", len(payload), "err", err)
		return
	}
	for _, a := range te.GetEvents() {
		id, what := presenceOf(a)
		switch what {
		case presenceConnected:
			s.enqueue(item{who: &id})
		case presenceDisconnected:
			if !s.pool.submit(func() { s.creatorGone(id) }) {
				s.log.Warn("presence: too busy to handle a disconnection", "kind", id.Kind, "uuid", id.UUID)
			}
		}
	}
}

// presenceOf decodes a UserEvent, ParticipantEvent or DeviceEvent.
func presenceOf(a *anypb.Any) (session.Identity, presenceChange) {
	var (
		kind       session.Kind
		uuid       string
		conn, disc bool
	)
	switch {
	case a.MessageIs(&pb.UserEvent{}):
		var ev pb.UserEvent
		if a.UnmarshalTo(&ev) != nil {
			return session.Identity{}, presenceOther
		}
		kind, uuid = session.KindUser, ev.GetUserUuid()
		conn, disc = ev.GetType() == pb.UserEvent_USER_CONNECTED, ev.GetType() == pb.UserEvent_USER_DISCONNECTED
	case a.MessageIs(&pb.ParticipantEvent{}):
		var ev pb.ParticipantEvent
		if a.UnmarshalTo(&ev) != nil {
			return session.Identity{}, presenceOther
		}
		kind, uuid = session.KindParticipant, ev.GetParticipantUuid()
		conn, disc = ev.GetType() == pb.ParticipantEvent_PARTICIPANT_CONNECTED, ev.GetType() == pb.ParticipantEvent_PARTICIPANT_DISCONNECTED
	case a.MessageIs(&pb.DeviceEvent{}):
		var ev pb.DeviceEvent
		if a.UnmarshalTo(&ev) != nil {
			return session.Identity{}, presenceOther
		}
		kind, uuid = session.KindDevice, ev.GetDeviceUuid()
		conn, disc = ev.GetType() == pb.DeviceEvent_DEVICE_CONNECTED, ev.GetType() == pb.DeviceEvent_DEVICE_DISCONNECTED
	}
	u, ok := session.NormalizeUUID(uuid)
	id := session.Identity{Kind: kind, UUID: u}
	switch {
	case !ok:
		return id, presenceOther
	case conn:
		return id, presenceConnected
	case disc:
		return id, presenceDisconnected
	}
	return id, presenceOther
}

// creatorGone stops every running session id created. The sessions are
// collected first, then stopped one by one (OpenTera stopped them while
// iterating its dict, and failed after the first).
func (s *Service) creatorGone(id session.Identity) {
	ctx, cancel := context.WithTimeout(context.Background(), rpcBudget)
	defer cancel()
	views, err := s.sessions.List(ctx, true)
	if err != nil {
		s.log.Warn("presence: cannot list sessions", "err", err)
		return
	}
	var created []int64
	for _, v := range views {
		if v.CreatorUUID == id.UUID {
			created = append(created, v.ID)
		}
	}
	for _, sid := range created {
		_, err := s.sessions.Manage(ctx, &session.Request{Action: session.ActionStop, SessionID: sid})
		if err != nil {
			s.log.Warn("presence: cannot stop the session of a disconnected creator", "session", sid, "err", err)
			continue
		}
		s.log.Info("presence: creator disconnected; session stopped", "session", sid, "kind", id.Kind, "uuid", id.UUID)
	}
}
