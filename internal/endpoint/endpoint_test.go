package endpoint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gate admits two fixed keys: the endpoint only needs the Gate contract,
// which internal/session tests for real.
type gate struct{}

func (gate) Admit(_ context.Context, key, uuid string) (session.Identity, error) {
	switch key {
	case "pkey":
		return session.Identity{Kind: session.KindParticipant, UUID: "p1"}, nil
	case "ukey":
		return session.Identity{Kind: session.KindUser, UUID: "u1"}, nil
	}
	return session.Identity{}, session.ErrDenied
}

func (g gate) Valid(ctx context.Context, key string) bool {
	_, err := g.Admit(ctx, key, "")
	return err == nil
}

func TestRunnerListenerAndStop(t *testing.T) {
	port := testutil.FreePort(t)
	r := &Runner{Bind: "127.0.0.1"}
	ep, err := r.Start(context.Background(), session.RunSpec{SessionID: 1, Port: port, Gate: gate{}})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for path, want := range map[string]int{
		"/participants?key=pkey": 200,
		"/users?key=pkey":        403, // a participant key does not open the therapist page
		"/users?key=ukey":        200,
		"/devices?key=nope":      403,
		"/status?key=pkey":       200,
		"/status?key=":           403,
		"/static/protocol.js":    200,
		"/other":                 404,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
		if resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: no Referrer-Policy", path)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/websocket/%d/", port, port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"join","key":"pkey","name":"P"}`))
	if _, msg, err := c.Read(ctx); err != nil || !contains(msg, `"type":"welcome"`) {
		t.Fatalf("welcome: %s %v", msg, err)
	}
	if peers := ep.Peers(); len(peers) != 1 || peers[0].Role != session.KindParticipant {
		t.Fatalf("peers %+v", peers)
	}
	ep.Kick(session.Identity{Kind: session.KindParticipant, UUID: "p1"})
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != 4002 {
				t.Fatalf("kick close: %v", err)
			}
			break
		}
		if !contains(msg, `"removed"`) {
			t.Fatalf("unexpected %s", msg)
		}
	}
	if err := ep.Stop(ctx, session.StopEnded); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/status?key=pkey"); err == nil {
		t.Fatal("listener still open after Stop")
	}
}

func TestRunnerPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := &Runner{Bind: "127.0.0.1"}
	_, err = r.Start(context.Background(), session.RunSpec{Port: ln.Addr().(*net.TCPAddr).Port, Gate: gate{}})
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("err = %v, want a listen error", err)
	}
}

func TestWebSocketWrongPortPath(t *testing.T) {
	e := New(session.RunSpec{Port: 8080, Gate: gate{}}, Options{})
	srv := &http.Server{Handler: e.Handler()}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	defer func() { srv.Close(); <-done; e.Close(context.Background(), session.StopEnded) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/websocket/8081/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("other port's websocket path: %d", resp.StatusCode)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// presence records what an endpoint tells it, in order.
type presence struct {
	ch chan string
}

func (p presence) PeerJoined(id int64, peer session.Peer) {
	p.ch <- fmt.Sprintf("%d joined %s %s", id, peer.Role, peer.UUID)
}
func (p presence) PeerLeft(id int64, peer session.Peer) {
	p.ch <- fmt.Sprintf("%d left %s %s", id, peer.Role, peer.UUID)
}

// TestPresenceHearsJoinsAndLeaves: the hub's joins and leaves reach the
// Presence sink, named by the session's id, so dashboards hear them.
func TestPresenceHearsJoinsAndLeaves(t *testing.T) {
	p := presence{ch: make(chan string, 4)}
	r := &Runner{Options: Options{Presence: p}}
	ep, err := r.Start(context.Background(), session.RunSpec{SessionID: 7, Port: 8080, Gate: gate{}})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := r.Handler(8080)
	srv := newTestServer(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv, "http")+"/websocket/8080/", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"join","key":"pkey","name":"P"}`))
	if _, msg, err := c.Read(ctx); err != nil || !contains(msg, `"type":"welcome"`) {
		t.Fatalf("welcome: %s %v", msg, err)
	}
	want := func(s string) {
		t.Helper()
		select {
		case got := <-p.ch:
			if got != s {
				t.Fatalf("presence %q, want %q", got, s)
			}
		case <-ctx.Done():
			t.Fatalf("no %q", s)
		}
	}
	want("7 joined participant p1")
	c.Close(websocket.StatusNormalClosure, "")
	want("7 left participant p1")
	if err := ep.Stop(ctx, session.StopEnded); err != nil {
		t.Fatal(err)
	}
}

// newTestServer serves h on a loopback port until the test ends.
func newTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return "http://" + ln.Addr().String()
}

// personGate is gate that also tells who a key's holder is.
type personGate struct{ gate }

func (personGate) Person(ctx context.Context, key, uuid string) (session.Person, error) {
	if _, err := (gate{}).Admit(ctx, key, uuid); err != nil {
		return session.Person{}, err
	}
	return session.Person{Name: "Mme Gagnon", Lang: "fr", Therapist: "Dr Roy"}, nil
}

// TestMe: a key's holder learns their name, language and therapist; a
// wrong key gets 403; a gate that cannot tell answers 404.
func TestMe(t *testing.T) {
	for name, tc := range map[string]struct {
		gate session.Gate
		key  string
		code int
		body string
	}{
		"member":      {personGate{}, "pkey", 200, `{"name":"Mme Gagnon","lang":"fr","therapist":"Dr Roy"}`},
		"wrong key":   {personGate{}, "nope", 403, "Invalid or expired key"},
		"cannot tell": {gate{}, "pkey", 404, ""},
	} {
		t.Run(name, func(t *testing.T) {
			e := New(session.RunSpec{Port: 8080, Gate: tc.gate}, Options{})
			rec := httptest.NewRecorder()
			e.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/me?key="+tc.key, nil))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if tc.code == 200 && rec.Header().Get("Cache-Control") != "no-store" {
				t.Error("a person's name may be cached")
			}
		})
	}
}
