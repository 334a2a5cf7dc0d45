package sfu

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

func TestEngineNeedsUDPMux(t *testing.T) {
	if _, err := NewEngine(EngineConfig{}); err == nil {
		t.Fatal("an engine without a UDP mux was built")
	}
}

// TestICETCPMux: a client that can only use TCP reaches the server
// through the ICE-TCP mux and receives media.
func TestICETCPMux(t *testing.T) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(t, err)
	tcpMux := webrtc.NewICETCPMux(nil, ln, 64)
	t.Cleanup(func() { _ = tcpMux.Close(); _ = ln.Close() })
	e := newEnvWith(t, EngineConfig{TCPMux: tcpMux}, RouterConfig{})
	pub := e.join("alice")
	publishCamera(t, pub, 30)

	// bob's client offers TCP candidates only, so only the server's TCP
	// candidate can pair.
	m := &webrtc.MediaEngine{}
	must(t, m.RegisterDefaultCodecs())
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	bobAPI := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	c := e.addClient("bob", bobAPI)
	c.wg.Go(c.run)
	v := c.track("alice/cam")
	waitPackets(t, v, 10)
	c.mu.Lock()
	sub := c.sub
	c.mu.Unlock()
	pair, err := sub.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("selected pair %v (%v) is not TCP", pair, err)
	}
	// The server's own SRTP writer writes to the UDP socket only: an
	// ICE-TCP subscriber keeps pion's write path.
	if c := e.engine.Counters(); c.OwnWriters != 0 || c.PionWriters == 0 {
		t.Errorf("writers: own %d, pion %d; want pion only", c.OwnWriters, c.PionWriters)
	}
}

// TestNAT1To1: the server announces the configured public address
// instead of its own.
func TestNAT1To1(t *testing.T) {
	e := newEnvWith(t, EngineConfig{NAT1To1IPs: []string{"203.0.113.7"}}, RouterConfig{})
	c := e.addClient("alice", clientAPI(t)) // no message loop: the test reads the answer
	must(t, e.router.Handle("alice", Message{Type: TypeOffer, PC: PCPublish, SDP: offerSDP(t, 1)}))
	var answer Message
	select {
	case answer = <-c.inbox:
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
	}
	if answer.Type != TypeAnswer || !strings.Contains(answer.SDP, " 203.0.113.7 ") {
		t.Fatalf("answer without the public address:\n%s", answer.SDP)
	}
	if strings.Contains(answer.SDP, " 127.0.0.1 ") {
		t.Fatalf("answer still announces the host address:\n%s", answer.SDP)
	}
}

// TestPublisherConnectionGone: a page whose publish connection ends
// without a word on the WebSocket (a crash, a closed laptop) disappears
// from the subscribers. A silent network is the same path after
// ICEFailedTimeout.
func TestPublisherConnectionGone(t *testing.T) {
	e := newEnvWith(t, EngineConfig{ICEFailedTimeout: 2 * time.Second}, RouterConfig{})
	bob := e.join("bob")
	alice := e.join("alice")
	publishCamera(t, alice, 30)
	waitPackets(t, bob.track("alice/cam"), 10)
	start := time.Now()
	alice.close()
	eventually(t, 10*time.Second, "alice's tracks withdrawn", func() bool { return !bob.hasTrackOf("alice") })
	t.Logf("withdrawn %v after the publisher went away", time.Since(start).Round(10*time.Millisecond))
}
