package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/turn/v5"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// turnCred is the embedded server's entry of a welcome's iceServers.
type turnCred struct {
	urls       []string
	user, pass string
}

func embeddedTURN(t *testing.T, welcome map[string]any) turnCred {
	t.Helper()
	list, _ := welcome["iceServers"].([]any)
	if len(list) == 0 {
		t.Fatalf("welcome has no ICE servers: %v", welcome)
	}
	s := list[0].(map[string]any)
	var c turnCred
	for _, u := range s["urls"].([]any) {
		c.urls = append(c.urls, u.(string))
	}
	c.user, _ = s["username"].(string)
	c.pass, _ = s["credential"].(string)
	if c.user == "" || c.pass == "" {
		t.Fatalf("no TURN credentials in %v", s)
	}
	return c
}

// url returns the host:port of the first URL starting with prefix.
func (c turnCred) url(t *testing.T, prefix string) string {
	t.Helper()
	for _, u := range c.urls {
		if strings.HasPrefix(u, prefix) {
			hp, _, _ := strings.Cut(strings.TrimPrefix(u, prefix), "?")
			return hp
		}
	}
	t.Fatalf("no %s URL in %v", prefix, c.urls)
	return ""
}

type turnPeer struct {
	c     *turn.Client
	relay net.PacketConn
}

// allocate connects a pion TURN client (the network stack browsers' TURN
// code follows) over "udp", "tcp" or "tls" and allocates a relay.
func allocate(t *testing.T, network, addr string, c turnCred, roots *tls.Config) (*turnPeer, error) {
	t.Helper()
	var conn net.PacketConn
	switch network {
	case "udp":
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	case "tcp":
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(nc)
	default:
		nc, err := tls.Dial("tcp", addr, roots)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(nc)
	}
	tc, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: c.user, Password: c.pass, Realm: "rehabrtc"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close(); conn.Close() })
	if err := tc.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := tc.Allocate()
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { relay.Close() })
	return &turnPeer{c: tc, relay: relay}, nil
}

// relayed sends from a's relay to b's and reports whether b got it.
func relayed(a, b *turnPeer, msg string) error {
	if err := a.c.CreatePermission(b.relay.LocalAddr()); err != nil {
		return err
	}
	if err := b.c.CreatePermission(a.relay.LocalAddr()); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for range 10 {
		a.relay.WriteTo([]byte(msg), b.relay.LocalAddr())
		b.relay.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
		if n, _, err := b.relay.ReadFrom(buf); err == nil && string(buf[:n]) == msg {
			return nil
		}
	}
	return errors.New("not relayed")
}

// metric reads one sample from the service's /metrics.
func (ts *testServer) metric(name string) float64 {
	ts.t.Helper()
	return testutil.Metric(ts.t, ts.service+"/metrics", name)
}

// TestTURNBoundToInvitation: each welcome carries TURN credentials for the
// embedded server; two invitees relay to each other over UDP and TCP;
// once one is removed, its allocations close within a second, its
// credentials are refused, and no credential ever reaches the logs.
//
// In process-per-session mode the child's welcome carries the same
// per-peer credentials, minted by the parent over the control channel, and
// none of them is on the child's command line or in its environment.
func TestTURNBoundToInvitation(t *testing.T) {
	t.Run("in process", func(t *testing.T) { testTURNBoundToInvitation(t, testConfig(t, t.TempDir(), 2), "") })
	t.Run("child process", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds the binary")
		}
		bin := buildRehabRTC(t)
		testTURNBoundToInvitation(t, childConfig(t, bin, 2), bin)
	})
}

// testTURNBoundToInvitation runs the test on cfg; bin is the children's
// executable in process-per-session mode, "" in process.
func testTURNBoundToInvitation(t *testing.T, cfg *config.Config, bin string) {
	logs := &testutil.Buffer{}
	cfg.RehabRTC.TURN.RelayIP = "" // derived from WebRTC.hostname, 127.0.0.1
	ts := startServerLog(t, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	_, r := ts.manage(map[string]any{"action": "start", "session_users": []string{therapist}, "session_participants": []string{patient1}})
	_, wt := join(t, ts.gateway, r.Session.link(t, therapist), "", "T")
	_, wp := join(t, ts.gateway, r.Session.link(t, patient1), "", "P")
	ct, cp := embeddedTURN(t, wt), embeddedTURN(t, wp)
	if ct.user == cp.user || ct.pass == cp.pass {
		t.Fatal("two invitees got the same credentials")
	}
	if bin != "" {
		kids := childPIDs(t, os.Getpid(), bin)
		if kids[r.Session.Port] == 0 {
			t.Fatalf("no child serves session port %d: %v", r.Session.Port, kids)
		}
		noKeyInProc(t, kids[r.Session.Port], []string{ct.pass, cp.pass, ct.user, cp.user})
	}
	udp := ct.url(t, "turn:")
	a, err := allocate(t, "udp", udp, ct, nil)
	if err != nil {
		t.Fatalf("therapist's credentials refused: %v", err)
	}
	b, err := allocate(t, "tcp", cp.url(t, "turn:"), cp, nil)
	if err != nil {
		t.Fatalf("patient's credentials refused over TCP: %v", err)
	}
	if err := relayed(a, b, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := relayed(b, a, "hello back"); err != nil {
		t.Fatal(err)
	}
	if ts.metric("rehabrtc_turn_relayed_bytes_to_peers_total") == 0 || ts.metric("rehabrtc_turn_allocations") != 2 {
		t.Error("TURN metrics do not show the relay")
	}
	if err := a.c.CreatePermission(&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("permission to 10.0.0.1 = %v, want 403", err)
	}

	ts.manage(map[string]any{"action": "remove", "id_session": r.Session.ID, "session_participants": []string{patient1}})
	removed := time.Now()
	for ts.metric("rehabrtc_turn_allocations") != 1 {
		if time.Since(removed) > time.Second {
			t.Fatal("the removed invitee's allocation outlived 1 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := relayed(a, b, "after"); err == nil {
		t.Error("media still relayed to the removed invitee")
	}
	if _, err := allocate(t, "udp", udp, cp, nil); err == nil {
		t.Error("the removed invitee's credentials still allocate")
	}
	if _, err := allocate(t, "udp", udp, turnCred{user: ct.user, pass: "wrong"}, nil); err == nil {
		t.Error("a wrong password allocates")
	}
	if ts.metric("rehabrtc_turn_auth_failures_total") < 2 {
		t.Error("auth failures not counted")
	}
	ts.manage(map[string]any{"action": "stop", "id_session": r.Session.ID})
	for ts.metric("rehabrtc_turn_allocations") != 0 {
		if time.Since(removed) > 5*time.Second {
			t.Fatal("the stopped session's allocation outlived its session")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.stop()
	for _, secret := range []string{ct.pass, cp.pass, ct.user, cp.user} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain a TURN credential %q", secret)
		}
	}
}

// TestConsultationTURN: an EHRC doctor and patient (native WebSocket) get
// their own credentials for the embedded server in welcome; the server
// relays between them, and once the patient has left its allocation closes
// within a second and its credentials are refused. None is logged.
func TestConsultationTURN(t *testing.T) {
	logs := &testutil.Buffer{}
	ts := startServerLog(t, testConfig(t, t.TempDir(), 2), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	var created struct {
		Token string `json:"doctor-token"`
	}
	if code := ts.api(http.MethodGet, "/api/create-namespace?namespaceId=dr-turn", nil, &created); code != 200 {
		t.Fatalf("create-namespace: %d", code)
	}
	var room struct {
		ID string `json:"room-id"`
	}
	_ = json.Unmarshal([]byte(getBody(t, ts.gateway+"/api/create-room", http.StatusOK)), &room)
	doctor := dialConsult(t, ts.gateway, "dr-turn", created.Token)
	patient := dialConsult(t, ts.gateway, "dr-turn", room.ID)
	cd, cp := embeddedTURN(t, doctor.welcome), embeddedTURN(t, patient.welcome)
	if cd.user == cp.user || !strings.Contains(cp.user, "participant."+room.ID) {
		t.Fatalf("credentials %q and %q", cd.user, cp.user)
	}
	udp := cd.url(t, "turn:")
	a, err := allocate(t, "udp", udp, cd, nil)
	if err != nil {
		t.Fatalf("doctor's credentials refused: %v", err)
	}
	b, err := allocate(t, "tcp", cp.url(t, "turn:"), cp, nil)
	if err != nil {
		t.Fatalf("patient's credentials refused over TCP: %v", err)
	}
	if err := relayed(a, b, "consult"); err != nil {
		t.Fatal(err)
	}

	_ = patient.c.Close(websocket.StatusNormalClosure, "")
	left := time.Now()
	testutil.Eventually(t, 3*time.Second, func() error {
		n := ts.metric("rehabrtc_turn_allocations")
		return testutil.Until(n == 1, "%v allocations", n)
	})
	if d := time.Since(left); d > time.Second {
		t.Errorf("the patient's allocation outlived its connection by %s", d)
	}
	if _, err := allocate(t, "udp", udp, cp, nil); err == nil {
		t.Error("the departed patient's credentials still allocate")
	}
	ts.stop()
	for _, secret := range []string{cd.pass, cp.pass, cd.user, cp.user} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain a TURN credential %q", secret)
		}
	}
}

// TestTURNOverGatewayTLS: with a TLS gateway, the pages, the WebSocket and
// TURN share its one port; welcome lists turns: on it.
func TestTURNOverGatewayTLS(t *testing.T) {
	cert := testutil.SelfSignedCert(t, "127.0.0.1")
	cfg := testConfig(t, t.TempDir(), 2)
	cfg.RehabRTC.Gateway.TLSCert, cfg.RehabRTC.Gateway.TLSKey = cert.CertFile, cert.KeyFile
	ts := startServer(t, cfg)
	_, r := ts.manage(map[string]any{"action": "start", "session_users": []string{therapist}, "session_participants": []string{patient1}})
	roots := &tls.Config{RootCAs: cert.Pool}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: roots}}
	defer hc.CloseIdleConnections()
	gw := "https://" + cfg.GatewayAddr()
	if resp, err := hc.Get(gw + "/rehab/healthz"); err != nil {
		t.Fatalf("HTTPS on the gateway: %v", err)
	} else {
		resp.Body.Close()
	}
	welcome := func(uuid string) turnCred {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, fmt.Sprintf("wss://%s/websocket/%d/", cfg.GatewayAddr(), r.Session.Port),
			&websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatalf("wss on the gateway: %v", err)
		}
		t.Cleanup(func() { c.CloseNow() })
		w := &wsClient{t: t, c: c, msgs: make(chan map[string]any, 64), done: make(chan struct{})}
		go w.read()
		t.Cleanup(func() { c.CloseNow(); <-w.done })
		w.send(map[string]any{"type": "join", "key": keyOf(r.Session.link(t, uuid))})
		return embeddedTURN(t, w.expect("welcome"))
	}
	ct, cp := welcome(therapist), welcome(patient1)
	addr := ct.url(t, "turns:")
	if addr != net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.WebRTC.ExternalPort)) {
		t.Fatalf("turns: URL %s is not the gateway's port", addr)
	}
	a, err := allocate(t, "tls", addr, ct, roots)
	if err != nil {
		t.Fatalf("TURN over TLS on the gateway port: %v", err)
	}
	b, err := allocate(t, "udp", cp.url(t, "turn:"), cp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := relayed(a, b, "through 443"); err != nil {
		t.Fatal(err)
	}
	if err := relayed(b, a, "and back"); err != nil {
		t.Fatal(err)
	}
}

// TestTURNDisabled: enabled=false, nothing listens and no credentials are
// handed out.
func TestTURNDisabled(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), 2)
	cfg.RehabRTC.TURN.Enabled = false
	port := testutil.FreePorts(t, 1)
	cfg.RehabRTC.TURN.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	ts := startServer(t, cfg)
	for _, network := range []string{"tcp", "udp"} { // the port stays free
		var err error
		if network == "tcp" {
			var ln net.Listener
			if ln, err = net.Listen(network, cfg.RehabRTC.TURN.Listen); err == nil {
				ln.Close()
			}
		} else {
			var pc net.PacketConn
			if pc, err = net.ListenPacket(network, cfg.RehabRTC.TURN.Listen); err == nil {
				pc.Close()
			}
		}
		if err != nil {
			t.Errorf("TURN port taken with TURN disabled: %v", err)
		}
	}
	_, r := ts.manage(map[string]any{"action": "start", "session_participants": []string{patient1}})
	_, w := join(t, ts.gateway, r.Session.link(t, patient1), "", "P")
	if list, _ := w["iceServers"].([]any); len(list) != 0 {
		t.Fatalf("iceServers = %v with TURN disabled", list)
	}
	if ts.metric("rehabrtc_turn_allocations") != 0 {
		t.Fatal("allocations without a TURN server")
	}
}
