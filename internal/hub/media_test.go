package hub

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// recMedia records what the hub tells the media server. It stands in for
// internal/sfu, which the hub may not import (a core package imports none
// of ours); endpoint's tests run the real router behind the hub.
type recMedia struct {
	mu     sync.Mutex
	events []string
}

func (m *recMedia) add(ev string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, ev)
}

func (m *recMedia) Add(peer string)               { m.add("add " + peer) }
func (m *recMedia) Handle(peer string, fr []byte) { m.add("handle " + peer + " " + string(fr)) }
func (m *recMedia) Remove(peer string)            { m.add("remove " + peer) }

func (m *recMedia) has(ev string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.events, ev)
}

func (m *recMedia) count(ev string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, e := range m.events {
		if e == ev {
			n++
		}
	}
	return n
}

func (m *recMedia) wait(t *testing.T, ev string) { t.Helper(); m.waitWithin(t, 5*time.Second, ev) }

func (m *recMedia) waitWithin(t *testing.T, d time.Duration, ev string) {
	t.Helper()
	testutil.Eventually(t, d, func() error {
		if !m.has(ev) {
			m.mu.Lock()
			defer m.mu.Unlock()
			return fmt.Errorf("no %q in %q", ev, m.events)
		}
		return nil
	})
}

func TestMediaSeesOnlyJoinedPeers(t *testing.T) {
	m := &recMedia{}
	e := newEnv(t, Config{Media: m})

	early := e.dial(t)
	early.sendRaw(`{"type":"sfu-offer","pc":"pub","sdp":"v=0"}`)
	early.expectClose(CloseProtocol) // join first, as for any message

	a, _ := e.join(t, keyUser, "u1", "Doc")
	m.wait(t, "add "+a.id)
	const offer = `{"type":"sfu-offer","pc":"pub","sdp":"v=0\r\n","sources":{"0":"camera"}}`
	a.sendRaw(offer)
	m.wait(t, "handle "+a.id+" "+offer) // byte for byte
	a.sendRaw(`{"type":"sfu-whatever"}`)
	m.wait(t, "handle "+a.id+` {"type":"sfu-whatever"}`) // the media server judges its own types

	const answer = `{"type":"sfu-answer","pc":"pub","sdp":"v=0"}`
	if !e.hub.Send(a.id, []byte(answer)) {
		t.Fatal("Send to a joined peer = false")
	}
	if got := string(a.readRaw()); got != answer {
		t.Fatalf("got %s, want %s", got, answer)
	}
	if e.hub.Send("nobody", []byte(answer)) || e.hub.Send(early.id, []byte(answer)) {
		t.Fatal("Send to an unknown peer = true")
	}
	if m.has("add "+early.id) || m.has("remove "+early.id) {
		t.Fatal("a peer that never joined reached the media server")
	}
}

func TestMediaRemoveOnKickLeaveAndReplace(t *testing.T) {
	m := &recMedia{}
	e := newEnv(t, Config{Media: m})
	kicked, _ := e.join(t, keyParticipant, "p1", "Pat")
	if n := e.hub.Kick(Identity{Role: RoleParticipant, UUID: "p1"}); n != 1 {
		t.Fatalf("Kick = %d", n)
	}
	// At once: Kick returns after the media server has dropped the peer,
	// whether or not its connection has finished closing.
	if !m.has("remove " + kicked.id) {
		t.Fatalf("no remove %s right after Kick", kicked.id)
	}
	kicked.expect("removed")

	left, _ := e.join(t, keyParticipant, "p2", "Pat2")
	left.c.Close(websocket.StatusNormalClosure, "")
	m.wait(t, "remove "+left.id)

	old, _ := e.join(t, keyUser, "u1", "Doc")
	m.wait(t, "add "+old.id)
	e.join(t, keyUser, "u1", "Doc") // same invitee again: replaces old
	// At once, as for Kick: old does not read, so its connection would
	// take 5 s to close.
	m.waitWithin(t, time.Second, "remove "+old.id)
	if n := m.count("add " + old.id); n != 1 {
		t.Fatalf("add %s seen %d times", old.id, n)
	}
}

func TestMediaTypesWithoutMediaServer(t *testing.T) {
	e := newEnv(t, Config{})
	a, _ := e.join(t, keyUser, "u1", "Doc")
	a.sendRaw(`{"type":"sfu-offer","pc":"pub","sdp":"v=0"}`)
	a.expectError("unknown-type")
}
