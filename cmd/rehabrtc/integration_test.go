package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

const (
	therapist = "11111111-1111-4111-8111-111111111111"
	patient1  = "22222222-2222-4222-8222-222222222222"
	patient2  = "33333333-3333-4333-8333-333333333333"
)

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSessionLifecycle is the main scenario, end to end through the
// gateway with real WebSocket clients.
func TestSessionLifecycle(t *testing.T) {
	ts := startServer(t, testConfig(t, t.TempDir(), 3))
	code, r := ts.manage(map[string]any{"action": "start", "id_session": 0,
		"session_users": []string{therapist}, "session_participants": []string{patient1, patient2},
		"session_creator_user_uuid": therapist})
	if code != 200 || r.Status != "started" {
		t.Fatalf("start: %d %+v", code, r)
	}
	s := r.Session
	// A second session, to check keys do not cross sessions.
	_, other := ts.manage(map[string]any{"action": "start", "session_participants": []string{patient1}})

	therapistLink, p1Link := s.link(t, therapist), s.link(t, patient1)
	if getStatus(t, p1Link) != 200 || getStatus(t, strings.Replace(p1Link, "/participants?", "/status?", 1)) != 200 {
		t.Fatal("personal link does not open its page")
	}

	th, welcome := join(t, ts.gateway, therapistLink, "", "Dr T")
	if welcome["role"] != "user" || len(welcome["peers"].([]any)) != 0 {
		t.Fatalf("therapist welcome %v", welcome)
	}
	p1, welcome := join(t, ts.gateway, p1Link, "", "Patient 1")
	if welcome["role"] != "participant" || len(welcome["peers"].([]any)) != 1 {
		t.Fatalf("patient welcome %v", welcome)
	}
	joined := th.expect("peer-joined")["peer"].(map[string]any)
	if joined["uuid"] != patient1 || joined["name"] != "Patient 1" {
		t.Fatalf("peer-joined %v", joined)
	}

	// signal both ways
	th.send(map[string]any{"type": "signal", "to": joined["id"], "data": map[string]any{"sdp": "offer"}})
	got := p1.expect("signal")
	if got["from"] != welcome["peers"].([]any)[0].(map[string]any)["id"] || got["data"].(map[string]any)["sdp"] != "offer" {
		t.Fatalf("signal %v", got)
	}
	p1.send(map[string]any{"type": "signal", "to": got["from"], "data": map[string]any{"sdp": "answer"}})
	if th.expect("signal")["data"].(map[string]any)["sdp"] != "answer" {
		t.Fatal("answer not relayed")
	}

	t.Run("rejected joins", func(t *testing.T) {
		cases := map[string]struct{ key, uuid string }{
			"wrong key":                  {"not-a-key", ""},
			"key of another session":     {keyOf(other.Session.link(t, patient1)), ""},
			"kind key, uuid not invited": {keyOf(s.URLParticipants), "44444444-4444-4444-8444-444444444444"},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				w := dialWS(t, ts.gateway, s.Port)
				w.send(map[string]any{"type": "join", "key": c.key, "uuid": c.uuid})
				if e := w.expect("error"); e["code"] != "unauthorized" {
					t.Fatalf("error %v", e)
				}
				if code := w.closed(); code != 4001 {
					t.Fatalf("close code %d, want 4001", code)
				}
			})
		}
		if getStatus(t, strings.Replace(s.URLParticipants, "?key=", "?key=x", 1)) != 403 {
			t.Fatal("wrong key page is not 403")
		}
		if getStatus(t, strings.Replace(p1Link, "/participants?", "/users?", 1)) != 403 {
			t.Fatal("a participant's key opens the therapist page")
		}
	})

	// remove patient1: kicked at once, key dead
	code, r = ts.manage(map[string]any{"action": "remove", "id_session": s.ID, "session_participants": []string{patient1}})
	if code != 200 || r.Status != "removed" {
		t.Fatalf("remove: %d %+v", code, r)
	}
	p1.expect("removed")
	if c := p1.closed(); c != 4002 {
		t.Fatalf("removed close code %d", c)
	}
	th.expect("peer-left")
	if getStatus(t, p1Link) != 403 {
		t.Fatal("removed patient's link still opens the page")
	}
	w := dialWS(t, ts.gateway, s.Port)
	w.send(map[string]any{"type": "join", "key": keyOf(p1Link)})
	if w.closed() != 4001 {
		t.Fatal("removed patient's key still joins")
	}

	// stop: everyone ends, port freed
	p2, _ := join(t, ts.gateway, s.link(t, patient2), "", "Patient 2")
	code, r = ts.manage(map[string]any{"action": "stop", "id_session": s.ID})
	if code != 200 || r.Status != "stopped" || r.Session.Status != 2 {
		t.Fatalf("stop: %d %+v", code, r)
	}
	for _, c := range []*wsClient{th, p2} {
		c.expect("session-ended")
		if code := c.closed(); code != 4003 {
			t.Fatalf("session-ended close code %d", code)
		}
	}
	if getStatus(t, therapistLink) != 403 {
		t.Fatal("link of a stopped session still opens")
	}
	if _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/status", s.Port)); err == nil {
		t.Fatal("session port still listening after stop")
	}

	// start again on the same id: restarted, new keys
	code, r = ts.manage(map[string]any{"action": "start", "id_session": s.ID})
	if code != 200 || r.Status != "started" || r.Session.ID != s.ID || r.Session.link(t, therapist) == therapistLink {
		t.Fatalf("restart: %d %+v", code, r)
	}
	if getStatus(t, r.Session.link(t, therapist)) != 200 {
		t.Fatal("restarted session's link does not open")
	}
}

func TestAPIErrors(t *testing.T) {
	ts := startServer(t, testConfig(t, t.TempDir(), 1))
	for name, tc := range map[string]struct {
		method, path, auth, body string
		want                     int
		text                     string
	}{
		"no key":          {"POST", "/api/sessions/manager", "", `{"session_manage":{"action":"start"}}`, 401, "missing or wrong API key"},
		"wrong key":       {"POST", "/api/sessions/manager", "Bearer nope", `{"session_manage":{"action":"start"}}`, 401, ""},
		"malformed":       {"POST", "/api/sessions/manager", "Bearer " + testKey, `{`, 400, "malformed JSON"},
		"unknown session": {"POST", "/api/sessions/manager", "Bearer " + testKey, `{"session_manage":{"action":"stop","id_session":77}}`, 404, "No matching session to stop"},
		"bad id":          {"GET", "/api/sessions/abc", "Bearer " + testKey, "", 400, ""},
		"missing session": {"GET", "/api/sessions/5", "Bearer " + testKey, "", 404, ""},
		"list no key":     {"GET", "/api/sessions", "", "", 401, ""},
		"unknown route":   {"GET", "/api/nothing", "Bearer " + testKey, "", 404, ""},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.service+tc.path, strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Status string `json:"status"`
				Text   string `json:"error_text"`
			}
			decodeBody(t, resp, &e)
			if resp.StatusCode != tc.want || e.Status != "error" || (tc.text != "" && !strings.Contains(e.Text, tc.text)) {
				t.Fatalf("got %d %+v, want %d %q", resp.StatusCode, e, tc.want, tc.text)
			}
		})
	}
	t.Run("pool exhausted", func(t *testing.T) {
		if code, _ := ts.manage(map[string]any{"action": "start"}); code != 200 {
			t.Fatalf("first start %d", code)
		}
		code, r := ts.manage(map[string]any{"action": "start"})
		if code != 503 || r.ErrorText != "No available port left" {
			t.Fatalf("second start: %d %+v", code, r)
		}
		var list struct{ Sessions []sessionJSON }
		ts.api("GET", "/api/sessions", nil, &list)
		if len(list.Sessions) != 1 {
			t.Fatalf("a refused start left a session behind: %d sessions", len(list.Sessions))
		}
	})
}

// TestRestartKeepsSessions restarts the server over the same data directory:
// the session comes back on the same port with the same links, and a peer
// connected before gets server-shutdown and can rejoin.
func TestRestartKeepsSessions(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, 2)
	ts := startServer(t, cfg)
	_, r := ts.manage(map[string]any{"action": "start", "session_participants": []string{patient1}})
	link := r.Session.link(t, patient1)
	p, _ := join(t, ts.gateway, link, "", "P")
	ts.stop()
	p.expect("server-shutdown")
	if c := p.closed(); c != 4004 {
		t.Fatalf("shutdown close code %d", c)
	}

	ts = startServer(t, cfg)
	if getStatus(t, link) != 200 {
		t.Fatal("link does not work after restart")
	}
	// also directly on the session's own port, as nginx would reach it
	direct := fmt.Sprintf("http://127.0.0.1:%d/participants?key=%s", r.Session.Port, keyOf(link))
	if getStatus(t, direct) != 200 {
		t.Fatal("session port does not serve after restart")
	}
	p, welcome := join(t, ts.gateway, link, "", "P")
	if welcome["role"] != "participant" {
		t.Fatalf("welcome after restart %v", welcome)
	}
	var v sessionJSON
	ts.api("GET", fmt.Sprintf("/api/sessions/%d", r.Session.ID), nil, &v)
	if v.Port != r.Session.Port || len(v.Peers) != 1 || v.Peers[0].UUID != patient1 {
		t.Fatalf("after restart: %+v", v)
	}
}

// TestManyPeersRelay runs 200 peers in 100 sessions relaying concurrently
// (meaningful under -race).
func TestManyPeersRelay(t *testing.T) {
	const sessions, rounds = 100, 20
	ts := startServer(t, testConfig(t, t.TempDir(), sessions))
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		a := fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", i)
		b := fmt.Sprintf("bbbbbbbb-0000-4000-8000-%012d", i)
		_, r := ts.manage(map[string]any{"action": "start", "session_participants": []string{a, b}})
		if r.Status != "started" {
			t.Fatalf("start %d: %+v", i, r)
		}
		ca, _ := join(t, ts.gateway, r.Session.link(t, a), "", "A")
		cb, wb := join(t, ts.gateway, r.Session.link(t, b), "", "B")
		aID := wb["peers"].([]any)[0].(map[string]any)["id"]
		bID := wb["id"]
		wg.Go(func() {
			for n := range rounds {
				ca.send(map[string]any{"type": "signal", "to": bID, "data": map[string]any{"n": n, "s": i}})
				cb.send(map[string]any{"type": "message", "to": aID, "topic": "chat", "data": map[string]any{"n": n, "s": i}})
			}
			for range rounds {
				if m := cb.expect("signal"); int(m["data"].(map[string]any)["s"].(float64)) != i {
					errs <- fmt.Errorf("session %d got a message of session %v", i, m["data"])
					return
				}
				if m := ca.expect("message"); int(m["data"].(map[string]any)["s"].(float64)) != i {
					errs <- fmt.Errorf("session %d got a message of session %v", i, m["data"])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestGatewayRoutes(t *testing.T) {
	ts := startServer(t, testConfig(t, t.TempDir(), 1))
	for path, want := range map[string]int{
		"/rehab/healthz":            200,
		"/rehab/metrics":            404, // metrics stay on the service port
		"/webrtc/1/users?key=x":     403,
		"/webrtc/abc/users":         404,
		"/websocket/99999/":         404,
		"/nothing":                  404,
		"/rehab/api/sessions":       401,
		"/rehab/static/protocol.js": 200,
	} {
		if got := getStatus(t, ts.gateway+path); got != want {
			t.Errorf("%s: %d, want %d", path, got, want)
		}
	}
	if getStatus(t, ts.service+"/metrics") != 200 {
		t.Error("no /metrics on the service port")
	}
	if m, err := http.Get(ts.service + "/metrics"); err == nil {
		b, _ := io.ReadAll(m.Body)
		m.Body.Close()
		if !strings.Contains(string(b), "\nrehabrtc_peers_pending 0\n") {
			t.Error("/metrics lacks rehabrtc_peers_pending 0")
		}
	}
	resp, err := http.Get(ts.gateway + "/rehab/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if resp.Header.Get(h) != want {
			t.Errorf("%s = %q", h, resp.Header.Get(h))
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
}
