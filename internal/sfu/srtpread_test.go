package sfu

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// testTap is a tap attached as if to an IPv4 socket, with rp holding
// from and one sink for ssrc whose queue holds depth packets.
func testTap(from netip.AddrPort, ssrc uint32, depth int) (*ReadTap, *recvPath, *tapSink) {
	tap := NewReadTap()
	tap.v4 = true
	tap.attached.Store(true)
	rp := newRecvPath(tap, &keyCatcher{}, &counters{})
	rp.setPair(udpPair(from.Addr().String(), from.Port(), webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost))
	s := &tapSink{path: rp, ssrc: ssrc, q: make(chan *tapPacket, depth)}
	rp.sinks.Store(&map[uint32]*tapSink{ssrc: s})
	return tap, rp, s
}

// rtpBytes is an RTP header (and n bytes of payload) with the given
// second byte (marker and payload type) and SSRC.
func rtpBytes(b1 byte, ssrc uint32, n int) []byte {
	b := make([]byte, 12+n)
	b[0], b[1] = 0x80, b1
	binary.BigEndian.PutUint32(b[8:], ssrc)
	return b
}

// TestReadTapTakes: the tap takes SRTP of a registered SSRC from its
// connection's address, and leaves pion everything else: STUN, DTLS,
// RTCP, other SSRCs and addresses, and what the sink cannot queue.
func TestReadTapTakes(t *testing.T) {
	from := netip.MustParseAddrPort("127.0.0.1:6000")
	tap, rp, s := testTap(from, 42, 1)
	for _, tc := range []struct {
		name string
		b    []byte
		from netip.AddrPort
		take bool
	}{
		{"STUN", append([]byte{0, 1}, make([]byte, 18)...), from, false},
		{"DTLS", append([]byte{22, 0xfe, 0xfd}, make([]byte, 20)...), from, false},
		{"RTCP sender report", rtpBytes(200, 42, 20), from, false},
		{"RTCP feedback", rtpBytes(206, 42, 20), from, false},
		{"too short", rtpBytes(96, 42, 0)[:11], from, false},
		{"too long", rtpBytes(96, 42, maxPacket), from, false},
		{"unknown SSRC", rtpBytes(96, 43, 20), from, false},
		{"other address", rtpBytes(96, 42, 20), netip.MustParseAddrPort("127.0.0.1:6001"), false},
		{"registered SRTP", rtpBytes(96, 42, 20), from, true},
		{"registered SRTP, marker set", rtpBytes(0x80|96, 42, 20), from, false}, // the queue (1) is full: pion's
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tap.take(tc.b, tc.from); got != tc.take {
				t.Errorf("take = %v, want %v", got, tc.take)
			}
		})
	}
	if n := len(s.q); n != 1 {
		t.Fatalf("%d packets queued, want 1", n)
	}
	if pk := <-s.q; !bytes.Equal(pk.b[:pk.n], rtpBytes(96, 42, 20)) || pk.at == 0 {
		t.Error("the queued packet is not the datagram, or has no arrival time")
	}
	if o, k := rp.c.readOverflow.Load(), rp.c.readTaken.Load(); o != 1 || k != 1 {
		t.Errorf("overflow %d, taken %d; want 1, 1", o, k)
	}
	rp.close()
	if tap.take(rtpBytes(96, 42, 20), from) {
		t.Error("a closed connection's packet was taken")
	}
}

// TestRecvPathFollowsPair: a connection's address follows its selected
// pair; an address another connection holds is refused; a pair the
// socket does not carry (TCP) and close leave nothing registered.
func TestRecvPathFollowsPair(t *testing.T) {
	tap := NewReadTap()
	tap.v4 = true
	a := newRecvPath(tap, &keyCatcher{}, &counters{})
	b := newRecvPath(tap, &keyCatcher{}, &counters{})
	p6000 := netip.MustParseAddrPort("127.0.0.1:6000")
	p6001 := netip.MustParseAddrPort("127.0.0.1:6001")
	udp := func(port uint16) *webrtc.ICECandidatePair {
		return udpPair("127.0.0.1", port, webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost)
	}
	for _, step := range []struct {
		name string
		do   func()
		want map[netip.AddrPort]*recvPath
	}{
		{"a selects 6000", func() { a.setPair(udp(6000)) }, map[netip.AddrPort]*recvPath{p6000: a}},
		{"b cannot take a's address", func() { b.setPair(udp(6000)) }, map[netip.AddrPort]*recvPath{p6000: a}},
		{"a moves to 6001", func() { a.setPair(udp(6001)) }, map[netip.AddrPort]*recvPath{p6001: a}},
		{"b now gets 6000", func() { b.setPair(udp(6000)) }, map[netip.AddrPort]*recvPath{p6000: b, p6001: a}},
		{"a moves to TCP", func() { a.setPair(udpPair("127.0.0.1", 6002, webrtc.ICEProtocolTCP, webrtc.ICECandidateTypeHost)) },
			map[netip.AddrPort]*recvPath{p6000: b}},
		{"a on a local candidate not host", func() { a.setPair(udpPair("127.0.0.1", 6003, webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeRelay)) },
			map[netip.AddrPort]*recvPath{p6000: b}},
		{"a back on 6001", func() { a.setPair(udp(6001)) }, map[netip.AddrPort]*recvPath{p6000: b, p6001: a}},
		{"a closes", a.close, map[netip.AddrPort]*recvPath{p6000: b}},
		{"a closed takes no pair", func() { a.setPair(udp(6001)) }, map[netip.AddrPort]*recvPath{p6000: b}},
		{"b closes", b.close, map[netip.AddrPort]*recvPath{}},
	} {
		step.do()
		got := *tap.addrs.Load()
		if len(got) != len(step.want) {
			t.Fatalf("%s: %d addresses registered, want %d", step.name, len(got), len(step.want))
		}
		for k, v := range step.want {
			if got[k] != v {
				t.Fatalf("%s: %v maps to the wrong connection", step.name, k)
			}
		}
	}
}

// TestTapSinkDecrypts: a sink decrypts what a real DTLS peer's keys
// encrypt (GCM and CM profiles, header extensions in clear or encrypted
// by cryptex); a forged packet or a replay is dropped
// and counted, never handed on; a sink that keeps failing gives its SSRC
// back to pion.
func TestTapSinkDecrypts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		suite   dtls.CipherSuiteID
		dprof   dtls.SRTPProtectionProfile
		profile srtp.ProtectionProfile
		cryptex bool
	}{
		{"AEAD-128", dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_128_GCM, srtp.ProtectionProfileAeadAes128Gcm, false},
		{"AES-CM", dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AES128_CM_HMAC_SHA1_80, srtp.ProtectionProfileAes128CmHmacSha1_80, false},
		{"AEAD-128, cryptex", dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_128_GCM, srtp.ProtectionProfileAeadAes128Gcm, true},
		{"AES-CM, cryptex", dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AES128_CM_HMAC_SHA1_80, srtp.ProtectionProfileAes128CmHmacSha1_80, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc, _, cs := dtlsHandshake(t, tc.suite, tc.dprof, dtls.RequireExtendedMasterSecret, false)
			keys, err := kc.srtpKeys()
			must(t, err)
			peer := srtp.Config{Profile: tc.profile}
			must(t, peer.ExtractSessionKeysFromDTLS(&cs, true))
			var opts []srtp.ContextOption
			if tc.cryptex {
				opts = append(opts, srtp.Cryptex(srtp.CryptexModeEnabled))
			}
			enc, err := srtp.CreateContext(peer.Keys.LocalMasterKey, peer.Keys.LocalMasterSalt, tc.profile, opts...)
			must(t, err)
			dec, err := newRecvContext(keys)
			must(t, err)

			_, rp, s := testTap(netip.MustParseAddrPort("127.0.0.1:6000"), 42, tapQueue)
			s.ctx = dec
			var mu sync.Mutex
			var got [][]byte
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				s.run(stop, func(p *rtp.Packet, raw []byte, _ int64) {
					mu.Lock()
					got = append(got, append([]byte(nil), raw...))
					mu.Unlock()
				})
			})
			defer func() { close(stop); wg.Wait() }()
			push := func(b []byte) {
				pk := rp.tap.pool.Get().(*tapPacket)
				pk.n = copy(pk.b[:], b)
				s.q <- pk
			}
			plain := func(seq uint16) []byte {
				p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, SSRC: 42},
					Payload: []byte("upstream")}
				must(t, p.SetExtension(1, []byte{0x7f})) // an audio level
				raw, err := p.Marshal()
				must(t, err)
				return raw
			}
			ct, err := enc.EncryptRTP(nil, plain(1), nil)
			must(t, err)
			forged := append([]byte(nil), ct...)
			forged[len(forged)-1] ^= 1
			push(forged)
			push(ct)
			push(ct) // a replay
			// A retransmission of packet 2 after 200 newer ones is still
			// new to the window (pion's 64 would refuse it).
			late, err := enc.EncryptRTP(nil, plain(2), nil)
			must(t, err)
			for seq := uint16(3); seq < 203; seq++ {
				ct, err := enc.EncryptRTP(nil, plain(seq), nil)
				must(t, err)
				push(ct)
			}
			push(late)
			eventually(t, 5*time.Second, "one rejected, one replay, 202 handed on", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return rp.c.readRejected.Load() == 1 && rp.c.readReplayed.Load() == 1 && len(got) == 202
			})
			mu.Lock()
			if !bytes.Equal(got[0], plain(1)) || !bytes.Equal(got[201], plain(2)) {
				t.Error("the sink handed on something else than the publisher sent")
			}
			mu.Unlock()

			// Forged packets of new sequence numbers (an old one would be
			// dropped as a replay before its tag is checked).
			for seq := uint16(300); seq < 300+maxTapFailures; seq++ {
				ct, err := enc.EncryptRTP(nil, plain(seq), nil)
				must(t, err)
				ct[len(ct)-1] ^= 1
				push(ct)
			}
			eventually(t, 5*time.Second, "the failing sink unregistered", func() bool {
				return (*rp.sinks.Load())[42] == nil
			})
		})
	}
}

// TestReadTapCarriesMedia: with the tap, a publisher's layers are read by
// the server itself (counted), subscribers get continuous media; when the
// publisher is removed, its registration is gone (the subscriber's, for
// its SRTCP, stays).
func TestReadTapCarriesMedia(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	bob := e.join("bob")
	alice := e.join("alice")
	publishCamera(t, alice, 30)
	checkContinuous(t, waitPackets(t, bob.track("alice/cam"), 60))
	checkContinuous(t, waitPackets(t, bob.track("alice/mic"), 25))
	c := e.engine.Counters()
	if c.OwnReaders != 2 || c.PionReaders != 0 {
		t.Errorf("readers: own %d, pion %d; want 2 own", c.OwnReaders, c.PionReaders)
	}
	if c.ReadTaken < 50 || c.ReadRejected != 0 {
		t.Errorf("the tap took %d packets and rejected %d; want most of 85, none rejected", c.ReadTaken, c.ReadRejected)
	}
	tap := e.engine.tap
	if n := len(*tap.addrs.Load()); n != 2 {
		t.Fatalf("%d addresses registered, want alice's publish and bob's subscribe connections", n)
	}
	e.router.Remove("alice")
	if n := len(*tap.addrs.Load()); n != 1 {
		t.Errorf("%d addresses registered after alice left, want bob's subscribe connection", n)
	}
}

// TestReadTapFallback: a publisher whose keys the server cannot know (it
// asks to be the DTLS server) or whose pair the socket does not carry
// (ICE-TCP) stays on pion's read path, and its media still flows.
func TestReadTapFallback(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tcp   bool
		tweak func(*webrtc.SettingEngine)
		edit  func(string) string
	}{
		{"publisher as DTLS server", false, nil, func(s string) string {
			return strings.ReplaceAll(s, "a=setup:actpass", "a=setup:passive")
		}},
		{"publisher on ICE-TCP", true, func(se *webrtc.SettingEngine) {
			se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ecfg EngineConfig
			if tc.tcp {
				ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
				must(t, err)
				tcpMux := webrtc.NewICETCPMux(nil, ln, 64)
				t.Cleanup(func() { _ = tcpMux.Close(); _ = ln.Close() })
				ecfg.TCPMux = tcpMux
			}
			e := newEnvWith(t, ecfg, RouterConfig{})
			bob := e.join("bob")
			alice := e.addClient("alice", clientAPIWith(t, tc.tweak))
			alice.editOffer = tc.edit
			alice.wg.Go(alice.run)
			publishCamera(t, alice, 30)
			checkContinuous(t, waitPackets(t, bob.track("alice/cam"), 60))
			checkContinuous(t, waitPackets(t, bob.track("alice/mic"), 25))
			if c := e.engine.Counters(); c.OwnReaders != 0 || c.PionReaders != 2 || c.ReadTaken != 0 {
				t.Errorf("readers: own %d, pion %d, taken %d; want 2 pion", c.OwnReaders, c.PionReaders, c.ReadTaken)
			}
		})
	}
}

// TestReadTapHandsBack: packets move between the two readers of a layer
// without a loss: pion's first packets, then the tap's (the stream's
// start), then pion's again once the tap lets the SSRCs go (as during a
// pair change, or after repeated authentication failures).
func TestReadTapHandsBack(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	bob := e.join("bob")
	alice := e.join("alice")
	publishCamera(t, alice, 30)
	cam := bob.track("alice/cam")
	waitPackets(t, cam, 40)
	if e.engine.Counters().ReadTaken == 0 {
		t.Fatal("the tap took nothing")
	}
	var sinks []*tapSink
	for _, rp := range *e.engine.tap.addrs.Load() {
		for _, s := range *rp.sinks.Load() {
			sinks = append(sinks, s)
		}
	}
	if len(sinks) != 2 {
		t.Fatalf("%d sinks, want the camera's and the mic's", len(sinks))
	}
	for _, s := range sinks {
		s.remove()
	}
	taken := e.engine.Counters().ReadTaken
	n := len(cam.packets())
	checkContinuous(t, waitPackets(t, cam, n+60))
	checkContinuous(t, waitPackets(t, bob.track("alice/mic"), 50))
	if now := e.engine.Counters().ReadTaken; now > taken+1 { // the reader may have looked the sink up just before
		t.Errorf("the tap took %d more packets after letting its SSRCs go", now-taken)
	}
}
