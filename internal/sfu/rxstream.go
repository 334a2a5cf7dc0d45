package sfu

import (
	"math/bits"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// nackWindow is how far back (in packets) a stream's receive log reaches:
// as far as a packet cache (cacheSize), since the subscribers' NACKs for a
// repaired packet are answered from there. Older holes are not asked for.
const (
	nackWindow = cacheSize
	nackWords  = nackWindow / 64
)

// When a lost packet is asked for (2026-12-03; docs/architecture.md, "Who
// sends what RTCP"). A hole is first NACKed nackReorderDelay after it was
// seen, so a packet that is only late (reordered on the path, or between
// the layer's two readers) fills it before anyone asks: LiveKit waits
// 20 ms too, libwebrtc's WebRTC-SendNackDelayMs trial allows up to 20.
// Then again every nackSpacing(rtt) while it is missing: a retransmission
// comes a round trip after its NACK, so asking sooner only makes the
// publisher send it twice (the replays the read tap counts). A hole is
// given up once its tries are spent and a last spacing has passed, or
// once it is maxRepairAge old: subscribers froze on it long enough, and a
// keyframe (asked instead, rate-limited per layer) repairs more surely.
const (
	nackReorderDelay = 20 * time.Millisecond
	nackMinSpacing   = 30 * time.Millisecond  // LAN round trips: the publisher's pacer and threads
	nackMaxSpacing   = 400 * time.Millisecond // LiveKit's cap
	nackDefaultRTT   = 100 * time.Millisecond // before ICE measured one: libwebrtc's default
	maxRepairAge     = time.Second
)

// nackGaveUp in a slot's tries marks a hole the server stopped asking for.
const nackGaveUp = maxNACKsPerPacket + 1

// nackSpacing is the wait between two NACKs for one packet on a path of
// round trip rtt (0: not known yet): 1.5 round trips, so that the
// retransmission of the last has had time to come with some jitter.
func nackSpacing(rtt time.Duration) time.Duration {
	if rtt <= 0 {
		rtt = nackDefaultRTT
	}
	return min(max(rtt*3/2, nackMinSpacing), nackMaxSpacing)
}

// maxDropout and maxMisorder say which sequence numbers belong to the
// stream (RFC 3550 A.1): up to maxDropout ahead is loss, up to
// maxMisorder behind is a late packet; anything else is a new sequence
// once a second packet follows it. maxMisorder is the NACK window, not
// the RFC's 100, so that a late retransmission counts as received.
const (
	maxDropout  = 3000
	maxMisorder = nackWindow
)

// rxStream is what the server knows of one stream a publisher sends it
// (one simulcast layer or one audio track, one SSRC): enough to ask for
// its lost packets (NACK) and to send its receiver reports. The reader of
// the stream calls note for each packet; the publish connection's
// feedback loop calls nacks and report. Each has its own lock, taken by
// those two goroutines only.
type rxStream struct {
	ssrc  uint32
	clock uint32 // the codec's RTP clock rate
	nack  bool   // the publisher accepts NACKs (negotiated for the codec)

	mu      sync.Mutex // guards the fields below
	started bool
	maxSeq  uint16 // highest sequence number received
	cycles  uint32 // sequence number wraps, << 16
	baseSeq uint32 // extended first sequence number
	badSeq  uint32 // the sequence a jump must continue with to restart (RFC 3550 A.1); > 0xffff: none
	recv    uint32 // packets received (late and repeated ones included, RFC 3550 A.3)
	// At the last report, for its fraction lost.
	expectedPrior, recvPrior uint32
	// Interarrival jitter (RFC 3550 A.8), ×16, in clock units.
	jitter      uint32
	transit     uint32
	haveTransit bool
	firstAt     int64 // unix nanos of the first packet: origin of the arrival clock
	// The publisher's last sender report: middle 32 bits of its NTP time,
	// and when it came (unix nanos; 0: none yet).
	lastSR   uint32
	lastSRAt int64
	// The NACK log: a bit per sequence number in the window ending at
	// maxSeq (set: received), and per slot the NACKs sent for it (or
	// nackGaveUp), when the hole was seen and when it is next due, in
	// milliseconds since firstAt (uint32: compared by difference, so the
	// wrap after 49 days does no harm).
	got    [nackWords]uint64
	tries  [nackWindow]uint8
	lostAt [nackWindow]uint32
	due    [nackWindow]uint32
	// A hole left the window unrepaired (or a gap wider than the window
	// forgot some): given up at the next NACK round.
	stale bool
	ctr   *counters // where NACKs to the publisher are counted; nil: nowhere
	// keyframe asks the publisher for a keyframe of the stream, when a hole
	// is given up (the layer's rate-limited request); nil: nobody.
	keyframe func(now time.Time)
}

func newRxStream(ssrc, clock uint32, nack bool) *rxStream {
	return &rxStream{ssrc: ssrc, clock: clock, nack: nack, badSeq: 1 << 16, ctr: &counters{}}
}

// note records a packet arriving at now (unix nanos). It reports whether
// the packet opened a hole to NACK, so the feedback loop can time it.
func (s *rxStream) note(seq uint16, ts uint32, now int64) (hole bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.restart(seq, now)
		s.noteJitter(ts, now)
		return false
	}
	switch d := seq - s.maxSeq; {
	case d == 0: // a repeat of the newest
		s.recv++
	case d < maxDropout: // ahead, perhaps after a gap
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.advance(d, s.ms(now))
		s.maxSeq = seq
		s.recv++
		s.noteJitter(ts, now)
		return s.nack && d > 1
	case d > 1<<16-maxMisorder: // late: a reordered or retransmitted packet
		s.recv++
		s.fill(s.maxSeq - uint16(1<<16-uint32(d)))
	default: // a jump: a new sequence if the next packet follows it
		if uint32(seq) == s.badSeq {
			s.restart(seq, now)
			s.noteJitter(ts, now)
			return false
		}
		s.badSeq = uint32(seq+1) & 0xffff
	}
	return false
}

// ms is now (unix nanos) on the NACK log's clock.
func (s *rxStream) ms(now int64) uint32 { return uint32((now - s.firstAt) / 1e6) }

// fill marks late packet q received, counting whether the server had
// asked for it (a repair) or not yet (only late).
func (s *rxStream) fill(q uint16) {
	if s.nack && !s.hasBit(q) {
		if s.tries[q%nackWindow] > 0 {
			s.ctr.pubRepaired.Add(1)
		} else {
			s.ctr.pubLate.Add(1)
		}
	}
	s.setBit(q)
}

// restart starts the statistics over at seq (the first packet, or a
// publisher that started a new sequence).
func (s *rxStream) restart(seq uint16, now int64) {
	s.started = true
	s.maxSeq, s.cycles = seq, 0
	s.baseSeq = uint32(seq)
	s.badSeq = 1 << 16
	s.recv, s.expectedPrior, s.recvPrior = 1, 0, 0
	s.haveTransit, s.jitter = false, 0
	if s.firstAt == 0 {
		s.firstAt = now
	}
	s.gotAll() // nothing before the first packet is missing
}

// advance moves the NACK window d packets on at now (ms(now)): the new
// slots are holes, due nackReorderDelay from now, except the newest, set
// by the caller. A hole still pending in a slot taken over, or a jump
// beyond the window (which forgets it), is given up: too old to ask for.
func (s *rxStream) advance(d uint16, now uint32) {
	if d >= nackWindow {
		if s.nack {
			s.stale = true
			s.ctr.pubGaveUp.Add(uint64(d - 1))
		}
		s.gotAll()
	} else {
		due := now + uint32(nackReorderDelay/time.Millisecond)
		for i := uint16(1); i < d; i++ {
			q := s.maxSeq + i
			s.dropSlot(q)
			s.clearBit(q)
			s.tries[q%nackWindow] = 0
			s.lostAt[q%nackWindow], s.due[q%nackWindow] = now, due
		}
	}
	q := s.maxSeq + d
	s.dropSlot(q)
	s.setBit(q)
	s.tries[q%nackWindow] = 0
}

// dropSlot notes whether the slot q is about to take over held a hole the
// server was still asking for (q − nackWindow, unrepaired).
func (s *rxStream) dropSlot(q uint16) {
	if s.nack && !s.hasBit(q) && s.tries[q%nackWindow] < nackGaveUp {
		s.stale = true
		s.ctr.pubGaveUp.Add(1)
	}
}

// gotAll marks the whole window received.
func (s *rxStream) gotAll() {
	for i := range s.got {
		s.got[i] = ^uint64(0)
	}
}

func (s *rxStream) setBit(q uint16)   { s.got[q%nackWindow/64] |= 1 << (q % 64) }
func (s *rxStream) clearBit(q uint16) { s.got[q%nackWindow/64] &^= 1 << (q % 64) }
func (s *rxStream) hasBit(q uint16) bool {
	return s.got[q%nackWindow/64]&(1<<(q%64)) != 0
}

// noteJitter updates the interarrival jitter with an in-order packet
// (RFC 3550 A.8); late ones would count their delay as jitter.
func (s *rxStream) noteJitter(ts uint32, now int64) {
	if s.clock == 0 {
		return
	}
	// Arrival in clock units since the first packet (128-bit product: no
	// overflow however long the stream).
	hi, lo := bits.Mul64(uint64(max(now-s.firstAt, 0)), uint64(s.clock))
	q, _ := bits.Div64(hi, lo, 1e9)
	transit := uint32(q) - ts
	if s.haveTransit {
		d := int32(transit - s.transit)
		if d < 0 {
			d = -d
		}
		s.jitter += uint32(d) - (s.jitter+8)>>4
	}
	s.transit, s.haveTransit = transit, true
}

// noteSR records a sender report of the stream's publisher arriving at
// now (unix nanos).
func (s *rxStream) noteSR(ntp uint64, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastSR, s.lastSRAt = uint32(ntp>>16), now
}

// nackDue is what a NACK round found of a stream besides its NACKs.
type nackDue struct {
	wait   time.Duration // until the next of its holes falls due; 0: none pending
	gaveUp bool          // a hole was given up: a keyframe is wanted
}

// nacks appends to out the NACK pairs of the packets missing in the
// window (oldest first) that are due at now (unix nanos), asking each
// again spacing later, and gives up the holes whose time is over.
func (s *rxStream) nacks(now int64, spacing time.Duration, out []rtcp.NackPair) ([]rtcp.NackPair, nackDue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r nackDue
	if !s.nack || !s.started {
		return out, r
	}
	if s.stale {
		s.stale, r.gaveUp = false, true
	}
	t := s.ms(now)
	next := int32(-1) // ms until the next due hole; < 0: none
	// The window is the nackWindow packets ending at maxSeq, but not
	// before the stream's first; words with nothing missing are skipped
	// whole (the usual case).
	span := min(uint32(nackWindow-1), s.cycles+uint32(s.maxSeq)-s.baseSeq)
	first := s.maxSeq - uint16(span)
	for i := uint32(0); i < span; i++ {
		q := first + uint16(i)
		if q%64 == 0 && i+64 <= span && s.got[q%nackWindow/64] == ^uint64(0) {
			i += 63
			continue
		}
		if s.hasBit(q) || s.tries[q%nackWindow] >= nackGaveUp {
			continue
		}
		asked, w := s.nackSlot(q%nackWindow, t, spacing)
		if w < 0 {
			r.gaveUp = true
			continue
		}
		if asked {
			out = addNack(out, q)
		}
		if next < 0 || w < next {
			next = w
		}
	}
	if next >= 0 {
		r.wait = time.Duration(next) * time.Millisecond
	}
	return out, r
}

// nackSlot decides on hole j at t (ms): asked now or not, and the ms
// until it is next due (its next NACK, or giving it up); < 0: given up.
func (s *rxStream) nackSlot(j uint16, t uint32, spacing time.Duration) (asked bool, wait int32) {
	untilOld := int32(s.lostAt[j] + uint32(maxRepairAge/time.Millisecond) - t)
	untilDue := int32(s.due[j] - t)
	if untilOld <= 0 || untilDue <= 0 && s.tries[j] >= maxNACKsPerPacket {
		s.tries[j] = nackGaveUp
		s.ctr.pubGaveUp.Add(1)
		return false, -1
	}
	if untilDue <= 0 {
		if s.tries[j] == 0 {
			s.ctr.pubNACKed.Add(1)
		}
		s.tries[j]++
		untilDue = int32(spacing / time.Millisecond)
		s.due[j] = t + uint32(untilDue)
		asked = true
	}
	return asked, min(untilDue, untilOld)
}

// addNack adds seq to the NACK pairs, in the last pair if it fits.
func addNack(out []rtcp.NackPair, seq uint16) []rtcp.NackPair {
	if n := len(out); n > 0 {
		last := &out[n-1]
		if d := seq - last.PacketID; d >= 1 && d <= 16 {
			last.LostPackets |= 1 << (d - 1)
			return out
		}
	}
	return append(out, rtcp.NackPair{PacketID: seq})
}

// report is the stream's reception report block at now (unix nanos)
// (RFC 3550 6.4.1, A.3); ok is false before its first packet.
func (s *rxStream) report(now int64) (rtcp.ReceptionReport, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return rtcp.ReceptionReport{}, false
	}
	ext := s.cycles + uint32(s.maxSeq)
	expected := ext - s.baseSeq + 1
	lost := int64(expected) - int64(s.recv)
	lost = min(max(lost, -0x800000), 0x7fffff) // 24 bits, signed
	expInt, recvInt := expected-s.expectedPrior, s.recv-s.recvPrior
	s.expectedPrior, s.recvPrior = expected, s.recv
	var fraction uint8
	if lostInt := int64(expInt) - int64(recvInt); expInt > 0 && lostInt > 0 {
		fraction = uint8(min(lostInt<<8/int64(expInt), 255))
	}
	r := rtcp.ReceptionReport{
		SSRC: s.ssrc, FractionLost: fraction, TotalLost: uint32(lost) & 0xffffff,
		LastSequenceNumber: ext, Jitter: s.jitter >> 4,
	}
	if s.lastSRAt != 0 {
		r.LastSenderReport = s.lastSR
		r.Delay = uint32((now - s.lastSRAt) * 65536 / 1e9)
	}
	return r, true
}
