package sfu

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// hasTrack reports whether c's last subscribe offer carries a track of peer.
func (c *client) hasTrackOf(peer string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ti := range c.tracks {
		if ti.Peer == peer {
			return true
		}
	}
	return false
}

func TestRemove(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	alice := e.join("alice")
	bob := e.join("bob")
	carol := e.join("carol")
	publishCamera(t, alice, 30)
	publishCamera(t, carol, 30)
	for _, c := range []*client{bob, carol} {
		waitPackets(t, c.track("alice/cam"), 10)
	}
	waitPackets(t, bob.track("carol/cam"), 10)

	// A removed publisher's tracks vanish for everyone within a second.
	start := time.Now()
	e.router.Remove("alice")
	eventually(t, time.Second, "alice's tracks gone", func() bool {
		return !bob.hasTrackOf("alice") && !carol.hasTrackOf("alice")
	})
	t.Logf("tracks withdrawn in %v", time.Since(start))
	v := bob.track("alice/cam")
	eventually(t, time.Second, "alice's video to stop at bob's", func() bool {
		n := len(v.packets())
		time.Sleep(tick)
		return len(v.packets()) == n
	})
	if err := e.router.Handle("alice", Message{Type: TypeCandidate, PC: PCPublish}); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("removed peer: Handle = %v, want ErrUnknownPeer", err)
	}
	e.router.mu.Lock()
	for id := range e.router.tracks {
		if strings.HasPrefix(id, "alice/") {
			t.Errorf("track %s still in the router", id)
		}
	}
	e.router.mu.Unlock()

	// A removed subscriber leaves the fan-out lists of the others' tracks.
	e.router.Remove("bob")
	e.router.mu.Lock()
	up := e.router.tracks["carol/cam"]
	e.router.mu.Unlock()
	for _, d := range *up.subs.Load() {
		if d.sub.id == "bob" {
			t.Errorf("bob still subscribed to carol's camera")
		}
	}
	// Removing twice, or someone unknown, is harmless.
	e.router.Remove("bob")
	e.router.Remove("nobody")
}

func TestCloseStopsEverything(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	alice := e.join("alice")
	bob := e.join("bob")
	publishCamera(t, alice, 30)
	publishSimulcast(t, bob, "screen", simulcastSources())
	waitPackets(t, bob.track("alice/cam"), 10)
	waitPackets(t, alice.track("bob/cam"), 10)
	e.router.Close()
	if err := e.router.Add("carol"); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close = %v", err)
	}
	if err := e.router.Handle("alice", Message{Type: TypeOffer}); !errors.Is(err, ErrClosed) {
		t.Errorf("Handle after Close = %v", err)
	}
	e.router.Close() // twice is fine
	// Once the clients are gone too, no goroutine of the router remains.
	for _, c := range []*client{alice, bob} {
		c.close()
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

// offerSDP makes a publish offer with n tracks from a throwaway pion peer.
func offerSDP(t *testing.T, n int) string {
	t.Helper()
	pc, err := clientAPI(t).NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	defer pc.Close()
	for i := range n {
		_, err := pc.AddTrack(localTrack(t, capVP8, "v"+string(rune('a'+i)), "x"))
		must(t, err)
	}
	o, err := pc.CreateOffer(nil)
	must(t, err)
	return o.SDP
}

func TestHandleRefusesBadInput(t *testing.T) {
	e := newEnv(t, RouterConfig{MaxTracksPerPeer: 2})
	e.join("alice")
	three, two := offerSDP(t, 3), offerSDP(t, 2)
	neg := -1
	for _, tc := range []struct {
		name string
		peer string
		m    Message
		want error
	}{
		{"unknown peer", "mallory", Message{Type: TypeOffer, PC: PCPublish, SDP: two}, ErrUnknownPeer},
		{"unknown type", "alice", Message{Type: "sfu-nope"}, ErrBadMessage},
		{"offer for the subscribe side", "alice", Message{Type: TypeOffer, PC: PCSubscribe, SDP: two}, ErrBadMessage},
		{"empty offer", "alice", Message{Type: TypeOffer, PC: PCPublish}, ErrBadMessage},
		{"garbage offer", "alice", Message{Type: TypeOffer, PC: PCPublish, SDP: "v=0\r\nnonsense"}, ErrBadMessage},
		{"offer without ICE credentials", "alice", Message{Type: TypeOffer, PC: PCPublish,
			SDP: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n"},
			ErrNegotiation},
		{"too many tracks", "alice", Message{Type: TypeOffer, PC: PCPublish, SDP: three}, ErrTooManyTracks},
		{"answer without an offer", "alice", Message{Type: TypeAnswer, PC: PCSubscribe, SDP: two}, ErrBadMessage},
		{"candidate without candidate", "alice", Message{Type: TypeCandidate, PC: PCPublish}, ErrBadMessage},
		{"candidate before any connection", "alice", Message{Type: TypeCandidate, PC: PCSubscribe,
			Candidate: &webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"}}, ErrBadMessage},
		{"layer of an unknown track", "alice", Message{Type: TypeLayer, Track: "bob/cam", Height: new(int)}, ErrUnknownTrack},
		{"layer without height", "alice", Message{Type: TypeLayer, Track: "bob/cam"}, ErrBadMessage},
		{"negative height", "alice", Message{Type: TypeLayer, Track: "bob/cam", Height: &neg}, ErrBadMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.router.Handle(tc.peer, tc.m)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Handle = %v, want %v", err, tc.want)
			}
			var pub *Error
			if !errors.As(err, &pub) || pub.Text == "" || strings.Contains(pub.Text, "pion") {
				t.Fatalf("error %v has no clean public face", err)
			}
		})
	}
	// Within the limit, the same peer can still publish.
	if err := e.router.Handle("alice", Message{Type: TypeOffer, PC: PCPublish, SDP: two}); err != nil {
		t.Fatalf("a valid offer after refusals: %v", err)
	}
}

// FuzzHandleOffer: no publish offer, however malformed, panics the router.
func FuzzHandleOffer(f *testing.F) {
	f.Add("v=0\r\n")
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n")
	f.Add("m=audio 0 RTP/AVP 0\r\n")
	f.Add("")
	e := newEnv(f, RouterConfig{})
	e.join("alice")
	f.Fuzz(func(t *testing.T, sdp string) {
		_ = e.router.Handle("alice", Message{Type: TypeOffer, PC: PCPublish, SDP: sdp, Restart: true})
	})
}

func TestPublisherRestartKeepsSubscribersContinuous(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	bob := e.join("bob")
	alice := e.join("alice")
	video := localTrack(t, capVP8, "cam", "alice")
	senders := alice.publish([]webrtc.TrackLocal{video}, []string{"camera"})
	src := &vp8Source{layer: 5, width: 640, height: 360, frameSize: 2000, keyEvery: 30}
	pump := newPump()
	pump.video(t, video, senders[0], "", src)
	alice.keyOnPLI(pump, map[uint32]*vp8Source{uint32(senders[0].GetParameters().Encodings[0].SSRC): src})
	v := bob.track("alice/cam")
	waitPackets(t, v, 30)
	bob.mu.Lock()
	offers := bob.offers
	bob.mu.Unlock()

	// The page replaces its publish connection by a new one with the same
	// track (new SSRC, sequence numbers and timestamps): it offers the new
	// one with restart, then closes the old one, as the protocol says.
	pump.close()
	pc, err := alice.api.NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	alice.mu.Lock()
	old := alice.pub
	alice.pub = pc
	alice.mu.Unlock()
	video2 := localTrack(t, capVP8, "cam", "alice")
	s2, err := pc.AddTrack(video2)
	must(t, err)
	alice.wg.Go(func() { alice.readPubRTCP(s2, "") })
	alice.offerPublish(pc, []string{"camera"}, true)
	_ = old.Close()
	src2 := &vp8Source{layer: 6, width: 640, height: 360, frameSize: 2000, keyEvery: 30, seq: 40000, ts: 123456789, pid: 20000}
	pump2 := newPump()
	t.Cleanup(pump2.close)
	pump2.video(t, video2, s2, "", src2)
	alice.keyOnPLI(pump2, map[uint32]*vp8Source{uint32(s2.GetParameters().Encodings[0].SSRC): src2})

	pkts := waitLayer(t, v, 6)
	checkContinuous(t, pkts)
	checkPictureIDs(t, pkts)
	if seen := checkSwitches(t, pkts); len(seen) != 2 || seen[0] != 5 || seen[1] != 6 {
		t.Fatalf("sources seen %v, want [5 6]", seen)
	}
	bob.mu.Lock()
	defer bob.mu.Unlock()
	if bob.offers != offers {
		t.Fatalf("the subscriber was renegotiated (%d → %d offers)", offers, bob.offers)
	}
}

// TestSubscriberConnectionReplaced: when a subscriber's connection ends
// (here: the page closes it), the server offers a new one, marked
// restart, with the same tracks, and media flows again.
func TestSubscriberConnectionReplaced(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	bob := e.join("bob")
	alice := e.join("alice")
	publishCamera(t, alice, 30)
	waitPackets(t, bob.track("alice/cam"), 10)
	bob.mu.Lock()
	old := bob.sub
	bob.mu.Unlock()
	_ = old.Close()
	eventually(t, 10*time.Second, "a restart offer", func() bool {
		bob.mu.Lock()
		defer bob.mu.Unlock()
		return bob.restarts == 1
	})
	v := bob.track("alice/cam")
	pkts := waitPackets(t, v, 10)
	if !vp8Info(pkts[0].Payload).keyframe {
		t.Fatal("the new connection does not start at a keyframe")
	}
	checkContinuous(t, pkts)
}
