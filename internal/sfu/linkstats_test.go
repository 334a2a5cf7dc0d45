package sfu

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// lastStats returns the client's latest sfu-stats, if any.
func (c *client) lastStats() (Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.stats) == 0 {
		return Message{}, false
	}
	return c.stats[len(c.stats)-1], true
}

// The sfu-stats a page gets reflect the losses the server measures: on a
// publisher's link (packets that never reached the server) and on the
// page's own subscribe link (what its receiver reports say).
func TestStatsReflectLoss(t *testing.T) {
	for _, tc := range []struct {
		name      string
		holeEvery uint16  // publisher side: every n-th packet lost on the way
		reported  uint8   // subscriber side: fraction lost in its reports, /256
		upMin     float64 // the publisher's link: packets the server asked again, over those that came
		upMax     float64
	}{
		{"clean links", 0, 0, 0, 0},
		// One packet in 10 never sent: the server asks for each (once counted).
		{"lossy links", 10, 51, 0.08, 0.15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, RouterConfig{})
			sub := e.join("bob")
			pub := e.join("alice")
			video := localTrack(t, capVP8, "cam", "alice")
			senders := pub.publish([]webrtc.TrackLocal{video}, []string{"camera"})
			src := &vp8Source{width: 640, height: 360, frameSize: 3000, keyEvery: 60, holeEvery: tc.holeEvery}
			pump := newPump()
			t.Cleanup(pump.close)
			pump.video(t, video, senders[0], "", src)
			pub.keyOnPLI(pump, map[uint32]*vp8Source{uint32(senders[0].GetParameters().Encodings[0].SSRC): src})
			v := sub.track("alice/cam")
			waitPackets(t, v, 10)
			ssrc := uint32(v.remote.SSRC())
			// Bob's receiver reports, as a browser sends them every second.
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				tk := time.NewTicker(200 * time.Millisecond)
				defer tk.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tk.C:
						sub.sendRTCP(&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: ssrc, FractionLost: tc.reported}}})
					}
				}
			}()
			defer func() { close(stop); <-done }()

			var m Message
			testutil.Eventually(t, 15*time.Second, func() error {
				var ok bool
				m, ok = sub.lastStats()
				if !ok || m.Down == nil {
					return errors.New("no sfu-stats yet")
				}
				up, ok := m.Up["alice"]
				return testutil.Until(ok && up.Kbps > 0 && m.Down.Kbps > 0 && m.Down.EstimateKbps > 0 &&
					m.Down.Loss >= float64(tc.reported)/256 && (tc.reported > 0 || m.Down.Loss == 0) &&
					up.Loss >= tc.upMin && up.Loss <= tc.upMax, "sfu-stats: down %+v, up %+v", *m.Down, m.Up)
			})
			if _, ok := m.Up["bob"]; ok {
				t.Errorf("bob publishes nothing, yet has an up link: %+v", m.Up)
			}
			t.Logf("bob's sfu-stats: down %+v, alice's up %+v", *m.Down, m.Up["alice"])
		})
	}
}

// The round trip from ICE's checks, which the sfu-stats of a publish link
// (and of a subscribe link without receiver reports) carry: known on both
// of a page's connections once the server's keepalive got its answer.
func TestICERoundTrip(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	sub := e.join("bob")
	pub := e.join("alice")
	video := localTrack(t, capVP8, "cam", "alice")
	senders := pub.publish([]webrtc.TrackLocal{video}, []string{"camera"})
	pump := newPump()
	t.Cleanup(pump.close)
	pump.video(t, video, senders[0], "", &vp8Source{width: 640, height: 360, frameSize: 3000, keyEvery: 30})
	waitPackets(t, sub.track("alice/cam"), 10)
	e.router.mu.Lock()
	alice, bob := e.router.peers["alice"], e.router.peers["bob"]
	e.router.mu.Unlock()
	for _, tc := range []struct {
		name string
		pc   func() *webrtc.PeerConnection
	}{
		{"publish connection", func() *webrtc.PeerConnection { alice.mu.Lock(); defer alice.mu.Unlock(); return alice.pub }},
		{"subscribe connection", func() *webrtc.PeerConnection { bob.mu.Lock(); defer bob.mu.Unlock(); return bob.sub }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eventually(t, 3*iceKeepalive+time.Second, "a round trip", func() bool {
				rtt := iceRTT(tc.pc())
				return rtt > 0 && rtt < time.Second
			})
		})
	}
	if iceRTT(nil) != 0 {
		t.Error("no connection, yet a round trip")
	}
}

// RTT from a receiver report: now − LSR − DLSR, in 1/65536 s.
func TestReportRTT(t *testing.T) {
	w := newLinkWatch()
	now := time.Unix(1_800_000_000, 250_000_000)
	w.clock = func() time.Time { return now }
	i, _ := w.NewInterceptor("pc")
	r := i.(*linkReports)
	sentSR := now.Add(-130 * time.Millisecond)
	held := 30 * time.Millisecond // the page's delay since that SR
	r.take([]rtcp.Packet{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: 7, FractionLost: 128,
		LastSenderReport: ntpMiddle(sentSR), Delay: uint32(held * 65536 / time.Second)}}}}, true)
	loss, rtt := r.summary()
	if loss != 0.5 || rtt < 99*time.Millisecond || rtt > 101*time.Millisecond {
		t.Fatalf("loss %v rtt %v, want 0.5 and 100 ms", loss, rtt)
	}
	now = now.Add(sampleMaxAge + time.Second) // an old report says nothing
	if loss, rtt := r.summary(); loss != 0 || rtt != 0 {
		t.Fatalf("after %v: loss %v rtt %v, want none", sampleMaxAge, loss, rtt)
	}
	_ = r.Close()
	if w.of(nil) != nil || len(w.byID) != 0 {
		t.Fatal("a closed connection's reports are kept")
	}
}
