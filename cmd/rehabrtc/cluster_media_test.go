package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/redistest"
)

// TestClusterMediaAddresses: two nodes on distinct loopback addresses
// (127.0.0.2 and 127.0.0.3) that read the same TURN and SFU settings (no
// relay_ip, no nat_1to1_ips, SFU on every interface) each hand out their
// own address: a page of a session homed on x gets x's TURN URLs, a relay
// on x's address and x's SFU candidates, also when its WebSocket came
// through y's gateway.
func TestClusterMediaAddresses(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true})
	bin := buildRehabRTC(t)
	base := freePorts(t, 3)
	cs := clusterSpec{redis: srv.Addr, base: base + 1, count: 2, public: base}
	own := func(ip string) func(*config.Config) {
		return func(c *config.Config) {
			_, port, _ := net.SplitHostPort(c.RehabRTC.Cluster.InternalAddr)
			c.RehabRTC.Cluster.InternalAddr = net.JoinHostPort(ip, port) // public_host unset: this host
			c.RehabRTC.TURN.Listen = ip + ":0"
			c.RehabRTC.TURN.RelayIP = ""
			c.RehabRTC.SFU.Bind = "" // every interface, as a shared file would say
			c.RehabRTC.MediaMode = config.MediaSFU
		}
	}
	x := startClusterNodeWith(t, bin, "x", cs, own("127.0.0.2"))
	y := startClusterNodeWith(t, bin, "y", cs, own("127.0.0.3"))
	const doctor, patient = "5d1c6a33-2a44-4e0e-8f5e-7a0b9c8d7e6f", "7b0f40c5-8b7f-4d3b-9c39-6a1f2e3d4c5b"
	code, r := x.srv.manage(map[string]any{"action": "start", "session_users": []string{doctor}, "session_participants": []string{patient}})
	if code != http.StatusOK || r.Status != "started" {
		t.Fatalf("start on x: %d %+v", code, r)
	}
	rdb := srv.Client(t)
	if v, _ := rdb.Get(t.Context(), fmt.Sprintf("{t}:lease:%d", r.Session.ID)).Result(); !strings.HasPrefix(v, "x#") {
		t.Fatalf("home %q, want x", v)
	}
	for _, tc := range []struct {
		name, gateway, uuid string
	}{
		{"through the home's gateway", x.gateway, doctor},
		{"through the other node's gateway", y.gateway, patient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, welcome := join(t, tc.gateway, r.Session.link(t, tc.uuid), tc.uuid, tc.name)
			cred := embeddedTURN(t, welcome)
			for _, u := range cred.urls {
				if !strings.Contains(u, ":127.0.0.2:") {
					t.Fatalf("TURN URL %s does not name the home's address 127.0.0.2 (all: %v)", u, cred.urls)
				}
			}
			relay, err := allocate(t, "udp", cred.url(t, "turn:"), cred, nil)
			if err != nil {
				t.Fatalf("allocate on the home's TURN server: %v", err)
			}
			if ip := relay.relay.LocalAddr().(*net.UDPAddr).IP.String(); ip != "127.0.0.2" {
				t.Fatalf("relayed address %s, want the home's 127.0.0.2", relay.relay.LocalAddr())
			}
			// Every candidate names the home's address (the shared sfu
			// section says nothing of it), and all are IPv4: the media
			// sockets are (an IPv6 candidate on them is a dead path).
			v4 := 0
			for _, cand := range sfuCandidates(t, c) {
				a, err := netip.ParseAddr(cand.Address)
				if err != nil || !a.Is4() || a.String() != "127.0.0.2" {
					t.Fatalf("the SFU's candidate %s names %s, want the home's 127.0.0.2", cand, cand.Address)
				}
				v4++
			}
			if v4 == 0 {
				t.Fatal("no IPv4 candidate in the SFU's answer")
			}
		})
	}
	if !strings.Contains(y.log(), "relay_ip=127.0.0.3") {
		t.Fatalf("y's relay is not on its own address:\n%s", y.log())
	}
}

// candidate is one a=candidate line of an SDP and its address.
type candidate struct{ line, Address string }

func (c candidate) String() string { return c.line }

// sfuCandidates publishes a camera to the session's SFU from a pion peer
// connection (the offer over c, as a page does) and returns the server's
// candidates in its answer.
func sfuCandidates(t *testing.T, c *wsClient) []candidate {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"type": "sfu-offer", "pc": "pub", "sdp": offer.SDP, "sources": map[string]string{"0": "camera"}})
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-c.msgs:
			switch m["type"] {
			case "sfu-error":
				t.Fatalf("the SFU refused the offer: %v", m)
			case "sfu-answer":
				if m["pc"] != "pub" {
					continue
				}
				var out []candidate
				for line := range strings.SplitSeq(m["sdp"].(string), "\n") {
					if !strings.HasPrefix(line, "a=candidate:") {
						continue
					}
					// candidate:<foundation> <component> <proto> <priority> <address> <port> typ <type> …
					f := strings.Fields(line)
					if len(f) < 8 {
						t.Fatalf("candidate %q", line)
					}
					out = append(out, candidate{line: strings.TrimSpace(line), Address: f[4]})
				}
				if len(out) == 0 {
					t.Fatalf("no candidate in the SFU's answer:\n%s", m["sdp"])
				}
				return out
			}
		case <-c.done:
			t.Fatalf("connection closed (%v) while waiting for the SFU's answer", c.err)
		case <-deadline:
			t.Fatal("no sfu-answer within 10 s")
		}
	}
}

// TestMediaIP: a cluster node's media address from public_host or its
// internal address; a name that resolves to nothing usable stops the start
// with an error naming the keys to set.
func TestMediaIP(t *testing.T) {
	for _, tc := range []struct {
		public, internal, want, err string
	}{
		{"", "10.0.0.5:4071", "10.0.0.5", ""},
		{"203.0.113.7", "10.0.0.5:4071", "203.0.113.7", ""},
		{"localhost", "10.0.0.5:4071", "127.0.0.1", ""},
		{"no-such-node.invalid", "10.0.0.5:4071", "", "RehabRTC.cluster.public_host"},
	} {
		t.Run(tc.public+" "+tc.internal, func(t *testing.T) {
			cfg := config.Default()
			cl := &cfg.RehabRTC.Cluster
			cl.Enabled, cl.PublicHost, cl.InternalAddr = true, tc.public, tc.internal
			ip, err := mediaIP(cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil || ip.String() != tc.want {
				t.Fatalf("%v %v, want %s", ip, err, tc.want)
			}
		})
	}
}
