package sfu

import (
	"math/bits"
	"sync"

	"github.com/pion/rtcp"
)

// nackWindow is how far back (in packets) a stream's receive log reaches:
// as far as a packet cache (cacheSize), since the subscribers' NACKs for a
// repaired packet are answered from there. Older holes are not asked for.
const (
	nackWindow = cacheSize
	nackWords  = nackWindow / 64
)

// nackRetryTicks is the feedback ticks between two NACKs for one packet
// (100 ms): about a round trip on the paths the service sees, so that the
// retransmission asked for first has had time to come.
const nackRetryTicks = 2

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
	// maxSeq (set: received), and per slot the NACKs sent for it and the
	// feedback tick of the last.
	got     [nackWords]uint64
	tries   [nackWindow]uint8
	askedAt [nackWindow]uint32
}

func newRxStream(ssrc, clock uint32, nack bool) *rxStream {
	return &rxStream{ssrc: ssrc, clock: clock, nack: nack, badSeq: 1 << 16}
}

// note records a packet arriving at now (unix nanos).
func (s *rxStream) note(seq uint16, ts uint32, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.restart(seq, now)
		s.noteJitter(ts, now)
		return
	}
	switch d := seq - s.maxSeq; {
	case d == 0: // a repeat of the newest
		s.recv++
	case d < maxDropout: // ahead, perhaps after a gap
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.advance(d)
		s.maxSeq = seq
		s.recv++
		s.noteJitter(ts, now)
	case d > 1<<16-maxMisorder: // late: a reordered or retransmitted packet
		s.recv++
		s.markGot(-int(1<<16 - uint32(d)))
	default: // a jump: a new sequence if the next packet follows it
		if uint32(seq) == s.badSeq {
			s.restart(seq, now)
			s.noteJitter(ts, now)
			return
		}
		s.badSeq = uint32(seq+1) & 0xffff
	}
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

// advance moves the NACK window d packets on: the new slots are empty
// (missing) except the newest, set by the caller. A jump beyond the
// window forgets it: those holes are too old to ask for.
func (s *rxStream) advance(d uint16) {
	if d >= nackWindow {
		s.gotAll()
	} else {
		for i := uint16(1); i < d; i++ {
			q := s.maxSeq + i
			s.clearBit(q)
			s.tries[q%nackWindow] = 0
		}
	}
	q := s.maxSeq + d
	s.setBit(q)
	s.tries[q%nackWindow] = 0
}

// markGot marks the packet back packets behind the newest as received.
func (s *rxStream) markGot(back int) {
	s.setBit(s.maxSeq + uint16(back))
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

// nacks appends to out the NACK pairs of the packets missing in the
// window (oldest first) that are due at feedback tick: not asked for in
// the last nackRetryTicks ticks, nor maxNACKsPerPacket times already.
func (s *rxStream) nacks(tick uint32, out []rtcp.NackPair) []rtcp.NackPair {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.nack || !s.started {
		return out
	}
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
		if s.hasBit(q) {
			continue
		}
		j := q % nackWindow
		if s.tries[j] >= maxNACKsPerPacket || s.tries[j] > 0 && tick-s.askedAt[j] < nackRetryTicks {
			continue
		}
		s.tries[j]++
		s.askedAt[j] = tick
		out = addNack(out, q)
	}
	return out
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
