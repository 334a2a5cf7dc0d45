package hub

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// iceByPeer is a hand-written ICEProvider: servers named after the peer,
// with a serial number so renewals can be told apart.
type iceByPeer struct {
	mu    sync.Mutex
	n     int
	ttl   time.Duration
	asked []Identity
}

func (p *iceByPeer) ICEServers(id Identity) (json.RawMessage, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.asked = append(p.asked, id)
	return json.RawMessage(fmt.Sprintf(`[{"urls":"turn:t:3478","username":"%s.%s","credential":"c%d"}]`, id.Role, id.UUID, p.n)),
		time.Now().Add(p.ttl)
}

// TestICEServersPerPeer: each peer gets its own ICE servers in its welcome,
// and new ones in an ice-servers message before they expire.
func TestICEServersPerPeer(t *testing.T) {
	ice := &iceByPeer{ttl: 3 * time.Second}
	e := newEnv(t, Config{ICE: ice, ICEPolicy: "relay", ICEServers: []byte(`[{"urls":"stun:ignored"}]`), PingInterval: 50 * time.Millisecond})
	a, wa := e.join(t, keyUser, "u1", "A")
	_, wb := e.join(t, keyParticipant, "p1", "B")
	user := func(w map[string]any) string {
		return w["iceServers"].([]any)[0].(map[string]any)["username"].(string)
	}
	if user(wa) != "user.u1" || user(wb) != "participant.p1" {
		t.Fatalf("welcome ICE servers %v / %v", wa["iceServers"], wb["iceServers"])
	}
	if wa["iceTransportPolicy"] != "relay" {
		t.Errorf("iceTransportPolicy = %v", wa["iceTransportPolicy"])
	}
	a.expect("peer-joined")
	start := time.Now()
	m := a.expect("ice-servers")
	if got := user(m); got != "user.u1" {
		t.Errorf("renewal for %q", got)
	}
	if cred := m["iceServers"].([]any)[0].(map[string]any)["credential"]; cred == "c1" {
		t.Error("renewal carries the old credential")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("renewal came %v after the welcome, after the credentials expired", d)
	}
}

// TestICEServersStaticWithoutProvider: no provider, no renewal and no policy.
func TestICEServersStaticWithoutProvider(t *testing.T) {
	e := newEnv(t, Config{ICEServers: []byte(`[{"urls":"stun:x"}]`), PingInterval: 20 * time.Millisecond})
	a, w := e.join(t, keyUser, "u1", "A")
	if _, ok := w["iceTransportPolicy"]; ok {
		t.Errorf("welcome has a policy: %v", w)
	}
	time.Sleep(100 * time.Millisecond) // several heartbeats
	a.roundTrip()                      // nothing queued before the echo
}
