package sfu

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

var (
	capVP8  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	capOpus = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
)

func localTrack(t testing.TB, c webrtc.RTPCodecCapability, id, stream string, opts ...func(*webrtc.TrackLocalStaticRTP)) *webrtc.TrackLocalStaticRTP {
	t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(c, id, stream, opts...)
	must(t, err)
	return tr
}

// publishCamera publishes one VP8 camera and one Opus mic from c and pumps
// media until the test ends.
func publishCamera(t testing.TB, c *client, level byte) *vp8Source {
	t.Helper()
	video := localTrack(t, capVP8, "cam", c.id)
	audio := localTrack(t, capOpus, "mic", c.id)
	senders := c.publish([]webrtc.TrackLocal{video, audio}, []string{"camera", "mic"})
	src := &vp8Source{width: 640, height: 360, frameSize: 3000, keyEvery: 60}
	pump := newPump()
	t.Cleanup(pump.close)
	pump.video(t, video, senders[0], "", src)
	pump.audio(t, audio, senders[1], level)
	c.keyOnPLI(pump, map[uint32]*vp8Source{uint32(senders[0].GetParameters().Encodings[0].SSRC): src})
	return src
}

// waitPackets waits until rt holds at least n packets and returns them.
func waitPackets(t testing.TB, rt *recvTrack, n int) []rtp.Packet {
	t.Helper()
	var pkts []rtp.Packet
	eventually(t, 10*time.Second, fmt.Sprintf("%d packets of %s", n, rt.info.ID), func() bool {
		pkts = rt.packets()
		return len(pkts) >= n
	})
	return pkts
}

// checkContinuous fails unless sequence numbers go up by one and
// timestamps never go back.
func checkContinuous(t testing.TB, pkts []rtp.Packet) {
	t.Helper()
	for i := 1; i < len(pkts); i++ {
		a, b := pkts[i-1], pkts[i]
		if b.SequenceNumber != a.SequenceNumber+1 {
			t.Fatalf("packet %d: seq %d after %d", i, b.SequenceNumber, a.SequenceNumber)
		}
		if int32(b.Timestamp-a.Timestamp) < 0 {
			t.Fatalf("packet %d: timestamp %d after %d", i, b.Timestamp, a.Timestamp)
		}
		if b.SSRC != a.SSRC {
			t.Fatalf("packet %d: SSRC changed", i)
		}
	}
}

func TestFanOut(t *testing.T) {
	for _, tc := range []struct {
		name        string
		early, late int // subscribers joining before and after the publisher
	}{
		{"one subscriber", 1, 0},
		{"three subscribers, one late", 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, RouterConfig{})
			var subs []*client
			for i := range tc.early {
				subs = append(subs, e.join(fmt.Sprintf("early%d", i)))
			}
			pub := e.join("alice")
			publishCamera(t, pub, 30)
			for i := range tc.late {
				subs = append(subs, e.join(fmt.Sprintf("late%d", i)))
			}
			for _, s := range subs {
				v := s.track("alice/cam")
				if v.info.Peer != "alice" || v.info.Source != "camera" || v.info.Kind != "video" {
					t.Errorf("%s: video info %+v", s.id, v.info)
				}
				pkts := waitPackets(t, v, 60)
				if !vp8Info(pkts[0].Payload).keyframe {
					t.Errorf("%s: first packet is not a keyframe", s.id)
				}
				checkContinuous(t, pkts)
				if got := v.remote.Codec().MimeType; got != webrtc.MimeTypeVP8 {
					t.Errorf("%s: codec %s", s.id, got)
				}
				a := s.track("alice/mic")
				if a.info.Source != "mic" || a.info.Kind != "audio" {
					t.Errorf("%s: audio info %+v", s.id, a.info)
				}
				checkContinuous(t, waitPackets(t, a, 25))
			}
			// A publisher does not receive its own tracks.
			pub.mu.Lock()
			own := len(pub.recv)
			pub.mu.Unlock()
			if own != 0 {
				t.Errorf("publisher receives %d of its own tracks", own)
			}
		})
	}
}

func TestNACKAnsweredFromCache(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	sub := e.join("bob")
	pub := e.join("alice")
	publishCamera(t, pub, 127)
	v := sub.track("alice/cam")
	pkts := waitPackets(t, v, 30)
	want := pkts[10]
	before := len(v.packets())
	sub.sendRTCP(&rtcp.TransportLayerNack{MediaSSRC: want.SSRC,
		Nacks: []rtcp.NackPair{{PacketID: want.SequenceNumber}}})
	eventually(t, 5*time.Second, "the retransmission", func() bool {
		for _, p := range v.packets()[before:] {
			if p.SequenceNumber == want.SequenceNumber {
				if string(p.Payload) != string(want.Payload) || p.Timestamp != want.Timestamp {
					t.Fatalf("retransmission differs from the original")
				}
				return true
			}
		}
		return false
	})
	// The server answered from its cache: it never asked the publisher.
	for _, p := range pub.publisherRTCP() {
		if _, ok := p.(*rtcp.TransportLayerNack); ok {
			t.Fatalf("the server NACKed the publisher")
		}
	}
	// A NACK for a packet the server never sent is counted, not answered.
	sub.sendRTCP(&rtcp.TransportLayerNack{MediaSSRC: want.SSRC,
		Nacks: []rtcp.NackPair{{PacketID: want.SequenceNumber - 5000}}})
	var st PeerStats
	eventually(t, 5*time.Second, "both NACKs in the stats", func() bool {
		var err error
		st, err = e.router.Stats("bob")
		must(t, err)
		for _, ts := range st.Tracks {
			if ts.ID == "alice/cam" {
				return ts.NACKs == 2
			}
		}
		return false
	})
	if len(st.Tracks) != 2 || st.Tracks[0].ID != "alice/cam" || st.Tracks[1].ID != "alice/mic" {
		t.Fatalf("stats tracks %+v", st.Tracks)
	}
	cam := st.Tracks[0]
	if cam.Resent != 1 || cam.Packets < 30 || cam.Bytes == 0 || cam.Layer != 0 || st.EstimateBps <= 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := e.router.Stats("nobody"); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Stats of an unknown peer: %v", err)
	}
}

func TestActiveSpeaker(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	sub := e.join("bob")
	loud := e.join("alice")
	quiet := e.join("carol")
	publishCamera(t, loud, 20)  // −20 dBov: speaking
	publishCamera(t, quiet, 90) // −90 dBov: silence
	eventually(t, 10*time.Second, "alice as active speaker", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		for _, s := range sub.speakers {
			if len(s) == 1 && s[0] == "alice" {
				return true
			}
		}
		return false
	})
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, s := range sub.speakers {
		for _, id := range s {
			if id == "carol" {
				t.Fatalf("a silent peer was announced as speaker: %v", sub.speakers)
			}
		}
	}
}

// readSR returns the first sender report the server sends about rt.
func readSR(t *testing.T, rt *recvTrack) *rtcp.SenderReport {
	t.Helper()
	ssrc := uint32(rt.remote.SSRC())
	must(t, rt.rcv.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		pkts, _, err := rt.rcv.ReadRTCP()
		if err != nil {
			t.Fatalf("%s: no sender report: %v", rt.info.ID, err)
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == ssrc {
				return sr
			}
		}
	}
}

// TestSenderReports checks the reports the router makes itself for every
// forwarded track (subscribe connections run no report interceptor):
// counts of what was sent before, an RTP time that follows the sent
// timestamps, the wall clock as NTP time.
func TestSenderReports(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	sub := e.join("bob")
	pub := e.join("alice")
	publishCamera(t, pub, 30)
	for _, tc := range []struct {
		id    string
		clock uint32
	}{{"alice/cam", 90000}, {"alice/mic", 48000}} {
		rt := sub.track(tc.id)
		waitPackets(t, rt, 5)
		sr := readSR(t, rt)
		if sr.PacketCount == 0 {
			t.Fatalf("%s: sender report counts no packet: %+v", tc.id, sr)
		}
		// Everything the report counts was sent before it, on the same
		// path: it arrives.
		got := waitPackets(t, rt, int(sr.PacketCount))
		var octets uint32
		for _, p := range got[:sr.PacketCount] {
			octets += uint32(len(p.Payload))
		}
		if sr.OctetCount != octets {
			t.Errorf("%s: report counts %d payload bytes in %d packets, they carried %d", tc.id,
				sr.OctetCount, sr.PacketCount, octets)
		}
		// The report's RTP time is that of the newest frame sent before it,
		// advanced by the time since (well under 2 s here).
		last := got[sr.PacketCount-1].Timestamp
		if ahead := sr.RTPTime - last; int32(ahead) < 0 || ahead > 2*tc.clock {
			t.Errorf("%s: report RTP time %d, newest packet before it %d", tc.id, sr.RTPTime, last)
		}
		ntp := time.Unix(int64(sr.NTPTime>>32)-ntpEpochOffset, int64((sr.NTPTime&0xffffffff)*1e9>>32))
		if d := time.Since(ntp); d < 0 || d > 10*time.Second {
			t.Errorf("%s: report NTP time %v, %v from now", tc.id, ntp, d)
		}
	}
}
