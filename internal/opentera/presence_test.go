package opentera_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// announce publishes a presence event as the UserManager module does.
func (e *env) announce(ev proto.Message) {
	e.t.Helper()
	b, err := pb.WrapTeraEvent(opentera.UserManagerEvents, ev, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.redis.Client.Publish(context.Background(), opentera.UserManagerEvents, b).Err(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) running() []*session.View {
	e.t.Helper()
	vs, err := e.mgr.List(context.Background(), true)
	if err != nil {
		e.t.Fatal(err)
	}
	return vs
}

func TestPresence(t *testing.T) {
	e := newEnv(t, envOpts{})
	s := e.start([]string{userA}, []string{partP}, nil)
	take(t, e, 3)

	// A member reconnects: its invitation, to it alone, then the copy.
	e.announce(&pb.ParticipantEvent{ParticipantUuid: partP, Type: pb.ParticipantEvent_PARTICIPANT_CONNECTED})
	evs := take(t, e, 2)
	if got := channelsOf(evs); !slices.Equal(got, []string{ch(session.KindParticipant, partP), opentera.UserManagerMessage}) {
		t.Fatalf("reconnect: %v", got)
	}
	if j := evs[0].msg.(*pb.JoinSessionEvent); j.GetSessionUrl() != s.link(t, partP) {
		t.Fatalf("reconnect: session_url %q", j.GetSessionUrl())
	}

	// Strangers, and members who are not the creator, change nothing.
	e.announce(&pb.UserEvent{UserUuid: userB, Type: pb.UserEvent_USER_CONNECTED})
	e.announce(&pb.ParticipantEvent{ParticipantUuid: partP, Type: pb.ParticipantEvent_PARTICIPANT_DISCONNECTED})
	e.announce(&pb.DeviceEvent{DeviceUuid: devD, Type: pb.DeviceEvent_DEVICE_STATUS_CHANGED})
	e.events.Quiet(t, 300*time.Millisecond)
	if len(e.running()) != 1 {
		t.Fatal("a non-creator's disconnection stopped the session")
	}

	// The creator of two sessions disconnects: both stop.
	e.start([]string{userA}, []string{partQ}, nil)
	take(t, e, 3)
	e.announce(&pb.UserEvent{UserUuid: userA, Type: pb.UserEvent_USER_DISCONNECTED})
	evs = take(t, e, 6)
	stops := 0
	for _, ev := range evs {
		if _, ok := ev.msg.(*pb.StopSessionEvent); ok {
			stops++
		}
	}
	if stops != 6 {
		t.Fatalf("creator gone: %v", channelsOf(evs))
	}
	if n := len(e.running()); n != 0 {
		t.Fatalf("%d sessions still running", n)
	}
}

// TestBusyReply: with busy_reply, someone connected to another session is
// answered REPLY_BUSY instead of being invited (OpenTera issue #267).
func TestBusyReply(t *testing.T) {
	e := newEnv(t, envOpts{busy: true})
	s1 := e.start([]string{userA}, []string{partP}, nil)
	take(t, e, 3)
	join(t, s1.link(t, partP), "Patient P")
	waitFor(t, func() bool { return len(e.running()[0].Peers) == 1 })

	e.manage(map[string]any{"action": "start", "id_session": 0, "id_session_type": 1, "session_creator_user_uuid": userB,
		"session_users": []string{userB}, "session_participants": []string{partP, partQ}})
	evs := take(t, e, 6)
	want := []string{
		ch(session.KindUser, userB), ch(session.KindParticipant, partQ), opentera.UserManagerMessage, // invitations, P excepted
		ch(session.KindUser, userB), ch(session.KindParticipant, partQ), opentera.UserManagerMessage, // P is busy
	}
	if got := channelsOf(evs); !slices.Equal(got, want) {
		t.Fatalf("channels %v, want %v", got, want)
	}
	if j := evs[2].msg.(*pb.JoinSessionEvent); !slices.Equal(j.GetSessionParticipants(), []string{partQ}) {
		t.Fatalf("invitation lists %v", j.GetSessionParticipants())
	}
	r := evs[3].msg.(*pb.JoinSessionReplyEvent)
	if r.GetJoinReply() != pb.JoinSessionReplyEvent_REPLY_BUSY || r.GetParticipantUuid() != partP {
		t.Fatalf("reply %+v", r)
	}
	for _, v := range e.running() {
		if v.ID == 2 && (!slices.Equal(v.Participants, []string{partQ}) || v.Events[len(v.Events)-1].Type != session.EventJoinRefused) {
			t.Fatalf("session 2: participants %v events %+v", v.Participants, v.Events)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisRestartMidSession: redis-server dies and comes back on the same
// port; readiness reports it, and RPCs and events work again.
func TestRedisRestartMidSession(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.start([]string{userA}, []string{partP}, nil)
	take(t, e, 3)

	e.redis.Kill()
	waitFor(t, func() bool { return e.svc.Ready() != nil })
	e.redis.Restart()
	e.waitReady()
	ctx := context.Background()
	waitFor(t, func() bool { // the test's own listener has re-subscribed too
		n, _ := e.redis.Client.PubSubNumPat(ctx).Result()
		return n == 1
	})
	r := e.manage(map[string]any{"action": "stop", "id_session": 1})
	if r.Status != "stopped" {
		t.Fatalf("stop after the restart: %+v", r)
	}
	if got := channelsOf(take(t, e, 3)); !slices.Equal(got, []string{ch(session.KindUser, userA), ch(session.KindParticipant, partP), opentera.UserManagerMessage}) {
		t.Fatalf("events after the restart: %v", got)
	}
}
