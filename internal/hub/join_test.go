package hub

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestJoinWelcome(t *testing.T) {
	for name, tt := range map[string]struct {
		key, uuid, name string
		wantRole        Role
		wantUUID        string
		wantName        string
	}{
		"user":              {keyUser, "u1", "Dr Tremblay", RoleUser, "u1", "Dr Tremblay"},
		"participant":       {keyParticipant, "p1", "  Bob  ", RoleParticipant, "p1", "Bob"},
		"device":            {keyDevice, "d1", "", RoleDevice, "d1", "device"},
		"personal token":    {keyPersonal, "", "Alice", RoleParticipant, "alice", "Alice"},
		"control chars":     {keyUser, "u2", "A\x00l\u202eice\n", RoleUser, "u2", "Alice"},
		"only controls":     {keyParticipant, "p2", "\t\x01 ", RoleParticipant, "p2", "participant"},
		"truncated":         {keyUser, "u3", strings.Repeat("é", 70), RoleUser, "u3", strings.Repeat("é", 64)},
		"escaped name":      {keyUser, "u4", `"quoted" \ <b>`, RoleUser, "u4", `"quoted" \ <b>`},
		"unicode name kept": {keyUser, "u5", "Zoë 👩‍⚕️", RoleUser, "u5", "Zoë 👩‍⚕️"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Config{ICEServers: []byte(`[{"urls":"stun:x"}]`)})
			cl, w := e.join(t, tt.key, tt.uuid, tt.name)
			if w["role"] != string(tt.wantRole) || w["uuid"] != tt.wantUUID || w["name"] != tt.wantName {
				t.Fatalf("welcome %v, want role %q uuid %q name %q", w, tt.wantRole, tt.wantUUID, tt.wantName)
			}
			if id, _ := w["id"].(string); len(id) < 12 {
				t.Fatalf("peer id %q shorter than 12", id)
			}
			if peers := w["peers"].([]any); len(peers) != 0 {
				t.Fatalf("peers %v, want none", peers)
			}
			ice := w["iceServers"].([]any)
			if len(ice) != 1 {
				t.Fatalf("iceServers %v", ice)
			}
			cl.roundTrip()
		})
	}
}

func TestJoinRefused(t *testing.T) {
	for name, tt := range map[string]struct {
		first    string // the first message
		wantErr  string
		wantCode websocket.StatusCode // 0: stays open
	}{
		"bad key":             {`{"type":"join","key":"nope"}`, "unauthorized", CloseUnauthorized},
		"signal before join":  {`{"type":"signal","to":"x","data":1}`, "protocol", CloseProtocol},
		"message before join": {`{"type":"message","topic":"chat"}`, "protocol", CloseProtocol},
		"unknown before join": {`{"type":"hello"}`, "protocol", CloseProtocol},
		"missing key":         {`{"type":"join","name":"x"}`, "missing-field", 0},
		"empty key":           {`{"type":"join","key":""}`, "missing-field", 0},
		"not json":            {`join please`, "bad-message", 0},
		"key not a string":    {`{"type":"join","key":42}`, "bad-message", 0},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Config{})
			cl := e.dial(t)
			cl.sendRaw(tt.first)
			cl.expectError(tt.wantErr)
			if tt.wantCode != 0 {
				cl.expectClose(tt.wantCode)
				waitFor(t, func() bool { return len(e.serveErrs()) == 1 })
				if got := websocket.CloseStatus(e.serveErrs()[0]); got != tt.wantCode {
					t.Fatalf("Serve returned %v, want close status %v", e.serveErrs()[0], tt.wantCode)
				}
				return
			}
			// Still open: a good join now succeeds.
			cl.send(map[string]any{"type": "join", "key": keyUser})
			cl.expect("welcome")
		})
	}
}

func TestSecondJoin(t *testing.T) {
	e := newEnv(t, Config{})
	cl, _ := e.join(t, keyUser, "u1", "A")
	cl.send(map[string]any{"type": "join", "key": keyUser, "uuid": "u1"})
	cl.expectError("already-joined")
	cl.roundTrip()
	if n := len(e.hub.Peers()); n != 1 {
		t.Fatalf("%d peers, want 1", n)
	}
}

func TestJoinTimeout(t *testing.T) {
	e := newEnv(t, Config{JoinTimeout: 50 * time.Millisecond})
	cl := e.dial(t)
	cl.expectError("protocol")
	cl.expectClose(CloseProtocol)
}

func TestPresence(t *testing.T) {
	e := newEnv(t, Config{})
	a, _ := e.join(t, keyUser, "u1", "Doc")
	b, w := e.join(t, keyParticipant, "p1", "Pat")
	peers := w["peers"].([]any)
	if len(peers) != 1 {
		t.Fatalf("welcome peers %v, want A", peers)
	}
	want := map[string]any{"id": a.id, "name": "Doc", "uuid": "u1", "role": "user"}
	if got := peers[0].(map[string]any); !sameMap(got, want) {
		t.Fatalf("welcome peer %v, want %v", got, want)
	}
	pj := a.expect("peer-joined")["peer"].(map[string]any)
	if !sameMap(pj, map[string]any{"id": b.id, "name": "Pat", "uuid": "p1", "role": "participant"}) {
		t.Fatalf("peer-joined %v", pj)
	}
	_ = b.c.Close(websocket.StatusNormalClosure, "")
	if m := a.expect("peer-left"); m["id"] != b.id {
		t.Fatalf("peer-left %v, want %s", m, b.id)
	}
}

func sameMap(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
