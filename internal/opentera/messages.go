package opentera

import (
	"context"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// publishTimeout bounds one PUBLISH.
const publishTimeout = 3 * time.Second

// joinMsg is OpenTera's default invitation text (gettext('Join me!')).
const joinMsg = "Join me!"

// EventChannel is the main server's per-client channel of one invitee:
// websocket.{user|participant|device}.<uuid>.events.
func EventChannel(id session.Identity) string {
	return "websocket." + string(id.Kind) + "." + id.UUID + ".events"
}

// joinEvent is send_join_message's JoinSessionEvent, without session_url
// (each invitee gets their own).
func (s *Service) joinEvent(v *session.View) *pb.JoinSessionEvent {
	return &pb.JoinSessionEvent{
		SessionCreatorName:  v.CreatorName,
		SessionUuid:         v.UUID,
		SessionUsers:        nonNil(v.Users),
		SessionParticipants: nonNil(v.Participants),
		SessionDevices:      nonNil(v.Devices),
		JoinMsg:             joinMsg,
		SessionParameters:   parametersText(v.Parameters),
		ServiceUuid:         s.cfg.ServiceUUID,
	}
}

// parametersText is session_parameters as the JoinSessionEvent carries it:
// a JSON object as compact text, a JSON string as its text, none as "{}".
func parametersText(raw json.RawMessage) string {
	if p := writeParameters(raw); p != nil {
		return *p
	}
	return "{}"
}

// urlFor is the personal link of id in v; the kind-level link (which
// OpenTera's clients complete with &uuid=) if the view has none.
func urlFor(v *session.View, id session.Identity) string {
	for _, inv := range v.Invitations {
		if inv.Kind == id.Kind && inv.UUID == id.UUID {
			return inv.URL
		}
	}
	switch id.Kind {
	case session.KindUser:
		return v.URLUsers
	case session.KindParticipant:
		return v.URLParticipants
	}
	return v.URLDevices
}

// sendJoin sends the invitation of v to each target, each with their own
// session_url, then the UserManager copy (which marks every listed member
// busy). The copy carries no session_url: the UserManager never reads it,
// and it must not spread anyone's key.
func (s *Service) sendJoin(v *session.View, targets []session.Identity) {
	ev := s.joinEvent(v)
	for _, id := range targets {
		one := proto.CloneOf(ev)
		one.SessionUrl = urlFor(v, id)
		s.publishEvent(EventChannel(id), one)
	}
	s.publishCopy(ev)
}

// broadcast sends ev to every target, then the UserManager copy.
func (s *Service) broadcast(ev proto.Message, targets []session.Identity) {
	for _, id := range targets {
		s.publishEvent(EventChannel(id), ev)
	}
	s.publishCopy(ev)
}

// publishEvent publishes TeraEvent{header{1, now, channel}, [Any(ev)]}.
func (s *Service) publishEvent(channel string, ev proto.Message) {
	b, err := pb.WrapTeraEvent(channel, ev, s.now())
	if err != nil {
		s.log.Error("cannot encode event", "channel", channel, "err", err)
		return
	}
	s.publish(channel, b)
}

// publishCopy publishes the TeraModuleMessage copy for the UserManager,
// with source "service" + service key.
func (s *Service) publishCopy(ev proto.Message) {
	b, err := pb.WrapModuleMessage("service"+s.cfg.ServiceKey, UserManagerMessage, ev, s.now())
	if err != nil {
		s.log.Error("cannot encode module message", "err", err)
		return
	}
	s.publish(UserManagerMessage, b)
}

func (s *Service) publish(channel string, payload []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := s.cfg.Redis.Publish(ctx, channel, payload).Err(); err != nil {
		s.log.Warn("cannot publish to Redis", "channel", channel, "err", err)
	}
}

func stopEvent(v *session.View, serviceUUID string) *pb.StopSessionEvent {
	return &pb.StopSessionEvent{SessionUuid: v.UUID, ServiceUuid: serviceUUID}
}

func leaveEvent(v *session.View, serviceUUID string, gone []session.Identity) *pb.LeaveSessionEvent {
	ev := &pb.LeaveSessionEvent{SessionUuid: v.UUID, ServiceUuid: serviceUUID}
	for _, id := range gone {
		switch id.Kind {
		case session.KindUser:
			ev.LeavingUsers = append(ev.LeavingUsers, id.UUID)
		case session.KindParticipant:
			ev.LeavingParticipants = append(ev.LeavingParticipants, id.UUID)
		default:
			ev.LeavingDevices = append(ev.LeavingDevices, id.UUID)
		}
	}
	return ev
}

func replyEvent(v *session.View, r *session.InviteReply) *pb.JoinSessionReplyEvent {
	ev := &pb.JoinSessionReplyEvent{SessionUuid: v.UUID, JoinReply: pb.JoinSessionReplyEvent_ReplyType(r.Code), ReplyMsg: r.Msg}
	switch r.Kind {
	case session.KindUser:
		ev.UserUuid = r.UUID
	case session.KindParticipant:
		ev.ParticipantUuid = r.UUID
	default:
		ev.DeviceUuid = r.UUID
	}
	return ev
}

// members lists the members of v, in OpenTera's order.
func members(v *session.View) []session.Identity {
	var out []session.Identity
	for _, g := range []struct {
		kind session.Kind
		list []string
	}{{session.KindUser, v.Users}, {session.KindParticipant, v.Participants}, {session.KindDevice, v.Devices}} {
		for _, u := range g.list {
			out = append(out, session.Identity{Kind: g.kind, UUID: u})
		}
	}
	return out
}

// beforeRemoval lists the members of v plus the removed ones, kind by
// kind in OpenTera's order: everyone who was in the session before.
func beforeRemoval(v *session.View, gone []session.Identity) []session.Identity {
	now := members(v)
	var out []session.Identity
	for _, k := range session.Kinds {
		for _, group := range [][]session.Identity{now, gone} {
			for _, id := range group {
				if id.Kind == k && !contains(out, id) {
					out = append(out, id)
				}
			}
		}
	}
	return out
}

func contains(list []session.Identity, id session.Identity) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}
