package hub

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// joinWith joins with a resume token and returns the client and welcome.
func (e *env) joinWith(t *testing.T, key, uuid, resume string) (*client, map[string]any) {
	t.Helper()
	cl := e.dial(t)
	cl.send(map[string]any{"type": "join", "key": key, "uuid": uuid, "name": "N", "resume": resume})
	w := cl.expect("welcome")
	cl.id, _ = w["id"].(string)
	return cl, w
}

// TestResumeKeepsPeerID: a page that reconnects with its welcome's resume
// token gets its peer id back, and the others see it come back under that
// id; the token also works on a new hub (a server restart) with the same
// key.
func TestResumeKeepsPeerID(t *testing.T) {
	e := newEnv(t, Config{})
	other, _ := e.join(t, keyUser, "u1", "Doc")
	a, w := e.join(t, keyPersonal, "", "Alice")
	other.expect("peer-joined")
	tok, _ := w["resume"].(string)
	if len(tok) < 43 { // ≥ 256 bits in base64url, of which 128 random
		t.Fatalf("resume token %q too short", tok)
	}
	_ = a.c.Close(websocket.StatusGoingAway, "")
	other.expect("peer-left")

	b, w2 := e.joinWith(t, keyPersonal, "", tok)
	if b.id != a.id {
		t.Fatalf("resumed id %q, want %q", b.id, a.id)
	}
	if pj := other.expect("peer-joined")["peer"].(map[string]any); pj["id"] != a.id {
		t.Fatalf("the other page saw %v, want id %s", pj, a.id)
	}
	if tok2, _ := w2["resume"].(string); tok2 == "" || tok2 == tok {
		t.Fatalf("no fresh token in the resumed welcome: %q", tok2)
	}

	// A new hub (the server restarted): the last token still works, once.
	tok2 := w2["resume"].(string)
	e2 := newEnv(t, Config{})
	c, _ := e2.joinWith(t, keyPersonal, "", tok2)
	if c.id != a.id {
		t.Fatalf("id after a restart %q, want %q", c.id, a.id)
	}
}

// TestResumeRefused: a token that does not hold gives a new id, never an
// error: reused (single-use), shown with another key, altered, garbage, or
// for an id someone else holds now.
func TestResumeRefused(t *testing.T) {
	e := newEnv(t, Config{})
	a, w := e.join(t, keyPersonal, "", "Alice")
	tok := w["resume"].(string)
	_ = a.c.Close(websocket.StatusGoingAway, "")
	waitFor(t, func() bool { return len(e.hub.Peers()) == 0 })
	b, _ := e.joinWith(t, keyPersonal, "", tok)
	if b.id != a.id {
		t.Fatalf("first use: id %q, want %q", b.id, a.id)
	}
	_ = b.c.Close(websocket.StatusGoingAway, "")
	waitFor(t, func() bool { return len(e.hub.Peers()) == 0 })

	flip := []byte(tok)
	flip[len(flip)/2] ^= 1
	for name, tc := range map[string]struct{ key, uuid, tok string }{
		"reused":          {keyPersonal, "", tok},
		"another key":     {keyParticipant, "alice", tok},
		"altered":         {keyPersonal, "", string(flip)},
		"garbage":         {keyPersonal, "", "not-a-token"},
		"too long":        {keyPersonal, "", strings.Repeat("A", 4096)},
		"another's token": {keyUser, "u9", tok},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := e.joinWith(t, tc.key, tc.uuid, tc.tok)
			if c.id == a.id {
				t.Fatalf("kept id %q with a token that should not hold", c.id)
			}
			_ = c.c.Close(websocket.StatusGoingAway, "")
			waitFor(t, func() bool { return len(e.hub.Peers()) == 0 })
		})
	}

	// An id someone else holds is not taken over.
	d, w := e.join(t, keyUser, "u1", "Doc")
	_ = d.c.Close(websocket.StatusGoingAway, "")
	waitFor(t, func() bool { return len(e.hub.Peers()) == 0 })
	holder, _ := e.joinWith(t, keyUser, "u1", w["resume"].(string)) // d's id, back
	if holder.id != d.id {
		t.Fatalf("id %q, want %q", holder.id, d.id)
	}
	forged := mintResume([]byte(keyDevice), Identity{Role: RoleDevice, UUID: "d1"}, d.id, time.Now())
	thief, _ := e.joinWith(t, keyDevice, "d1", forged)
	if thief.id == d.id {
		t.Fatal("a second peer took an id that is in use")
	}
}

func TestResumeTokenExpires(t *testing.T) {
	id := newPeerID()
	ident := Identity{Role: RoleUser, UUID: "u1"}
	now := time.Now()
	tok := mintResume([]byte("k"), ident, id, now)
	if got, _, ok := openResume([]byte(tok), []byte("k"), ident, now.Add(resumeTTL-time.Minute)); !ok || got != id {
		t.Fatalf("valid token refused: %q %v", got, ok)
	}
	if _, _, ok := openResume([]byte(tok), []byte("k"), ident, now.Add(resumeTTL+2*time.Second)); ok {
		t.Fatal("expired token accepted")
	}
}
