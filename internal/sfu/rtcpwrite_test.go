package sfu

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/rehabrtc/rehabrtc/internal/rawudp"
)

// twccPackets is transport-cc feedback as the router's recorder builds
// it, over arrivals with losses, reordering and both delta sizes.
func twccPackets(t *testing.T) []rtcp.Packet {
	t.Helper()
	rec := twcc.NewRecorder(0x1234)
	at := int64(1_000_000)
	for i := range 300 {
		seq := uint16(65000 + i) // wraps
		if i%17 == 5 || i%41 == 0 {
			continue // lost
		}
		at += 1500
		if i%50 == 0 {
			at += 90_000 // a large delta
		}
		rec.Record(0xabcd, seq, at)
	}
	rec.Record(0xabcd, 65010, at+100) // late
	pkts := rec.BuildFeedbackPacket()
	if len(pkts) == 0 {
		t.Fatal("the recorder built no feedback")
	}
	return pkts
}

// TestSRTCPTwoWritersReplay is why one connection's router RTCP never
// mixes pion's writer and ours: two SRTCP contexts for one sender SSRC
// each count their own index, and the receiver drops the second's packets
// as replays once the first has gone past its window.
func TestSRTCPTwoWritersReplay(t *testing.T) {
	key, salt := make([]byte, 16), make([]byte, 12)
	profile := srtp.ProtectionProfileAeadAes128Gcm
	first, err := srtp.CreateContext(key, salt, profile)
	must(t, err)
	second, err := srtp.CreateContext(key, salt, profile)
	must(t, err)
	// As pion's SRTCP sessions (and browsers) receive: with a replay window.
	recv, err := srtp.CreateContext(key, salt, profile, srtp.SRTCPReplayProtection(64))
	must(t, err)
	plain, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 42}})
	must(t, err)
	for i := range 200 {
		enc, err := first.EncryptRTCP(nil, plain, nil)
		must(t, err)
		if _, err := recv.DecryptRTCP(nil, enc, nil); err != nil {
			t.Fatalf("packet %d of the first writer: %v", i, err)
		}
	}
	enc, err := second.EncryptRTCP(nil, plain, nil)
	must(t, err)
	if _, err := recv.DecryptRTCP(nil, enc, nil); err == nil || !strings.Contains(err.Error(), "duplicated") {
		t.Fatalf("the second writer's first packet: %v, want a replay", err)
	}
}

// ownRTCPWriter is an rtcpWriter on the direct path to a local socket,
// decided for our path, and the context the peer decrypts with.
func ownRTCPWriter(t *testing.T, pion func([]rtcp.Packet) error) (*rtcpWriter, *net.UDPConn, *srtp.Context) {
	t.Helper()
	key, salt := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 12)
	profile := srtp.ProtectionProfileAeadAes128Gcm
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(t, err)
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(t, err)
	t.Cleanup(func() { _ = conn.Close(); _ = peer.Close() })
	dp := newDirectPath(conn, &keyCatcher{})
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	dp.remote.Store(&to)
	ctx, err := srtp.CreateContext(key, salt, profile)
	must(t, err)
	out, err := rawudp.NewSender(conn, false)
	must(t, err)
	w := newRTCPWriter(pion, dp, &counters{}, nil)
	w.how, w.ctx, w.out = writeOwn, ctx, out
	dec, err := srtp.CreateContext(key, salt, profile, srtp.SRTCPReplayProtection(64))
	must(t, err)
	return w, peer, dec
}

// TestRTCPWriterOwnPath: once decided for our path, every write is
// encrypted with one index sequence per sender SSRC and decrypts at the
// peer in order, pion's writer is never called, and a lost pair fails
// writes rather than handing them to pion.
func TestRTCPWriterOwnPath(t *testing.T) {
	var pionCalls atomic.Int32
	w, peer, dec := ownRTCPWriter(t, func([]rtcp.Packet) error { pionCalls.Add(1); return nil })
	batches := [][]rtcp.Packet{
		{&rtcp.PictureLossIndication{MediaSSRC: 9}},
		twccPackets(t),
		{&rtcp.SenderReport{SSRC: 77, PacketCount: 3}, &rtcp.SenderReport{SSRC: 78}},
		{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 3e5, SSRCs: []uint32{9}}},
	}
	buf := make([]byte, 2000)
	must(t, peer.SetReadDeadline(time.Now().Add(5*time.Second)))
	for round := range 3 {
		for i, pkts := range batches {
			must(t, w.write(pkts))
			n, err := peer.Read(buf)
			must(t, err)
			plain, err := dec.DecryptRTCP(nil, buf[:n], nil)
			if err != nil {
				t.Fatalf("round %d, batch %d: %v", round, i, err)
			}
			want, _ := rtcp.Marshal(pkts)
			if !bytes.Equal(plain, want) {
				t.Fatalf("round %d, batch %d: decrypted %x, want %x", round, i, plain, want)
			}
		}
	}
	for ssrc, want := range map[uint32]uint32{0: 6, 0x1234: 3, 77: 3} {
		if got, _ := w.ctx.Index(ssrc); got != want {
			t.Errorf("SRTCP index of sender %d: %d, want %d", ssrc, got, want)
		}
	}
	w.path.setPair(udpPair("10.0.0.1", 9, webrtc.ICEProtocolTCP, webrtc.ICECandidateTypeHost))
	if err := w.write(batches[0]); !errors.Is(err, errPathLost) {
		t.Errorf("write after the pair left the socket: %v, want errPathLost", err)
	}
	if n := pionCalls.Load(); n != 0 {
		t.Errorf("pion's writer called %d times", n)
	}
}

// TestRTCPWriterDecidesOnce: a connection without a direct path goes to
// pion for good; one whose DTLS is not up fails its writes until it is.
func TestRTCPWriterDecidesOnce(t *testing.T) {
	var pionCalls atomic.Int32
	c := &counters{}
	w := newRTCPWriter(func([]rtcp.Packet) error { pionCalls.Add(1); return nil }, nil, c, nil)
	for range 3 {
		must(t, w.write([]rtcp.Packet{&rtcp.PictureLossIndication{}}))
	}
	if pionCalls.Load() != 3 || c.pionRTCP.Load() != 1 || c.ownRTCP.Load() != 0 {
		t.Errorf("no path: pion called %d times, counted pion %d own %d; want 3, 1, 0",
			pionCalls.Load(), c.pionRTCP.Load(), c.ownRTCP.Load())
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(t, err)
	defer conn.Close()
	w = newRTCPWriter(func([]rtcp.Packet) error { pionCalls.Add(1); return nil }, newDirectPath(conn, &keyCatcher{}), c, nil)
	if err := w.write([]rtcp.Packet{&rtcp.PictureLossIndication{}}); !errors.Is(err, errRTCPNotReady) {
		t.Errorf("before DTLS: %v, want errRTCPNotReady", err)
	}
	if w.how != writeLater || pionCalls.Load() != 3 {
		t.Errorf("before DTLS: decided %d, pion called %d times", w.how, pionCalls.Load())
	}
}

// TestRouterRTCPPaths: with real pion peers, which decrypt it, the
// router's RTCP reaches the publisher (transport-cc feedback, receiver
// reports, a keyframe request) and the subscriber (sender reports), over
// our path where the connection's keys and pair allow it and over pion's
// where they do not.
func TestRouterRTCPPaths(t *testing.T) {
	for _, tc := range []struct {
		name          string
		tap           bool
		noSocket      bool // EngineConfig.UDPConn unset: no direct path anywhere
		pubOffer      func(string) string
		subTweak      func(*webrtc.SettingEngine)
		wantOwn, pion uint64
	}{
		{"both own", true, false, nil, nil, 2, 0},
		{"read tap off: publisher on pion's", false, false, nil, nil, 1, 1},
		{"no UDP socket: both on pion's", true, true, nil, nil, 0, 2},
		{"publisher as DTLS server", true, false, func(s string) string {
			return strings.ReplaceAll(s, "a=setup:actpass", "a=setup:passive")
		}, nil, 1, 1},
		{"subscriber as DTLS server", true, false, nil, func(se *webrtc.SettingEngine) {
			must(t, se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer))
		}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvTap(t, EngineConfig{}, RouterConfig{}, tc.tap)
			if tc.noSocket {
				e.engine.udpConn = nil // before any connection: as an engine built without one
			}
			bob := e.addClient("bob", clientAPIWith(t, tc.subTweak))
			bob.wg.Go(bob.run)
			alice := e.addClient("alice", clientAPIWith(t, nil, webrtc.ConfigureTWCCHeaderExtensionSender))
			alice.editOffer = tc.pubOffer
			alice.wg.Go(alice.run)
			publishCamera(t, alice, 30)
			rt := bob.track("alice/cam")
			waitPackets(t, rt, 30)
			if sr := readSR(t, rt); sr.PacketCount == 0 {
				t.Errorf("sender report counts no packet")
			}
			eventually(t, 10*time.Second, "feedback, reports and a PLI at the publisher", func() bool {
				var tcc, rr, pli bool
				for _, p := range alice.publisherRTCP() {
					switch p.(type) {
					case *rtcp.TransportLayerCC:
						tcc = true
					case *rtcp.ReceiverReport:
						rr = true
					case *rtcp.PictureLossIndication:
						pli = true
					}
				}
				return tcc && rr && pli
			})
			if c := e.engine.Counters(); c.OwnRTCP != tc.wantOwn || c.PionRTCP != tc.pion {
				t.Errorf("RTCP writers: own %d, pion %d; want %d, %d", c.OwnRTCP, c.PionRTCP, tc.wantOwn, tc.pion)
			}
		})
	}
}

// BenchmarkRouterRTCPWrite is one transport-cc feedback packet written
// to a real publish connection, by the router's writer on our path and
// by pion's WriteRTCP (with another sender SSRC, so that the two index
// sequences stay apart), both decrypted by the pion publisher.
func BenchmarkRouterRTCPWrite(b *testing.B) {
	e := newEnv(b, RouterConfig{})
	alice := e.addClient("alice", clientAPIWith(b, nil, webrtc.ConfigureTWCCHeaderExtensionSender))
	alice.wg.Go(alice.run)
	publishCamera(b, alice, 30)
	e.router.mu.Lock()
	p := e.router.peers["alice"]
	e.router.mu.Unlock()
	var w *rtcpWriter
	var pc *webrtc.PeerConnection
	eventually(b, 10*time.Second, "the publish connection's RTCP on our path", func() bool {
		p.mu.Lock()
		w, pc = p.pubRTCPOut, p.pub
		p.mu.Unlock()
		if w == nil {
			return false
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.how == writeOwn
	})
	rec := twcc.NewRecorder(0x5151)
	for i := range 40 {
		rec.Record(0xabcd, uint16(i), int64(i)*1500)
	}
	own := rec.BuildFeedbackPacket()
	viaPion := []rtcp.Packet{&rtcp.TransportLayerCC{}}
	*viaPion[0].(*rtcp.TransportLayerCC) = *own[0].(*rtcp.TransportLayerCC)
	viaPion[0].(*rtcp.TransportLayerCC).SenderSSRC = 0x6262
	for _, bc := range []struct {
		name  string
		write func() error
	}{
		{"own", func() error { return w.write(own) }},
		{"pion", func() error { return pc.WriteRTCP(viaPion) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.write(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
