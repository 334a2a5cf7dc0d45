package session_test

import (
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// TestAdmitted: the roster the TURN server checks follows invite, remove
// and stop.
func TestAdmitted(t *testing.T) {
	e := newEnv(t, 3)
	v := e.start()
	user := session.Identity{Kind: session.KindUser, UUID: userA}
	part := session.Identity{Kind: session.KindParticipant, UUID: partB}
	newcomer := session.Identity{Kind: session.KindParticipant, UUID: partC}
	check := func(step string, want map[session.Identity]bool) {
		t.Helper()
		for id, w := range want {
			if got := e.mgr.Admitted(v.ID, id); got != w {
				t.Errorf("%s: Admitted(%v) = %v, want %v", step, id, got, w)
			}
		}
	}
	check("started", map[session.Identity]bool{user: true, part: true, newcomer: false,
		{Kind: session.KindUser, UUID: partB}: false, {Kind: session.KindUser}: false})
	if e.mgr.Admitted(v.ID+1, user) {
		t.Error("admitted to a session that does not exist")
	}
	e.mustManage(`{"session_manage":{"action":"invite","id_session":1,"session_participants":["` + partC + `"]}}`)
	check("invited", map[session.Identity]bool{newcomer: true})
	e.mustManage(`{"session_manage":{"action":"remove","id_session":1,"session_participants":["` + partB + `"]}}`)
	check("removed", map[session.Identity]bool{user: true, part: false, newcomer: true})
	e.mustManage(`{"session_manage":{"action":"stop","id_session":1}}`)
	check("stopped", map[session.Identity]bool{user: false, newcomer: false})
}
