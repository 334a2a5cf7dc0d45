package sfu

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// testCtl gives rp an SRTCP sink whose queue holds depth packets.
func testCtl(rp *recvPath, depth int) *ctlSink {
	s := &ctlSink{path: rp, q: make(chan *tapPacket, depth), stop: make(chan struct{})}
	rp.ctl.Store(s)
	return s
}

// TestReadTapTakesRTCP: the tap takes SRTCP from a connection's address
// only once the connection's SRTCP is registered, and leaves pion what
// its queue cannot hold; RTCP does not count as a layer's packets.
func TestReadTapTakesRTCP(t *testing.T) {
	from := netip.MustParseAddrPort("127.0.0.1:6000")
	tap, rp, _ := testTap(from, 42, 1)
	if tap.take(rtpBytes(201, 42, 20), from) {
		t.Fatal("RTCP taken before the connection's SRTCP was registered")
	}
	s := testCtl(rp, 1)
	for _, tc := range []struct {
		name string
		b    []byte
		from netip.AddrPort
		take bool
	}{
		{"too short", rtpBytes(201, 42, 0)[:7], from, false},
		{"other address", rtpBytes(201, 42, 20), netip.MustParseAddrPort("127.0.0.1:6001"), false},
		{"receiver report", rtpBytes(201, 42, 20), from, true},
		{"feedback, queue full", rtpBytes(206, 42, 20), from, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tap.take(tc.b, tc.from); got != tc.take {
				t.Errorf("take = %v, want %v", got, tc.take)
			}
		})
	}
	if pk := <-s.q; !bytes.Equal(pk.b[:pk.n], rtpBytes(201, 42, 20)) {
		t.Error("the queued packet is not the datagram")
	}
	if c := rp.c; c.rtcpTaken.Load() != 1 || c.readTaken.Load() != 0 || c.readOverflow.Load() != 1 {
		t.Errorf("rtcp taken %d, rtp taken %d, overflow %d; want 1, 0, 1",
			c.rtcpTaken.Load(), c.readTaken.Load(), c.readOverflow.Load())
	}
	rp.close()
	select {
	case <-s.stop:
	default:
		t.Error("close left the SRTCP sink running")
	}
	if tap.take(rtpBytes(201, 42, 20), from) {
		t.Error("a closed connection's RTCP was taken")
	}
}

// TestCtlSinkDecrypts: a connection's SRTCP sink decrypts what a real
// DTLS peer's keys encrypt and hands on the parsed compound; a forged
// packet and a replay are dropped and counted, never handed on; a sink
// that keeps failing gives the connection's SRTCP back to pion.
func TestCtlSinkDecrypts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dprof   dtls.SRTPProtectionProfile
		profile srtp.ProtectionProfile
	}{
		{"AEAD-128", dtls.SRTP_AEAD_AES_128_GCM, srtp.ProtectionProfileAeadAes128Gcm},
		{"AES-CM", dtls.SRTP_AES128_CM_HMAC_SHA1_80, srtp.ProtectionProfileAes128CmHmacSha1_80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc, _, cs := dtlsHandshake(t, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tc.dprof,
				dtls.RequireExtendedMasterSecret, false)
			keys, err := kc.srtpKeys()
			must(t, err)
			peer := srtp.Config{Profile: tc.profile}
			must(t, peer.ExtractSessionKeysFromDTLS(&cs, true))
			enc, err := srtp.CreateContext(peer.Keys.LocalMasterKey, peer.Keys.LocalMasterSalt, tc.profile)
			must(t, err)

			_, rp, _ := testTap(netip.MustParseAddrPort("127.0.0.1:6000"), 42, tapQueue)
			s := testCtl(rp, tapQueue)
			s.ctx, err = newRecvRTCPContext(keys)
			must(t, err)
			var mu sync.Mutex
			var got [][]rtcp.Packet
			var wg sync.WaitGroup
			wg.Go(func() {
				s.run(func(pkts []rtcp.Packet, _ int64) {
					mu.Lock()
					got = append(got, pkts)
					mu.Unlock()
				})
			})
			defer func() { s.remove(); wg.Wait() }()
			push := func(b []byte) {
				pk := rp.tap.pool.Get().(*tapPacket)
				pk.n = copy(pk.b[:], b)
				s.q <- pk
			}
			seal := func(pkts ...rtcp.Packet) []byte {
				raw, err := rtcp.Marshal(pkts)
				must(t, err)
				ct, err := enc.EncryptRTCP(nil, raw, nil)
				must(t, err)
				return ct
			}
			remb := &rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 1, Bitrate: 1e6, SSRCs: []uint32{42, 43}}
			nack := &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 42, Nacks: []rtcp.NackPair{{PacketID: 7}}}
			ct := seal(remb, nack)
			forged := append([]byte(nil), ct...)
			forged[len(forged)-1] ^= 1
			push(forged)
			push(ct)
			push(ct) // a replay
			eventually(t, 5*time.Second, "one rejected, one replay, one handed on", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return rp.c.readRejected.Load() == 1 && rp.c.readReplayed.Load() == 1 && len(got) == 1
			})
			mu.Lock()
			if len(got[0]) != 2 || got[0][0].(*rtcp.ReceiverEstimatedMaximumBitrate).Bitrate != 1e6 ||
				got[0][1].(*rtcp.TransportLayerNack).Nacks[0].PacketID != 7 {
				t.Errorf("handed on %v, want the REMB and the NACK sent", got[0])
			}
			mu.Unlock()

			for range maxTapFailures {
				b := seal(nack) // a new SRTCP index each: not a replay
				b[len(b)-1] ^= 1
				push(b)
			}
			eventually(t, 5*time.Second, "the failing sink unregistered", func() bool {
				return rp.ctl.Load() == nil
			})
		})
	}
}

// peerOf is the router's participant of id.
func (e *env) peerOf(id string) *participant {
	e.router.mu.Lock()
	defer e.router.mu.Unlock()
	return e.router.peers[id]
}

// rembCount is how many REMBs reached the estimate.
func (b *bwe) rembCount() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rembs
}

// TestSubscriberRTCPPaths: a pion subscriber's NACK is answered from the
// cache, its PLI reaches the publisher, and the publisher's sender
// reports reach the server's receiver reports, with the read tap (which
// then takes the SRTCP: a REMB naming two tracks reaches the estimate
// once) and without it (pion's reader of each track named handles it).
func TestSubscriberRTCPPaths(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tap       bool
		rembsEach uint64 // estimate updates per REMB naming both tracks
		rtcpTaken bool   // the tap takes SRTCP
	}{
		{"read tap", true, 1, true},
		{"pion", false, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvTap(t, EngineConfig{}, RouterConfig{}, tc.tap)
			sub := e.join("bob")
			pub := e.join("alice")
			publishCamera(t, pub, 127)
			cam, mic := sub.track("alice/cam"), sub.track("alice/mic")
			pkts := waitPackets(t, cam, 30)
			micSSRC := waitPackets(t, mic, 1)[0].SSRC

			// NACK: answered from the cache.
			want := pkts[10]
			before := len(cam.packets())
			sub.sendRTCP(&rtcp.TransportLayerNack{MediaSSRC: want.SSRC, Nacks: []rtcp.NackPair{{PacketID: want.SequenceNumber}}})
			eventually(t, 5*time.Second, "the retransmission", func() bool {
				for _, p := range cam.packets()[before:] {
					if p.SequenceNumber == want.SequenceNumber && bytes.Equal(p.Payload, want.Payload) {
						return true
					}
				}
				return false
			})

			// REMB naming both tracks, in one compound packet.
			bw := e.peerOf("bob").bwe
			rembs := bw.rembCount()
			sub.sendRTCP(&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 2e6, SSRCs: []uint32{want.SSRC, micSSRC}})
			eventually(t, 5*time.Second, "the REMB", func() bool { return bw.rembCount() >= rembs+tc.rembsEach })
			time.Sleep(100 * time.Millisecond) // time for a second, wrong, delivery
			if n := bw.rembCount() - rembs; n != tc.rembsEach {
				t.Errorf("one REMB updated the estimate %d times, want %d", n, tc.rembsEach)
			}

			// PLI: passed on to the publisher, past its 500 ms limit.
			time.Sleep(keyframeInterval)
			plis := func() (n int) {
				for _, p := range pub.publisherRTCP() {
					if _, ok := p.(*rtcp.PictureLossIndication); ok {
						n++
					}
				}
				return n
			}
			had := plis()
			sub.sendRTCP(&rtcp.PictureLossIndication{MediaSSRC: want.SSRC})
			eventually(t, 5*time.Second, "the PLI at the publisher", func() bool { return plis() > had })

			// The publisher's sender reports: LSR in the server's reports.
			eventually(t, 10*time.Second, "a receiver report with LSR", func() bool {
				for _, p := range pub.publisherRTCP() {
					if rr, ok := p.(*rtcp.ReceiverReport); ok {
						for _, b := range rr.Reports {
							if b.LastSenderReport != 0 {
								return true
							}
						}
					}
				}
				return false
			})
			c := e.engine.Counters()
			if (c.RTCPTaken > 0) != tc.rtcpTaken || c.ReadRejected != 0 {
				t.Errorf("the tap took %d RTCP packets and rejected %d", c.RTCPTaken, c.ReadRejected)
			}
			if tc.tap {
				tamperedREMB(t, e, bw)
			}
		})
	}
}

// tamperedREMB puts a REMB whose SRTCP tag is not the subscriber's in front
// of the tap, from the subscriber's address: it is rejected and counted,
// and never reaches the estimate.
func tamperedREMB(t *testing.T, e *env, bw *bwe) {
	t.Helper()
	p := e.peerOf("bob")
	p.mu.Lock()
	rp := p.subRecv
	p.mu.Unlock()
	rp.mu.Lock()
	from := rp.addr
	rp.mu.Unlock()
	raw, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 1, SSRCs: []uint32{1}}})
	must(t, err)
	// E flag and an index, then a tag (as long as AES-GCM's) that is not one.
	forged := append(raw, 0x80, 0, 0, 1)
	forged = append(forged, bytes.Repeat([]byte{0xa5}, 16)...)
	rejected, rembs := e.engine.Counters().ReadRejected, bw.rembCount()
	if !e.engine.tap.take(forged, from) {
		t.Fatal("the tap left the forged SRTCP to pion")
	}
	eventually(t, 5*time.Second, "the forged SRTCP rejected", func() bool {
		return e.engine.Counters().ReadRejected == rejected+1
	})
	if bw.rembCount() != rembs {
		t.Error("a forged REMB reached the estimate")
	}
}

// BenchmarkSubscriberRTCP is the process's CPU per REMB a subscriber
// sends naming its two tracks, with the read tap and through pion, media
// stopped: the client's send side is the same either way, so the
// difference is the server's receive path. The REMBs are paced, so no
// queue overflows to pion, and nothing spins while waiting.
func BenchmarkSubscriberRTCP(b *testing.B) {
	for _, tc := range []struct {
		name string
		tap  bool
		each uint64 // estimate updates per REMB
	}{{"tap=on", true, 1}, {"tap=off", false, 2}, {"idle", true, 0}} { // idle: the pacing and background alone
		b.Run(tc.name, func(b *testing.B) {
			e := newEnvTap(b, EngineConfig{}, RouterConfig{}, tc.tap)
			sub := e.join("bob")
			pub := e.join("alice")
			video, audio, senders := pub.publishCamMic(b, "alice")
			pump := newPump()
			pump.video(b, video, senders[0], "", &vp8Source{width: 640, height: 360, frameSize: 3000, keyEvery: 60})
			pump.audio(b, audio, senders[1], 127)
			ssrcs := []uint32{waitPackets(b, sub.track("alice/cam"), 10)[0].SSRC, waitPackets(b, sub.track("alice/mic"), 10)[0].SSRC}
			pump.close()
			time.Sleep(200 * time.Millisecond) // the last media drains
			bw := e.peerOf("bob").bwe
			remb := &rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 2e6, SSRCs: ssrcs}
			b.ResetTimer()
			cpu := testutil.CPUTime()
			want := bw.rembCount() + uint64(b.N)*tc.each
			for range b.N {
				if tc.each > 0 {
					sub.sendRTCP(remb)
				}
				time.Sleep(500 * time.Microsecond) // paced: no queue fills, nothing spins
			}
			for bw.rembCount() < want {
				time.Sleep(time.Millisecond)
			}
			used := testutil.CPUTime() - cpu
			b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/remb")
		})
	}
}
