package hub

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

func TestKick(t *testing.T) {
	e := newEnv(t, Config{})
	u, p := pair(t, e)
	if n := e.hub.Kick(Identity{Role: RoleParticipant, UUID: "nobody"}); n != 0 {
		t.Fatalf("Kick(nobody) = %d", n)
	}
	if n := e.hub.Kick(Identity{Role: RoleParticipant, UUID: "p1"}); n != 1 {
		t.Fatalf("Kick = %d, want 1", n)
	}
	p.expect("removed")
	p.expectClose(CloseRemoved)
	if m := u.expect("peer-left"); m["id"] != p.id {
		t.Fatalf("peer-left %v", m)
	}
	if got := e.hub.Peers(); len(got) != 1 || got[0].ID != u.id {
		t.Fatalf("Peers() = %v", got)
	}
	// Anonymous invitees of one role share an identity: Kick takes them all.
	d1, _ := e.join(t, keyDevice, "", "cam 1")
	d2, _ := e.join(t, keyDevice, "", "cam 2")
	if n := e.hub.Kick(Identity{Role: RoleDevice}); n != 2 {
		t.Fatalf("Kick(anonymous devices) = %d, want 2", n)
	}
	for _, d := range []*client{d1, d2} {
		d.expectClose(CloseRemoved)
	}
	waitFor(t, func() bool { return len(e.serveErrs()) == 3 })
	for _, err := range e.serveErrs() {
		if err != nil {
			t.Fatalf("Serve of a removed peer returned %v, want nil", err)
		}
	}
}

// blockingAdmitter never answers until its context ends.
type blockingAdmitter struct{ called chan struct{} }

func (a blockingAdmitter) Admit(ctx context.Context, _, _ string) (Identity, error) {
	close(a.called)
	<-ctx.Done()
	return Identity{}, ctx.Err()
}

// A slow Admitter does not keep Close waiting: its context is cancelled.
func TestCloseDuringAdmit(t *testing.T) {
	adm := blockingAdmitter{called: make(chan struct{})}
	counters := &Counters{}
	e := newEnv(t, Config{Admitter: adm, Counters: counters})
	cl := e.dial(t)
	cl.send(map[string]any{"type": "join", "key": "k"})
	<-adm.called
	closed := make(chan error, 1)
	go func() { closed <- e.hub.Close(ctxTimeout(t, 10*time.Second), SessionEnded) }()
	cl.expect("session-ended")
	cl.expectClose(CloseSessionEnded)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := counters.JoinsRefused.Load(); n != 0 {
		t.Fatalf("JoinsRefused = %d: a join cut short by Close is not a refusal", n)
	}
}

func TestReplaced(t *testing.T) {
	e := newEnv(t, Config{})
	u, _ := e.join(t, keyUser, "u1", "Doc")
	old, _ := e.join(t, keyPersonal, "", "Alice")
	u.expect("peer-joined")
	// The page reconnects with the same invitation.
	fresh, w := e.join(t, keyPersonal, "", "Alice again")
	old.expect("replaced")
	old.expectClose(CloseReplaced)
	if peers := w["peers"].([]any); len(peers) != 1 || peers[0].(map[string]any)["id"] != u.id {
		t.Fatalf("welcome peers %v, want only the user", peers)
	}
	if m := u.expect("peer-left"); m["id"] != old.id {
		t.Fatalf("want peer-left of the old connection, got %v", m)
	}
	if m := u.expect("peer-joined"); m["peer"].(map[string]any)["id"] != fresh.id {
		t.Fatalf("want peer-joined of the new connection, got %v", m)
	}
	// Anonymous identities (empty uuid) never replace each other.
	e.join(t, keyParticipant, "", "anon 1")
	e.join(t, keyParticipant, "", "anon 2")
	if n := len(e.hub.Peers()); n != 4 {
		t.Fatalf("%d peers, want 4", n)
	}
}

func TestClose(t *testing.T) {
	for name, tt := range map[string]struct {
		reason                CloseReason
		notice                string
		code                  websocket.StatusCode
		refusedType, refusedC string
		refusedCode           websocket.StatusCode
	}{
		"session ended":   {SessionEnded, "session-ended", CloseSessionEnded, "error", "session-ended", CloseSessionEnded},
		"server shutdown": {ServerShutdown, "server-shutdown", CloseServerRestart, "server-shutdown", "", CloseServerRestart},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Config{})
			a, b := pair(t, e)
			lurker := e.dial(t) // connected, not joined yet
			lurker.sendRaw("{}")
			lurker.expectError("bad-message") // its Serve is running
			closed := make(chan error, 1)
			go func() { closed <- e.hub.Close(ctxTimeout(t, 10*time.Second), tt.reason) }()
			for _, c := range []*client{a, b, lurker} {
				c.expect(tt.notice)
				c.expectClose(tt.code)
			}
			if err := <-closed; err != nil {
				t.Fatalf("Close: %v", err)
			}
			// Close returned: every Serve has returned, normally (the test
			// server records the results just after).
			waitFor(t, func() bool { return len(e.serveErrs()) == 3 })
			if errs := e.serveErrs(); len(errs) != 3 || errs[0] != nil || errs[1] != nil || errs[2] != nil {
				t.Fatalf("Serve returned %v, want 3 nil", errs)
			}
			if got := e.hub.Peers(); len(got) != 0 {
				t.Fatalf("Peers() after Close = %v", got)
			}
			// New connections are refused the same way.
			late := e.dial(t)
			m := late.expect(tt.refusedType)
			if tt.refusedC != "" && m["code"] != tt.refusedC {
				t.Fatalf("refusal %v", m)
			}
			late.expectClose(tt.refusedCode)
			// Idempotent.
			if err := e.hub.Close(ctxTimeout(t, time.Second), SessionEnded); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			waitFor(t, func() bool { return len(e.serveErrs()) == 4 })
			if errs := e.serveErrs(); !errors.Is(errs[3], ErrClosed) {
				t.Fatalf("refused Serve returned %v, want ErrClosed", errs[3])
			}
		})
	}
}

func TestCloseBoundedByContext(t *testing.T) {
	e := newEnv(t, Config{})
	cl, _ := e.join(t, keyUser, "u1", "Doc")
	// This client reads nothing: its side of the close handshake never comes,
	// so Serve needs about 5 s to give up on it.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.hub.Close(ctx, SessionEnded); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want deadline exceeded", err)
	}
	cl.expect("session-ended") // the client reads again: the handshake completes
	cl.expectClose(CloseSessionEnded)
}

func TestFrameLimits(t *testing.T) {
	for name, tt := range map[string]struct {
		typ  websocket.MessageType
		size int
		code websocket.StatusCode // 0: accepted
	}{
		"64 KiB accepted": {websocket.MessageText, MaxFrame, 0},
		"oversize":        {websocket.MessageText, MaxFrame + 1, websocket.StatusMessageTooBig},
		"binary":          {websocket.MessageBinary, 100, websocket.StatusUnsupportedData},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Config{})
			a, b := pair(t, e)
			head := `{"type":"signal","to":"` + b.id + `","data":"`
			frame := head + strings.Repeat("x", tt.size-len(head)-2) + `"}`
			if err := a.c.Write(ctxTimeout(t, 5*time.Second), tt.typ, []byte(frame)); err != nil {
				t.Fatal(err)
			}
			if tt.code == 0 {
				if n := len(b.readRaw()); n < MaxFrame {
					t.Fatalf("relayed %d bytes", n)
				}
				return
			}
			a.expectClose(tt.code)
			b.expect("peer-left")
			waitFor(t, func() bool { return len(e.serveErrs()) == 1 })
			if got := websocket.CloseStatus(e.serveErrs()[0]); got != tt.code {
				t.Fatalf("Serve returned %v, want close status %v", e.serveErrs()[0], tt.code)
			}
		})
	}
}

// recorder is a hand-written Observer.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) PeerJoined(p PeerInfo) { r.add("joined " + p.Name + " " + string(p.Role)) }
func (r *recorder) PeerLeft(p PeerInfo)   { r.add("left " + p.Name + " " + string(p.Role)) }
func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func TestObserverAndCounters(t *testing.T) {
	rec := &recorder{}
	counters := &Counters{}
	e := newEnv(t, Config{Observer: rec, Counters: counters})
	u, p := pair(t, e)
	bad := e.dial(t)
	bad.send(map[string]any{"type": "join", "key": "wrong"})
	bad.expectError("unauthorized")
	bad.expectClose(CloseUnauthorized)

	if got := e.hub.Peers(); len(got) != 2 || got[0] != (PeerInfo{ID: u.id, Name: "Doc", UUID: "u1", Role: RoleUser}) ||
		got[1] != (PeerInfo{ID: p.id, Name: "Pat", UUID: "p1", Role: RoleParticipant}) {
		t.Fatalf("Peers() = %+v", got)
	}
	if n := counters.PeersConnected.Load(); n != 2 {
		t.Fatalf("PeersConnected = %d", n)
	}
	p.send(map[string]any{"type": "message", "topic": "chat", "data": "hi"})
	u.expect("message")
	_ = p.c.Close(websocket.StatusNormalClosure, "")
	u.expect("peer-left")

	waitFor(t, func() bool { return len(rec.get()) == 3 })
	want := []string{"joined Doc user", "joined Pat participant", "left Pat participant"}
	if got := rec.get(); !slices.Equal(got, want) {
		t.Fatalf("observer saw %q, want %q", got, want)
	}
	if j, r, m, c := counters.Joins.Load(), counters.JoinsRefused.Load(), counters.MessagesRelayed.Load(),
		counters.PeersConnected.Load(); j != 2 || r != 1 || m != 1 || c != 1 {
		t.Fatalf("joins %d refused %d relayed %d connected %d", j, r, m, c)
	}
	if n := counters.Errors.Load(); n != 1 { // the unauthorized join
		t.Fatalf("Errors = %d, want 1", n)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error { return testutil.Until(cond(), "condition not met") })
}
