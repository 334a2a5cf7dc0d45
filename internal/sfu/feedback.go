package sfu

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The publish side's feedback cadence. The loop ticks every feedbackTick:
// transport-cc feedback every twccTicks (libwebrtc's default 100 ms),
// sooner when twccFullPackets wait; receiver reports every reportTicks
// (1 s, as browsers send theirs); the connection's round trip is read
// every rttTicks (ICE measures it every 2 s). NACKs keep no tick: a timer
// wakes the loop when the next hole falls due (rxStream.nacks), and only
// while there are holes.
const (
	feedbackTick    = 50 * time.Millisecond
	twccTicks       = 2
	reportTicks     = 20
	rttTicks        = 20
	twccFullPackets = 250 // about 600 bytes of feedback: well inside one datagram
)

// pubFeedback is the server's RTCP feedback to one publish connection:
// transport-cc feedback over every packet that carries a transport-wide
// sequence number, NACKs for lost video packets and receiver reports for
// each stream. It is fed by the layer readers (onPacket, from upTrack.handle)
// and the streams' sender reports (rxStream.noteSR); nothing of pion's
// receive path is needed, so a reader of the connection's SRTP of its own
// feeds it the same way. One goroutine (run) writes it all.
type pubFeedback struct {
	write func([]rtcp.Packet) error // the connection's RTCP writer
	ssrc  uint32                    // sender SSRC of the feedback
	start int64                     // unix nanos: origin of transport-cc arrival times
	kick  chan struct{}             // transport-cc feedback is full: send it now
	holes chan struct{}             // a stream opened a hole: time its NACK
	done  chan struct{}             // closed by stop
	once  sync.Once                 // closes done
	begin sync.Once                 // starts run

	twccMu sync.Mutex // guards rec; taken by this connection's readers only
	rec    *twcc.Recorder

	mu      sync.Mutex // guards streams
	streams []*rxStream

	// rttOf reads the connection's round trip (0: not known; nil: none),
	// which spaces the NACKs for one packet; rtt is the last read, run's.
	rttOf func() time.Duration
	rtt   time.Duration
}

func newPubFeedback(write func([]rtcp.Packet) error, now int64) *pubFeedback {
	ssrc := rand.Uint32()
	return &pubFeedback{write: write, ssrc: ssrc, start: now, kick: make(chan struct{}, 1),
		holes: make(chan struct{}, 1), done: make(chan struct{}), rec: twcc.NewRecorder(ssrc)}
}

// stop ends run; the connection is closed or replaced.
func (f *pubFeedback) stop() { f.once.Do(func() { close(f.done) }) }

// add and remove register the streams the connection carries.
func (f *pubFeedback) add(s *rxStream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streams = append(f.streams, s)
}

func (f *pubFeedback) remove(s *rxStream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streams = slices.DeleteFunc(f.streams, func(x *rxStream) bool { return x == s })
}

// ingress is what one reader of a layer hands upTrack.handle with each
// packet besides the packet: the layer's generation and negotiated header
// extensions, and where the packet is accounted for feedback.
type ingress struct {
	gen          uint32
	audioLevelID uint8 // 0: none
	twccID       uint8 // transport-wide sequence number extension; 0: none
	fb           *pubFeedback
	rx           *rxStream // nil: no feedback (benchmarks)
}

// onPacket accounts one packet that arrived at now (unix nanos): its
// transport-wide sequence number and its place in its stream. No
// allocation, and no lock other publishers take.
func (in *ingress) onPacket(p *rtp.Header, now int64) {
	if in.rx == nil {
		return
	}
	if in.rx.note(p.SequenceNumber, p.Timestamp, now) && in.fb != nil {
		in.fb.wake(in.fb.holes)
	}
	if in.twccID == 0 || in.fb == nil {
		return
	}
	ext := p.GetExtension(in.twccID)
	if len(ext) < 2 {
		return
	}
	in.fb.record(p.SSRC, binary.BigEndian.Uint16(ext), now)
}

// record notes a transport-wide sequence number's arrival.
func (f *pubFeedback) record(ssrc uint32, seq uint16, now int64) {
	f.twccMu.Lock()
	f.rec.Record(ssrc, seq, max(now-f.start, 0)/1e3)
	full := f.rec.PacketsHeld() >= twccFullPackets
	f.twccMu.Unlock()
	if full {
		f.wake(f.kick)
	}
}

// wake signals the loop on c, once however often it is called before the
// loop looks.
func (f *pubFeedback) wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run writes the feedback until stop or until quit closes (the
// participant left); the router owns it.
func (f *pubFeedback) run(quit <-chan struct{}) {
	t := time.NewTicker(feedbackTick)
	defer t.Stop()
	nack := time.NewTimer(time.Hour) // armed while holes wait
	nack.Stop()
	defer nack.Stop()
	f.readRTT()
	var fb feedbackScratch
	for tick := uint32(1); ; {
		select {
		case <-f.done:
			return
		case <-quit:
			return
		case <-f.kick:
			f.send(f.twcc(nil))
		case <-f.holes:
			f.armNACKs(nack, f.nackRound(time.Now().UnixNano(), &fb))
		case now := <-nack.C:
			f.armNACKs(nack, f.nackRound(now.UnixNano(), &fb))
		case now := <-t.C:
			// Transport-cc apart from the rest, so that no compound packet
			// grows past a datagram.
			if tick%twccTicks == 0 {
				f.send(f.twcc(nil))
			}
			if tick%rttTicks == 0 {
				f.readRTT()
			}
			f.send(f.collect(tick, now.UnixNano(), &fb))
			tick++
		}
	}
}

// readRTT takes the connection's current round trip, if it has one.
func (f *pubFeedback) readRTT() {
	if f.rttOf != nil {
		if rtt := f.rttOf(); rtt > 0 {
			f.rtt = rtt
		}
	}
}

// armNACKs sets the NACK timer to fire in wait (0: nothing waits). A
// millisecond more: the holes' clock counts whole milliseconds.
func (f *pubFeedback) armNACKs(t *time.Timer, wait time.Duration) {
	if wait <= 0 {
		t.Stop()
		return
	}
	t.Reset(wait + time.Millisecond)
}

// nackRound sends the NACKs due at now (unix nanos), asks a keyframe of
// each stream that gave a hole up, and returns the wait until the next
// hole falls due (0: none).
func (f *pubFeedback) nackRound(now int64, fb *feedbackScratch) (wait time.Duration) {
	f.mu.Lock()
	fb.streams = append(fb.streams[:0], f.streams...)
	f.mu.Unlock()
	spacing := nackSpacing(f.rtt)
	pkts := fb.pkts[:0]
	for _, s := range fb.streams {
		var due nackDue
		fb.pairs, due = s.nacks(now, spacing, fb.pairs[:0])
		if len(fb.pairs) > 0 {
			pkts = append(pkts, &rtcp.TransportLayerNack{SenderSSRC: f.ssrc, MediaSSRC: s.ssrc,
				Nacks: slices.Clone(fb.pairs)})
		}
		if due.gaveUp && s.keyframe != nil {
			s.keyframe(time.Unix(0, now))
		}
		if due.wait > 0 && (wait == 0 || due.wait < wait) {
			wait = due.wait
		}
	}
	f.send(pkts)
	fb.pkts = pkts[:0]
	clear(fb.streams) // hold no stream past its connection
	return wait
}

// feedbackScratch is run's reused storage.
type feedbackScratch struct {
	streams []*rxStream
	pairs   []rtcp.NackPair
	pkts    []rtcp.Packet
}

// collect is the receiver reports due at tick.
func (f *pubFeedback) collect(tick uint32, now int64, fb *feedbackScratch) []rtcp.Packet {
	if tick%reportTicks != 0 {
		return nil
	}
	f.mu.Lock()
	fb.streams = append(fb.streams[:0], f.streams...)
	f.mu.Unlock()
	pkts := f.reports(fb.streams, now, fb.pkts[:0])
	fb.pkts = pkts[:0]
	clear(fb.streams) // hold no stream past its connection
	return pkts
}

// twcc appends the transport-cc feedback since the last.
func (f *pubFeedback) twcc(pkts []rtcp.Packet) []rtcp.Packet {
	f.twccMu.Lock()
	defer f.twccMu.Unlock()
	return append(pkts, f.rec.BuildFeedbackPacket()...)
}

// reports appends receiver reports for the streams, up to 31 blocks (what
// the RTCP header can count) to a report.
func (f *pubFeedback) reports(streams []*rxStream, now int64, pkts []rtcp.Packet) []rtcp.Packet {
	var rr *rtcp.ReceiverReport
	for _, s := range streams {
		b, ok := s.report(now)
		if !ok {
			continue
		}
		if rr == nil || len(rr.Reports) == maxBlocksPerReport {
			rr = &rtcp.ReceiverReport{SSRC: f.ssrc}
			pkts = append(pkts, rr)
		}
		rr.Reports = append(rr.Reports, b)
	}
	return pkts
}

// maxBlocksPerReport is the report blocks one RTCP receiver report holds.
const maxBlocksPerReport = 31

// send writes pkts; a closed connection's errors are expected (the loop
// is stopped soon after).
func (f *pubFeedback) send(pkts []rtcp.Packet) {
	if len(pkts) > 0 {
		_ = f.write(pkts)
	}
}

// readSenderReports passes the sender reports the publisher sends for a
// stream (one simulcast layer: rid) to rx, until the receiver stops. The
// reports give the receiver reports' LSR and DLSR, from which the
// publisher learns its round trip to the server. With the read tap
// serving the connection (srtcpread.go, pubFeedback.onRTCP) it sees only
// what the tap leaves to pion.
func readSenderReports(rcv *webrtc.RTPReceiver, rid string, rx *rxStream) {
	buf := make([]byte, maxPacket)
	own := func(ssrc uint32) *rxStream {
		if ssrc == rx.ssrc {
			return rx
		}
		return nil
	}
	for {
		n, _, err := rcv.ReadSimulcast(buf, rid)
		if err != nil {
			return
		}
		if pkts, err := rtcp.Unmarshal(buf[:n]); err == nil {
			takeSRs(pkts, time.Now().UnixNano(), own)
		}
	}
}

// takeSRs passes the sender reports among pkts to their streams (stream:
// nil for an SSRC not the caller's).
func takeSRs(pkts []rtcp.Packet, now int64, stream func(ssrc uint32) *rxStream) {
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			if rx := stream(sr.SSRC); rx != nil {
				rx.noteSR(sr.NTPTime, now)
			}
		}
	}
}

// onRTCP is the read tap's handler of the connection's SRTCP: one
// goroutine for the whole connection, where pion ran one per layer.
func (f *pubFeedback) onRTCP(pkts []rtcp.Packet, now int64) { takeSRs(pkts, now, f.stream) }

// stream is the connection's stream of ssrc, or nil.
func (f *pubFeedback) stream(ssrc uint32) *rxStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.streams {
		if s.ssrc == ssrc {
			return s
		}
	}
	return nil
}

// hasNACK reports whether the codec negotiated plain NACK feedback.
func hasNACK(c webrtc.RTPCodecParameters) bool {
	for _, fb := range c.RTCPFeedback {
		if fb.Type == webrtc.TypeRTCPFBNACK && fb.Parameter == "" {
			return true
		}
	}
	return false
}

// extID is the negotiated id of the header extension uri on rcv, or 0.
func extID(rcv *webrtc.RTPReceiver, uri string) uint8 {
	for _, h := range rcv.GetParameters().HeaderExtensions {
		if h.URI == uri {
			return uint8(h.ID)
		}
	}
	return 0
}
