package sfu

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// lossyLink holds back the packets a publisher's pump would send while
// dropping is on and drop selects them, as a lossy path would lose them,
// and sends each held packet once the server NACKs it, as a browser
// retransmits. With lateBy, it loses nothing but reorders: a selected
// packet goes lateBy after the packet that follows it in its frame.
type lossyLink struct {
	drop     func(seq uint16) bool
	lateBy   time.Duration
	dropping atomic.Bool

	mu     sync.Mutex
	held   map[uint16]*rtp.Packet // lost, not yet asked for
	resent []*rtp.Packet
}

// send writes the frame's packets to track, except those lost, after the
// retransmissions asked for in nacks.
func (l *lossyLink) send(track *webrtc.TrackLocalStaticRTP, frame []*rtp.Packet, nacks []uint16) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, q := range nacks {
		if p := l.held[q]; p != nil {
			delete(l.held, q)
			l.resent = append(l.resent, p)
			_ = track.WriteRTP(p)
		}
	}
	for i := 0; i < len(frame); i++ {
		p := frame[i]
		switch {
		case !l.dropping.Load() || !l.drop(p.SequenceNumber):
			_ = track.WriteRTP(p)
		case l.lateBy > 0 && i+1 < len(frame):
			_ = track.WriteRTP(frame[i+1])
			time.Sleep(l.lateBy)
			_ = track.WriteRTP(p)
			i++
		case l.lateBy > 0:
			_ = track.WriteRTP(p)
		default:
			l.held[p.SequenceNumber] = p
		}
	}
}

func (l *lossyLink) retransmitted() []*rtp.Packet {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.resent)
}

// nacked returns the sequence numbers NACKed for ssrc in pkts.
func nacked(pkts []rtcp.Packet, ssrc uint32) []uint16 {
	var out []uint16
	for _, p := range pkts {
		if n, ok := p.(*rtcp.TransportLayerNack); ok && n.MediaSSRC == ssrc {
			out = append(out, nackedSeqs(n.Nacks)...)
		}
	}
	return out
}

// pumpLossy sends src over link at 30 fps and audio (20 ms packets, every
// fifth sequence number never sent) until the test ends.
func pumpLossy(t *testing.T, pub *client, video, audio *webrtc.TrackLocalStaticRTP, vssrc uint32, src *vp8Source, link *lossyLink) {
	t.Helper()
	pump := newPump()
	t.Cleanup(pump.close)
	pump.wg.Go(func() {
		tk := time.NewTicker(time.Second / 30)
		defer tk.Stop()
		seen := 0
		for {
			select {
			case <-pump.stop:
				return
			case <-tk.C:
			}
			all := pub.publisherRTCP()
			link.send(video, src.next(), nacked(all[seen:], vssrc))
			seen = len(all)
		}
	})
	pump.wg.Go(func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-pump.stop:
				return
			case <-tk.C:
			}
			if seq%5 != 4 {
				_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960},
					Payload: make([]byte, 80)})
			}
		}
	})
	pub.keyOnPLI(pump, map[uint32]*vp8Source{vssrc: src})
}

// The server NACKs what it lost of a publisher's video (not its audio,
// which negotiated no NACK), and the retransmission reaches subscribers.
func TestServerNACKsPublisher(t *testing.T) {
	for name, drop := range map[string]func(uint16) bool{
		"isolated losses":  func(q uint16) bool { return q%40 == 20 },
		"a burst of three": func(q uint16) bool { return q%100 >= 50 && q%100 < 53 },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, RouterConfig{})
			sub := e.join("bob")
			pub := e.join("alice")
			video, audio, senders := pub.publishCamMic(t, "alice")
			vssrc := uint32(senders[0].GetParameters().Encodings[0].SSRC)
			assrc := uint32(senders[1].GetParameters().Encodings[0].SSRC)
			link := &lossyLink{drop: drop, held: map[uint16]*rtp.Packet{}}
			pumpLossy(t, pub, video, audio, vssrc, &vp8Source{width: 640, height: 360, frameSize: 3000, keyEvery: 60}, link)
			v := sub.track("alice/cam")
			waitPackets(t, v, 10) // bob receives: losses from now on reach him repaired
			link.dropping.Store(true)

			eventually(t, 15*time.Second, "six retransmissions at bob", func() bool {
				resent := link.retransmitted()
				if len(resent) < 6 {
					return false
				}
				got := map[string]bool{}
				for _, p := range v.packets() {
					got[string(p.Payload)] = true
				}
				for _, p := range resent {
					if !got[string(p.Payload)] {
						return false
					}
				}
				return true
			})
			rtcpPkts := pub.publisherRTCP()
			if n := nacked(rtcpPkts, assrc); len(n) > 0 {
				t.Fatalf("the server NACKed audio: %v", n)
			}
			// Each lost packet was asked for, and only lost ones.
			for _, q := range nacked(rtcpPkts, vssrc) {
				if !drop(q) {
					t.Fatalf("the server NACKed %d, which it received", q)
				}
			}
		})
	}
}

// One NACK round over a connection's streams at an injected time: each
// video stream's due holes in a NACK of its own (none for audio, which
// negotiated no NACK), the wait until the next hole falls due, spacing
// from the connection's round trip, and a keyframe asked of a stream
// once it gives a hole up. Stream 10 loses seq 2 at 0 ms, stream 11 seq 5
// at 5 ms, audio stream 12 seq 2 at 0 ms.
func TestFeedbackNACKRound(t *testing.T) {
	type round struct {
		at   int                 // ms
		want map[uint32][]uint16 // NACKed, by media SSRC
		wait int                 // ms until the next round; 0: none
	}
	// retries is the rounds of a 30 ms spacing from the first NACKs on.
	retries := func(from, until int) []round {
		var rs []round
		for at := from; at < until; at += 30 {
			rs = append(rs, round{at: at, want: map[uint32][]uint16{10: {2}}, wait: 5},
				round{at: at + 5, want: map[uint32][]uint16{11: {5}}, wait: 25})
		}
		return rs
	}
	for name, tc := range map[string]struct {
		rtt       time.Duration
		rounds    []round
		keyframes map[uint32]int
	}{
		"before the reorder allowance": {rtt: 2 * time.Millisecond, rounds: []round{{at: 10, wait: 10}, {at: 19, wait: 1}}},
		"LAN round trip": {rtt: 2 * time.Millisecond, rounds: []round{
			{at: 10, wait: 10}, {at: 20, want: map[uint32][]uint16{10: {2}}, wait: 5},
			{at: 25, want: map[uint32][]uint16{11: {5}}, wait: 25}, {at: 49, wait: 1}, {at: 50, want: map[uint32][]uint16{10: {2}}, wait: 5},
		}},
		"round trip not known yet": {rounds: []round{
			{at: 25, want: map[uint32][]uint16{10: {2}, 11: {5}}, wait: 150}, {at: 174, wait: 1}, {at: 175, want: map[uint32][]uint16{10: {2}, 11: {5}}, wait: 150},
		}},
		"a long round trip": {rtt: 100 * time.Millisecond, rounds: []round{
			{at: 25, want: map[uint32][]uint16{10: {2}, 11: {5}}, wait: 150},
		}},
		"given up, a keyframe asked instead": {rtt: 2 * time.Millisecond, rounds: append(retries(20, 160),
			round{at: 170, wait: 5}, round{at: 175}, round{at: 600}),
			keyframes: map[uint32]int{10: 1, 11: 1}},
	} {
		t.Run(name, func(t *testing.T) {
			var written []rtcp.Packet
			fb := newPubFeedback(func(p []rtcp.Packet) error { written = append(written, p...); return nil }, 0)
			fb.rttOf = func() time.Duration { return tc.rtt }
			fb.readRTT()
			keyframes := map[uint32]int{}
			start := time.Unix(1_800_000_000, 0).UnixNano()
			ms := func(n int) int64 { return start + int64(n)*int64(time.Millisecond) }
			for _, st := range []struct {
				ssrc  uint32
				nack  bool
				at    int
				lose  uint16
				clock uint32
			}{{10, true, 0, 2, 90000}, {11, true, 5, 5, 90000}, {12, false, 0, 2, 48000}} {
				rx := newRxStream(st.ssrc, st.clock, st.nack)
				rx.keyframe = func(time.Time) { keyframes[st.ssrc]++ }
				fb.add(rx)
				for q := st.lose - 1; q != st.lose+2; q++ {
					if q != st.lose {
						rx.note(q, 0, ms(st.at))
					}
				}
			}
			var scratch feedbackScratch
			for _, r := range tc.rounds {
				written = nil
				wait := fb.nackRound(ms(r.at), &scratch)
				got := map[uint32][]uint16{}
				for _, p := range written {
					n := p.(*rtcp.TransportLayerNack)
					got[n.MediaSSRC] = append(got[n.MediaSSRC], nackedSeqs(n.Nacks)...)
				}
				if fmt.Sprint(got) != fmt.Sprint(r.want) || wait != time.Duration(r.wait)*time.Millisecond {
					t.Fatalf("at %d ms: NACKed %v, next round in %v; want %v, %d ms", r.at, got, wait, r.want, r.wait)
				}
			}
			if fmt.Sprint(keyframes) != fmt.Sprint(tc.keyframes) {
				t.Fatalf("keyframes asked %v, want %v", keyframes, tc.keyframes)
			}
		})
	}
}

// The feedback loop times the NACKs itself: the first after the reorder
// allowance, the retries spaced by the connection's round trip, a
// keyframe asked once the tries are spent, and nothing more.
func TestFeedbackLoopNACKTiming(t *testing.T) {
	var mu sync.Mutex
	var nacks []time.Time
	fb := newPubFeedback(func(pkts []rtcp.Packet) error {
		mu.Lock()
		defer mu.Unlock()
		if q := nacked(pkts, 5); len(q) > 0 {
			nacks = append(nacks, time.Now())
		}
		return nil
	}, time.Now().UnixNano())
	fb.rttOf = func() time.Duration { return 40 * time.Millisecond } // spacing 60 ms
	rx := newRxStream(5, 90000, true)
	var keyframes atomic.Int32
	rx.keyframe = func(time.Time) { keyframes.Add(1) }
	fb.add(rx)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { fb.run(quit) })
	defer wg.Wait()
	defer close(quit)
	in := &ingress{fb: fb, rx: rx}
	hole := time.Now()
	for _, q := range []uint16{1, 3} {
		in.onPacket(&rtp.Header{SSRC: 5, SequenceNumber: q}, hole.UnixNano())
	}
	eventually(t, 3*time.Second, "a keyframe asked", func() bool { return keyframes.Load() == 1 })
	time.Sleep(150 * time.Millisecond) // nothing more comes
	mu.Lock()
	defer mu.Unlock()
	if len(nacks) != maxNACKsPerPacket || keyframes.Load() != 1 {
		t.Fatalf("%d NACKs, %d keyframes asked; want %d, 1", len(nacks), keyframes.Load(), maxNACKsPerPacket)
	}
	// Timers fire late, never early (a millisecond of the log's rounding).
	if d := nacks[0].Sub(hole); d < nackReorderDelay-time.Millisecond || d > 500*time.Millisecond {
		t.Fatalf("first NACK %v after the hole, want %v (at most 500 ms)", d, nackReorderDelay)
	}
	for i := 1; i < len(nacks); i++ {
		if d := nacks[i].Sub(nacks[i-1]); d < 59*time.Millisecond {
			t.Fatalf("NACK %d came %v after the one before, want ≥ 60 ms", i+1, d)
		}
	}
}

// A packet that comes a few milliseconds late, after the one behind it,
// is not NACKed: the hole it leaves is younger than the reorder allowance
// when it fills. (Asked at a 50 ms tick, as before, one in ten of
// these was NACKed, and a browser would have sent it twice.)
func TestServerWaitsForReorderedPackets(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	sub := e.join("bob")
	pub := e.join("alice")
	video, audio, senders := pub.publishCamMic(t, "alice")
	vssrc := uint32(senders[0].GetParameters().Encodings[0].SSRC)
	const lateBy = 5 * time.Millisecond // well inside nackReorderDelay, on a busy test machine too
	link := &lossyLink{drop: func(q uint16) bool { return q%8 == 3 }, lateBy: lateBy, held: map[uint16]*rtp.Packet{}}
	// 6 packets a frame: about 20 reordered a second.
	pumpLossy(t, pub, video, audio, vssrc, &vp8Source{width: 640, height: 360, frameSize: 6000, keyEvery: 60}, link)
	waitPackets(t, sub.track("alice/cam"), 10)
	link.dropping.Store(true)
	const want = 40
	eventually(t, 15*time.Second, "reordered packets", func() bool {
		c := e.engine.Counters()
		return c.PubLate+c.PubRepaired >= want // repaired: the server asked before it came
	})
	if n := nacked(pub.publisherRTCP(), vssrc); len(n) > 0 {
		t.Fatalf("the server NACKed %v, which only came %v late", n, lateBy)
	}
	t.Logf("%d packets came late, none NACKed", e.engine.Counters().PubLate)
}

// tccReceived returns the transport-wide sequence numbers a feedback
// packet reports received, and how many it reports not received. Symbols
// past the packet's status count (a status vector chunk's padding) are
// none.
func tccReceived(cc *rtcp.TransportLayerCC) (got []uint16, notReceived int) {
	n := 0
	note := func(sym uint16) {
		if n >= int(cc.PacketStatusCount) {
			return
		}
		if sym == rtcp.TypeTCCPacketNotReceived {
			notReceived++
		} else {
			got = append(got, cc.BaseSequenceNumber+uint16(n))
		}
		n++
	}
	for _, c := range cc.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range c.RunLength {
				note(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, s := range c.SymbolList {
				note(s)
			}
		}
	}
	return got, notReceived
}

// transportCC returns the transport-cc feedback packets in pkts.
func transportCC(pkts []rtcp.Packet) []*rtcp.TransportLayerCC {
	var out []*rtcp.TransportLayerCC
	for _, p := range pkts {
		if cc, ok := p.(*rtcp.TransportLayerCC); ok {
			out = append(out, cc)
		}
	}
	return out
}

// A publisher whose packets carry transport-wide sequence numbers (pion's
// header extension interceptor, as a browser's) gets transport-cc feedback
// about every 100 ms covering every packet it sent, audio and video.
func TestTransportCCFeedbackToPublisher(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	pub := e.addClient("alice", clientAPIWith(t, nil, webrtc.ConfigureTWCCHeaderExtensionSender))
	pub.wg.Go(pub.run)
	publishCamera(t, pub, 30)
	// From the second second on: the start, when the streams' readers
	// begin one after the other, may report a packet late.
	time.Sleep(time.Second)
	skip := len(pub.publisherRTCP())
	start := time.Now()
	time.Sleep(2 * time.Second)
	feedbacks := transportCC(pub.publisherRTCP()[skip:])
	elapsed := time.Since(start)
	// Every 100 ms: 20 in 2 s.
	if n, most := len(feedbacks), int(elapsed/(100*time.Millisecond))+2; n < 14 || n > most {
		t.Fatalf("%d transport-cc feedback packets in %v, want 14–%d", n, elapsed, most)
	}
	// The window: from the first to the newest packet reported received.
	first, last := uint16(0xffff), uint16(0)
	for _, cc := range feedbacks {
		got, _ := tccReceived(cc)
		for _, q := range got {
			first, last = min(first, q), max(last, q)
		}
	}
	// Each stream has its own reader, so a packet can be accounted after a
	// later one of another stream and a feedback in between reports it not
	// received; the next reports it again, received (as pion's interceptor
	// did). So read the feedback a little longer.
	time.Sleep(300 * time.Millisecond)
	seen := map[uint16]bool{}
	late := 0
	for _, cc := range transportCC(pub.publisherRTCP()[skip:]) {
		got, n := tccReceived(cc)
		late += n
		for _, q := range got {
			seen[q] = true
		}
	}
	// Loopback loses nothing: every sequence number in the window is
	// reported received: 2 s of 90 video and 50 audio packets a second.
	var missing []uint16
	for q := first; q != last+1; q++ {
		if !seen[q] {
			missing = append(missing, q)
		}
	}
	if int(last-first)+1 < 220 || len(missing) > 0 {
		t.Fatalf("feedback covers %d–%d; not reported received: %v (reported late %d times); want ≥ 220, all received",
			first, last, missing, late)
	}
	t.Logf("%d feedback packets cover %d–%d; %d reports of a packet not (yet) received", len(feedbacks), first, last, late)
}

// The publisher's receiver reports: one a second per stream, with the
// loss its packets suffered (packets never sent stay lost: nobody can
// retransmit them), the highest sequence number, a small jitter on
// loopback, and LSR/DLSR from the publisher's sender reports.
func TestReceiverReportsToPublisher(t *testing.T) {
	for name, tc := range map[string]struct {
		holeEvery    uint16
		fractionMin  uint8 // /256
		fractionMax  uint8
		cumulativeLo uint32
	}{
		"clean":           {0, 0, 0, 0},
		"one in ten lost": {10, 18, 32, 20}, // 1 in 10: 25.6/256, by frame boundaries a little less or more
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, RouterConfig{})
			pub := e.join("alice")
			video := localTrack(t, capVP8, "cam", "alice")
			senders := pub.publish([]webrtc.TrackLocal{video}, []string{"camera"})
			ssrc := uint32(senders[0].GetParameters().Encodings[0].SSRC)
			src := &vp8Source{width: 640, height: 360, frameSize: 3000, keyEvery: 60, holeEvery: tc.holeEvery}
			pump := newPump()
			t.Cleanup(pump.close)
			pump.video(t, video, senders[0], "", src)
			var last rtcp.ReceptionReport
			var reports int
			eventually(t, 15*time.Second, "receiver reports with LSR", func() bool {
				reports = 0
				for _, p := range pub.publisherRTCP() {
					rr, ok := p.(*rtcp.ReceiverReport)
					if !ok {
						continue
					}
					for _, b := range rr.Reports {
						if b.SSRC == ssrc {
							last = b
							reports++
						}
					}
				}
				return reports >= 3 && last.LastSenderReport != 0
			})
			desc := fmt.Sprintf("report %d: %+v", reports, last)
			if last.FractionLost < tc.fractionMin || last.FractionLost > tc.fractionMax ||
				last.TotalLost < tc.cumulativeLo || (tc.holeEvery == 0) != (last.TotalLost == 0) {
				t.Fatalf("%s: want fraction %d–%d, cumulative ≥ %d", desc, tc.fractionMin, tc.fractionMax, tc.cumulativeLo)
			}
			// 90 packets a second from 0, for over 3 s: no wrap yet.
			if last.LastSequenceNumber < 200 || last.LastSequenceNumber > 0xffff {
				t.Fatalf("%s: implausible highest sequence number", desc)
			}
			// Frames go out as bursts on loopback: a few ms of jitter at most.
			if last.Jitter > 90*20 || last.Delay > 2*65536 {
				t.Fatalf("%s: jitter or DLSR out of range", desc)
			}
		})
	}
}

// BenchmarkUpstreamFeedback is the per-packet cost of the feedback to a
// publisher: pion's three receive interceptors (receiver reports, NACK
// generator, transport-cc), as publish connections ran them before,
// against the router's own accounting (ingress.onPacket, its loop
// running), each on top of the same packet source. Both see a 1,100-byte
// VP8 packet with a transport-wide sequence number; pion's chain parses
// the header itself, the router's reader has it parsed already (it needs
// it to forward). The router reads the clock again, as readLayer does.
func BenchmarkUpstreamFeedback(b *testing.B) {
	const twccID = 5
	ext := make([]byte, 2)
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 5}
	must(b, h.SetExtension(twccID, ext))
	pkt := &rtp.Packet{Header: h, Payload: make([]byte, 1100)}
	var seq uint16
	next := func(now int64) {
		seq++
		pkt.SequenceNumber, pkt.Timestamp = seq, uint32(now/11111)
		ext[0], ext[1] = byte(seq>>8), byte(seq)
	}
	read := interceptor.RTPReaderFunc(func(buf []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		next(time.Now().UnixNano())
		n, err := pkt.MarshalTo(buf)
		return n, a, err
	})
	// The packet source alone: what the other two add to it is theirs.
	b.Run("source-alone", func(b *testing.B) {
		buf := make([]byte, maxPacket)
		for b.Loop() {
			if _, _, err := read.Read(buf, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pion-interceptors", func(b *testing.B) {
		ir := &interceptor.Registry{}
		rr, err := report.NewReceiverInterceptor()
		must(b, err)
		gen, err := nack.NewGeneratorInterceptor(nack.GeneratorMaxNacksPerPacket(maxNACKsPerPacket))
		must(b, err)
		tw, err := twcc.NewSenderInterceptor()
		must(b, err)
		ir.Add(rr)
		ir.Add(gen)
		ir.Add(tw)
		chain, err := ir.Build("pc")
		must(b, err)
		chain.BindRTCPWriter(interceptor.RTCPWriterFunc(func([]rtcp.Packet, interceptor.Attributes) (int, error) { return 0, nil }))
		info := &interceptor.StreamInfo{SSRC: 5, ClockRate: 90000, MimeType: webrtc.MimeTypeVP8,
			RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: twccID}},
			RTCPFeedback:        []interceptor.RTCPFeedback{{Type: "nack"}}}
		r := chain.BindRemoteStream(info, read)
		buf := make([]byte, maxPacket)
		for b.Loop() {
			if _, _, err := r.Read(buf, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		chain.UnbindRemoteStream(info)
		must(b, chain.Close())
	})
	b.Run("router", func(b *testing.B) {
		fb := newPubFeedback(func([]rtcp.Packet) error { return nil }, time.Now().UnixNano())
		in := &ingress{twccID: twccID, fb: fb, rx: newRxStream(5, 90000, true)}
		fb.add(in.rx)
		quit := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { fb.run(quit) })
		buf := make([]byte, maxPacket)
		for b.Loop() {
			if _, _, err := read.Read(buf, nil); err != nil {
				b.Fatal(err)
			}
			in.onPacket(&pkt.Header, time.Now().UnixNano())
		}
		b.StopTimer()
		close(quit)
		wg.Wait()
	})
}
