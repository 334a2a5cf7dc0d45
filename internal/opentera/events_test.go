package opentera_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// TestInvitationEventsFieldByField: one JoinSessionEvent per invitee on
// its own channel, with its own personal link, which already answers 200
// when the event arrives; then the UserManager copy.
func TestInvitationEventsFieldByField(t *testing.T) {
	e := newEnv(t, envOpts{backend: true})
	s := e.start([]string{userA}, []string{partP}, []string{devD})
	evs := take(t, e, 4)
	want := []string{ch(session.KindUser, userA), ch(session.KindParticipant, partP), ch(session.KindDevice, devD), opentera.UserManagerMessage}
	if got := channelsOf(evs); !slices.Equal(got, want) {
		t.Fatalf("channels %v, want %v", got, want)
	}
	keys := map[string]bool{}
	for i, uuid := range []string{userA, partP, devD, ""} {
		j, ok := evs[i].msg.(*pb.JoinSessionEvent)
		if !ok {
			t.Fatalf("%s: %T", evs[i].channel, evs[i].msg)
		}
		if uuid == "" { // the copy: members only, no link
			if j.GetSessionUrl() != "" {
				t.Errorf("UserManager copy carries a session_url: %q", j.GetSessionUrl())
			}
		} else {
			if j.GetSessionUrl() != s.link(t, uuid) {
				t.Errorf("%s: session_url %q, want the personal %q", uuid, j.GetSessionUrl(), s.link(t, uuid))
			}
			if code := get(t, j.GetSessionUrl()); code != 200 {
				t.Errorf("%s: the link answers %d when the invitation arrives", uuid, code)
			}
			keys[j.GetSessionUrl()[strings.Index(j.GetSessionUrl(), "key="):]] = true
		}
		if j.GetSessionUuid() != s.UUID || j.GetServiceUuid() != serviceUUID || j.GetJoinMsg() != "Join me!" ||
			j.GetSessionCreatorName() != "Dr Tremblay" || j.GetSessionParameters() != `{"recordable":true}` {
			t.Errorf("%s: %+v", evs[i].channel, j)
		}
		if !slices.Equal(j.GetSessionUsers(), []string{userA}) || !slices.Equal(j.GetSessionParticipants(), []string{partP}) ||
			!slices.Equal(j.GetSessionDevices(), []string{devD}) {
			t.Errorf("%s: members %v %v %v", evs[i].channel, j.GetSessionUsers(), j.GetSessionParticipants(), j.GetSessionDevices())
		}
	}
	if len(keys) != 3 {
		t.Errorf("personal keys are not distinct: %v", keys)
	}
	e.events.Quiet(t, 100*time.Millisecond)
}

func TestInviteRemoveReplyStopEvents(t *testing.T) {
	e := newEnv(t, envOpts{})
	s := e.start([]string{userA}, []string{partP}, nil)
	take(t, e, 3)

	e.manage(map[string]any{"action": "invite", "id_session": 1, "session_participants": []string{partQ}})
	evs := take(t, e, 4) // everyone again, so they update their lists
	want := []string{ch(session.KindUser, userA), ch(session.KindParticipant, partP), ch(session.KindParticipant, partQ), opentera.UserManagerMessage}
	if got := channelsOf(evs); !slices.Equal(got, want) {
		t.Fatalf("invite: %v", got)
	}
	if j := evs[2].msg.(*pb.JoinSessionEvent); !slices.Equal(j.GetSessionParticipants(), []string{partP, partQ}) {
		t.Fatalf("invite: participants %v", j.GetSessionParticipants())
	}

	e.manage(map[string]any{"action": "remove", "id_session": 1, "session_participants": []string{partP}})
	evs = take(t, e, 4) // everyone before the removal, the removed included
	want = []string{ch(session.KindUser, userA), ch(session.KindParticipant, partQ), ch(session.KindParticipant, partP), opentera.UserManagerMessage}
	if got := channelsOf(evs); !slices.Equal(got, want) {
		t.Fatalf("remove: %v", got)
	}
	for _, ev := range evs {
		l := ev.msg.(*pb.LeaveSessionEvent)
		if l.GetSessionUuid() != s.UUID || l.GetServiceUuid() != serviceUUID || !slices.Equal(l.GetLeavingParticipants(), []string{partP}) ||
			len(l.GetLeavingUsers())+len(l.GetLeavingDevices()) != 0 {
			t.Fatalf("remove: %+v", l)
		}
	}

	e.manage(map[string]any{"action": "invite_reply", "id_session": 1, "parameters": map[string]any{"reply_code": 2, "reply_msg": "non merci", "participant_uuid": partQ}})
	evs = take(t, e, 2) // the remaining members only
	if got := channelsOf(evs); !slices.Equal(got, []string{ch(session.KindUser, userA), opentera.UserManagerMessage}) {
		t.Fatalf("invite_reply: %v", got)
	}
	r := evs[0].msg.(*pb.JoinSessionReplyEvent)
	if r.GetSessionUuid() != s.UUID || r.GetJoinReply() != pb.JoinSessionReplyEvent_REPLY_DENIED || r.GetParticipantUuid() != partQ || r.GetReplyMsg() != "non merci" {
		t.Fatalf("invite_reply: %+v", r)
	}

	e.manage(map[string]any{"action": "stop", "id_session": 1})
	evs = take(t, e, 2)
	if got := channelsOf(evs); !slices.Equal(got, []string{ch(session.KindUser, userA), opentera.UserManagerMessage}) {
		t.Fatalf("stop: %v", got)
	}
	if st := evs[0].msg.(*pb.StopSessionEvent); st.GetSessionUuid() != s.UUID || st.GetServiceUuid() != serviceUUID {
		t.Fatalf("stop: %+v", st)
	}
	e.events.Quiet(t, 100*time.Millisecond)
}

// gate makes in-process endpoints ReadyEndpoints that answer only once
// ready is closed, as a child process that boots slowly would.
type gate struct {
	inner session.Runner
	ready chan struct{}
}

func (g gate) Start(ctx context.Context, spec session.RunSpec) (session.Endpoint, error) {
	ep, err := g.inner.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return gatedEndpoint{ep, g.ready}, nil
}

type gatedEndpoint struct {
	session.Endpoint
	ready chan struct{}
}

func (g gatedEndpoint) Ready() <-chan struct{} { return g.ready }

// TestInvitationsWaitForReadiness: no invitation before the endpoint
// answers, all of them (later invitees included) as soon as it does.
func TestInvitationsWaitForReadiness(t *testing.T) {
	ready := make(chan struct{})
	e := newEnv(t, envOpts{wrap: func(r session.Runner) session.Runner { return gate{r, ready} }})
	e.start([]string{userA}, []string{partP}, nil)
	e.manage(map[string]any{"action": "invite", "id_session": 1, "session_participants": []string{partQ}})
	e.events.Quiet(t, 300*time.Millisecond)
	close(ready)
	evs := take(t, e, 4)
	want := []string{ch(session.KindUser, userA), ch(session.KindParticipant, partP), ch(session.KindParticipant, partQ), opentera.UserManagerMessage}
	if got := channelsOf(evs); !slices.Equal(got, want) {
		t.Fatalf("after ready: %v", got)
	}
}
