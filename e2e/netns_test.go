package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/turn/v5"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// The separated-networks test runs the real binary in a "service" network
// namespace wired to two others, "home" and "clinic", that have no route to
// each other. The clients in home and clinic are pion/turn clients, not
// browsers: a browser would need its own process per namespace (Chromium's
// network service cannot be moved into one), and what is tested here is the
// path media takes, which is the TURN relay; ICE and video decoding through
// the same relay are tested in Chromium by TestForcedRelayVideo.
//
//	home 10.77.1.2 ── 10.77.1.1 ┐
//	                            service (relay 10.77.0.1, no forwarding)
//	clinic 10.77.2.2 ── 10.77.2.1 ┘

const relayHost = "10.77.0.1"

type topology struct {
	*netns
	svc, home, clinic string // namespace names
}

func newTopology(t *testing.T) *topology {
	t.Helper()
	n := newNetns(t, "turn", "ip", "nft")
	top := &topology{netns: n, svc: n.add("svc"), home: n.add("home"), clinic: n.add("clinic")}
	n.star(top.svc, relayHost, 77, spoke{top.home, n.id + "0a", n.id + "0b"}, spoke{top.clinic, n.id + "1a", n.id + "1b"})
	n.run("ip", "netns", "exec", top.svc, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	return top
}

// nsServer is rehabrtc running in the service namespace.
type nsServer struct {
	api, gateway string // base URLs, reachable from the service namespace / from home and clinic
	hc           *http.Client
}

func (n *topology) startService(t *testing.T, cert *testutil.TestCert) *nsServer {
	t.Helper()
	hc, _, _ := n.serve("rehabrtc", n.svc, syscall.SIGTERM,
		map[string]any{"hostname": relayHost, "external_port": 443, "local_base_port": 8080, "max_sessions": 5},
		map[string]any{
			"gateway": map[string]any{"enabled": true, "listen": ":443", "tls_cert": cert.CertFile, "tls_key": cert.KeyFile},
			"turn":    map[string]any{"listen": ":3478"},
		})
	return &nsServer{api: nsAPI, gateway: "https://" + relayHost, hc: hc}
}

// start starts a session of the therapist and patient 1.
func (s *nsServer) start(t *testing.T) Session { return startSessionVia(t, s.hc, patient1UUID) }

// creds joins the session from namespace ns over the gateway (WebSocket on
// 443) and returns the embedded server's credentials from the welcome.
func (s *nsServer) creds(t *testing.T, ns string, roots *tls.Config, sess Session, uuid string) (user, pass string) {
	t.Helper()
	u, err := url.Parse(sess.link(t, uuid))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, fmt.Sprintf("wss://%s/websocket/%d/", relayHost, sess.Port),
		&websocket.DialOptions{HTTPClient: httpClient(ns, roots)})
	if err != nil {
		t.Fatalf("join from %s: %v", ns, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	join, _ := json.Marshal(map[string]any{"type": "join", "key": u.Query().Get("key")})
	if err := c.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		ICEServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"iceServers"`
	}
	if err := json.Unmarshal(b, &w); err != nil || len(w.ICEServers) == 0 {
		t.Fatalf("welcome %s", b)
	}
	want := "turns:" + relayHost + ":443?transport=tcp"
	if !strings.Contains(strings.Join(w.ICEServers[0].URLs, " "), want) {
		t.Fatalf("welcome URLs %v lack %s", w.ICEServers[0].URLs, want)
	}
	go func() { // keep the WebSocket read so the hub's pings are answered
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	return w.ICEServers[0].Username, w.ICEServers[0].Credential
}

type nsPeer struct {
	c     *turn.Client
	relay net.PacketConn
}

// allocate connects from ns over "udp" (3478), "tcp" (3478) or "tls"
// (443, the gateway's port) and allocates a relay.
func allocateFrom(t *testing.T, ns, network string, roots *tls.Config, user, pass string) (*nsPeer, error) {
	t.Helper()
	var conn net.PacketConn
	addr := relayHost + ":3478"
	err := inNetns(ns, func() error {
		switch network {
		case "udp":
			pc, err := net.ListenPacket("udp4", ":0")
			conn = pc
			return err
		case "tcp":
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				return err
			}
			conn = turn.NewSTUNConn(c)
			return nil
		}
		addr = relayHost + ":443"
		c, err := (&net.Dialer{Timeout: 3 * time.Second}).Dial("tcp", addr)
		if err != nil {
			return err
		}
		conf := roots.Clone()
		conf.ServerName = relayHost
		tc := tls.Client(c, conf)
		if err := tc.Handshake(); err != nil {
			return err
		}
		conn = turn.NewSTUNConn(tc)
		return nil
	})
	if err != nil {
		return nil, err
	}
	tc, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: user, Password: pass, Realm: "rehabrtc", RTO: 200 * time.Millisecond})
	if err != nil {
		conn.Close()
		return nil, err
	}
	t.Cleanup(func() { tc.Close(); conn.Close() })
	if err := tc.Listen(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	relay, err := tc.AllocateWithContext(ctx)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { relay.Close() })
	return &nsPeer{c: tc, relay: relay}, nil
}

// stream sends 200 packets of 1,000 bytes from a to b through their
// relays (like 400 kbit/s of video for one second) and returns how many
// arrived.
func stream(t *testing.T, a, b *nsPeer) int {
	t.Helper()
	if err := a.c.CreatePermission(b.relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := b.c.CreatePermission(a.relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got := make(chan int)
	go func() {
		n := 0
		buf := make([]byte, 1500)
		for {
			b.relay.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, err := b.relay.ReadFrom(buf); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	pkt := bytes.Repeat([]byte{0x80}, 1000)
	for range 200 {
		a.relay.WriteTo(pkt, b.relay.LocalAddr())
		time.Sleep(5 * time.Millisecond)
	}
	return <-got
}

// firewall replaces the home namespace's output rules.
func (n *topology) firewall(rules string) { n.nft(n.home, "flush ruleset\n"+rules) }

// TestSeparatedNetworks: home and clinic cannot reach each other; media
// still flows between them through rehabrtc's relay over UDP; with UDP
// blocked at home, over TURN/TCP; with only TCP 443 open at home, over
// TURN/TLS on the gateway's HTTPS port.
func TestSeparatedNetworks(t *testing.T) {
	n := newTopology(t)
	cert := testutil.SelfSignedCert(t, relayHost)
	roots := &tls.Config{RootCAs: cert.Pool}
	srv := n.startService(t, cert)
	sess := srv.start(t)
	hu, hp := srv.creds(t, n.home, roots, sess, patient1UUID)
	cu, cp := srv.creds(t, n.clinic, roots, sess, therapistUUID)

	// No direct path: home cannot send to the clinic.
	err := inNetns(n.home, func() error {
		c, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(10, 77, 2, 2), Port: 9})
		return err
	})
	if err == nil {
		t.Fatal("home reaches the clinic directly: the topology is wrong")
	}

	clinic, err := allocateFrom(t, n.clinic, "udp", roots, cu, cp)
	if err != nil {
		t.Fatalf("clinic allocation over UDP: %v", err)
	}
	for _, tt := range []struct {
		name, rules, network string
		blocked              []string // transports that must fail at home
	}{
		{"udp", "", "udp", nil},
		{"udp blocked: tcp", "table inet f { chain out { type filter hook output priority 0; meta l4proto udp drop; }; }", "tcp", []string{"udp"}},
		{"only tcp 443: tls", "table inet f { chain out { type filter hook output priority 0; policy drop; oif lo accept; tcp dport 443 accept; }; }",
			"tls", []string{"udp", "tcp"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n.firewall(tt.rules)
			for _, b := range tt.blocked {
				if _, err := allocateFrom(t, n.home, b, roots, hu, hp); err == nil {
					t.Errorf("home allocated over %s through the firewall", b)
				}
			}
			home, err := allocateFrom(t, n.home, tt.network, roots, hu, hp)
			if err != nil {
				t.Fatalf("home allocation over %s: %v", tt.network, err)
			}
			if got := stream(t, home, clinic); got < 190 {
				res, _ := srv.hc.Get(srv.api + "/metrics")
				var buf bytes.Buffer
				buf.ReadFrom(res.Body)
				for _, l := range strings.Split(buf.String(), "\n") {
					if strings.HasPrefix(l, "rehabrtc_turn") {
						t.Log(l)
					}
				}
				t.Errorf("home → clinic: %d of 200 packets", got)
			}
			if got := stream(t, clinic, home); got < 190 {
				t.Errorf("clinic → home: %d of 200 packets", got)
			}
		})
	}
}
