package opentera_test

import (
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// startAsMainServer starts a session as OpenTera's main server forwards
// a user's request: the caller's id in id_creator_user, no creator uuid.
func (e *env) startAsMainServer() sessionJSON {
	e.t.Helper()
	r := e.manage(map[string]any{"action": "start", "id_service": 3, "id_session": 0, "id_session_type": 1,
		"id_creator_user": 1, "session_users": []string{userA, userB}, "session_participants": []string{partP},
		"session_devices": []string{}})
	if r.Status != "started" {
		e.t.Fatalf("start: %+v", r)
	}
	return r.session(e.t)
}

// replyAsMainServer answers an invitation as UserSessionManager forwards
// it: the caller's own id in id_creator_user and uuid in user_uuid.
func (e *env) replyAsMainServer(id int64, userID int, userUUID string, code any) reply {
	e.t.Helper()
	return e.manage(map[string]any{"action": "invite_reply", "id_session": id, "id_creator_user": userID,
		"parameters": map[string]any{"reply_code": code, "user_uuid": userUUID}})
}

func (e *env) waitRunning(n int) {
	e.t.Helper()
	testutil.Eventually(e.t, 5*time.Second, func() error {
		got := len(e.running())
		return testutil.Until(got == n, "%d sessions running, want %d", got, n)
	})
}

// TestCreatorRulesInBothModes: with or without the main server's REST API
// (Backend), the creator refusing its invitation and the creator
// disconnecting stop the session (opentera#260), and nobody else's
// refusal or disconnection does. Requests carry what OpenTera's main
// server sends: ids, no creator uuid.
func TestCreatorRulesInBothModes(t *testing.T) {
	for _, mode := range []struct {
		name    string
		backend bool
	}{{"Redis only", false}, {"with Backend", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Run("creator refuses", func(t *testing.T) {
				e := newEnv(t, envOpts{backend: mode.backend})
				s := e.startAsMainServer()
				if r := e.replyAsMainServer(s.ID, 2, userB, "reject"); r.Status != "OK" {
					t.Fatalf("another user refuses: %+v", r)
				}
				if len(e.running()) != 1 {
					t.Fatal("another user's refusal stopped the session")
				}
				r := e.replyAsMainServer(s.ID, 1, userA, 2)
				if r.Status != "error" || r.ErrorText != "Creator refused to join session - session ended" {
					t.Fatalf("creator refuses: %+v", r)
				}
				e.waitRunning(0)
			})
			t.Run("creator disconnects", func(t *testing.T) {
				e := newEnv(t, envOpts{backend: mode.backend})
				s := e.startAsMainServer()
				if r := e.replyAsMainServer(s.ID, 1, userA, "accept"); r.Status != "OK" {
					t.Fatalf("creator accepts: %+v", r)
				}
				if got := e.replyAsMainServer(s.ID, 1, userA, "accept").session(t).CreatorUUID; got != userA {
					t.Fatalf("session_creator_uuid %q, want %q", got, userA)
				}
				e.announce(&pb.UserEvent{UserUuid: userB, Type: pb.UserEvent_USER_DISCONNECTED})
				time.Sleep(300 * time.Millisecond) // an absence: give a wrong stop the time to happen
				if len(e.running()) != 1 {
					t.Fatal("another user's disconnection stopped the session")
				}
				e.announce(&pb.UserEvent{UserUuid: userA, Type: pb.UserEvent_USER_DISCONNECTED})
				e.waitRunning(0)
			})
		})
	}
}
