package hub

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// routerPolicy is a hand-written Policy: "echo" answers the sender, "pass"
// sends data to the peer named by data, "kick" and "swap" end the peer
// named by data, "refuse" and "boom" fail; any other type is refused.
type routerPolicy struct {
	mu     sync.Mutex
	peers  map[string]Peer
	events []string // "joined <id>", "left <id>"
}

func newRouterPolicy() *routerPolicy { return &routerPolicy{peers: map[string]Peer{}} }

func (r *routerPolicy) Joined(p Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peers[p.ID()] = p
	r.events = append(r.events, "joined "+p.ID())
}

func (r *routerPolicy) Left(p Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.peers, p.ID())
	r.events = append(r.events, "left "+p.ID())
}

func (r *routerPolicy) Handle(p Peer, typ string, data json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var target string
	_ = json.Unmarshal(data, &target)
	to, ok := r.peers[target]
	switch {
	case typ == "echo":
		p.Send([]byte(`{"type":"echo","role":"` + string(p.Info().Role) + `","data":` + string(data) + `}`))
	case typ == "refuse":
		return &Refusal{Code: "nope", Message: "refused by policy"}
	case typ == "boom":
		return errors.New("policy bug")
	case !ok && (typ == "pass" || typ == "kick" || typ == "swap"):
		return &Refusal{Code: "unknown-peer", Message: "no such peer"}
	case typ == "pass":
		to.Send([]byte(`{"type":"passed","from":"` + p.ID() + `"}`))
	case typ == "kick":
		to.Remove()
	case typ == "swap":
		to.Replace()
	default:
		return &Refusal{Code: "unknown-type", Message: "unknown message type"}
	}
	return nil
}

func (r *routerPolicy) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// With a Policy the hub is private and every message but join goes to it.
func TestPolicyPrivateHub(t *testing.T) {
	pol := newRouterPolicy()
	e := newEnv(t, Config{Policy: pol})
	a, _ := e.join(t, keyUser, "u1", "A")
	b, w := e.join(t, keyParticipant, "p1", "B")
	if peers := w["peers"].([]any); len(peers) != 0 {
		t.Fatalf("private welcome lists peers: %v", peers)
	}
	for name, tt := range map[string]struct {
		send map[string]any
		code string // expected error code; "" = expect echo
	}{
		"echo":                  {map[string]any{"type": "echo", "data": map[string]any{"x": 1}}, ""},
		"refusal":               {map[string]any{"type": "refuse"}, "nope"},
		"internal error":        {map[string]any{"type": "boom"}, "internal"},
		"signal goes to it":     {map[string]any{"type": "signal", "to": a.id, "data": 1}, "unknown-type"},
		"message goes to it":    {map[string]any{"type": "message", "topic": "chat"}, "unknown-type"},
		"unknown peer":          {map[string]any{"type": "pass", "data": "nobody"}, "unknown-peer"},
		"later join goes to it": {map[string]any{"type": "join", "key": keyUser}, "unknown-type"},
	} {
		t.Run(name, func(t *testing.T) {
			b.send(tt.send)
			if tt.code != "" {
				b.expectError(tt.code)
				return
			}
			m := b.expect("echo")
			if m["role"] != "participant" || m["data"].(map[string]any)["x"] != 1.0 {
				t.Fatalf("echo %v", m)
			}
		})
	}
	b.send(map[string]any{"type": "pass", "data": a.id})
	if m := a.expect("passed"); m["from"] != b.id { // no peer-joined came before it
		t.Fatalf("passed %v", m)
	}
	b.send(map[string]any{"type": "kick", "data": a.id})
	a.expect("removed")
	a.expectClose(CloseRemoved)
	waitFor(t, func() bool { return slices.Contains(pol.log(), "left "+a.id) })
	c, _ := e.join(t, keyUser, "u2", "C")
	b.send(map[string]any{"type": "swap", "data": c.id})
	c.expect("replaced")
	c.expectClose(CloseReplaced)
	b.send(map[string]any{"type": "echo", "data": 2})
	b.expect("echo") // b saw nothing of a's and c's comings and goings
	want := []string{"joined " + a.id, "joined " + b.id, "left " + a.id, "joined " + c.id, "left " + c.id}
	waitFor(t, func() bool { return slices.Equal(pol.log(), want) })
}

// A peer that never joined is never shown to the Policy.
func TestPolicyIgnoresUnjoined(t *testing.T) {
	pol := newRouterPolicy()
	e := newEnv(t, Config{Policy: pol})
	cl := e.dial(t)
	cl.send(map[string]any{"type": "echo"})
	cl.expectError("protocol")
	cl.expectClose(websocket.StatusCode(CloseProtocol))
	if got := pol.log(); len(got) != 0 {
		t.Fatalf("policy saw %v", got)
	}
}

// stallingPolicy's Joined sends a greeting, then stalls until the client
// has read its welcome or a short grace has passed. It records whether the
// welcome reached the client while Joined was still running.
type stallingPolicy struct {
	routerPolicy
	welcomed chan struct{} // closed by the test once the client read its welcome
	early    chan bool     // one value per Joined: the welcome was read during it
}

func (s *stallingPolicy) Joined(p Peer) {
	p.Send([]byte(`{"type":"greeting"}`))
	select {
	case <-s.welcomed:
		s.early <- true
	case <-time.After(200 * time.Millisecond): // the fixed order: nothing is sent meanwhile
		s.early <- false
	}
	s.routerPolicy.Joined(p)
}

// The Policy knows a peer before the client can read its welcome, so that
// whatever the client does on its welcome finds the Policy ready; frames the
// Policy sends in Joined follow the welcome.
func TestPolicyJoinedBeforeWelcome(t *testing.T) {
	pol := &stallingPolicy{
		routerPolicy: *newRouterPolicy(),
		welcomed:     make(chan struct{}),
		early:        make(chan bool, 1),
	}
	e := newEnv(t, Config{Policy: pol})
	cl := e.dial(t)
	cl.send(map[string]any{"type": "join", "key": keyUser, "uuid": "u1", "name": "A"})
	w := cl.expect("welcome")
	close(pol.welcomed)
	if <-pol.early {
		t.Fatal("the client read its welcome while Policy.Joined was running")
	}
	if got := pol.log(); !slices.Equal(got, []string{"joined " + w["id"].(string)}) {
		t.Fatalf("policy log after the welcome: %v", got)
	}
	cl.expect("greeting")
}
