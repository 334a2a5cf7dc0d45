package sfu

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// nackedSeqs expands NACK pairs into sequence numbers.
func nackedSeqs(pairs []rtcp.NackPair) []uint16 {
	var out []uint16
	for _, p := range pairs {
		out = append(out, p.PacketList()...)
	}
	return out
}

// seqsWithout is from, from+1 … to−1 without the holes.
func seqsWithout(from, to uint16, holes ...uint16) []uint16 {
	var out []uint16
	for q := from; q != to; q++ {
		if !slices.Contains(holes, q) {
			out = append(out, q)
		}
	}
	return out
}

// A stream's NACKs: holes are asked for at the next tick, again every
// nackRetryTicks, at most maxNACKsPerPacket times; reordered and late
// packets fill them; wraps, big jumps and new sequences do not make holes.
func TestRxStreamNACKs(t *testing.T) {
	type step struct {
		recv []uint16 // packets arriving before the tick
		want []uint16 // sequence numbers NACKed at the tick
	}
	for name, tc := range map[string]struct {
		nack  bool
		steps []step
	}{
		"in order":   {true, []step{{recv: []uint16{1, 2, 3, 4}}}},
		"one lost":   {true, []step{{recv: []uint16{1, 2, 4}, want: []uint16{3}}}},
		"reordered":  {true, []step{{recv: []uint16{1, 3, 2, 4}}}},
		"audio":      {false, []step{{recv: []uint16{1, 2, 4}}}},
		"burst lost": {true, []step{{recv: []uint16{10, 15}, want: []uint16{11, 12, 13, 14}}}},
		"wrap":       {true, []step{{recv: []uint16{65534, 65535, 1}, want: []uint16{0}}}},
		"retransmission fills the hole": {true, []step{
			{recv: []uint16{1, 3}, want: []uint16{2}},
			{recv: []uint16{2, 4}},
			{}, {}, {},
		}},
		"retried every other tick, five times": {true, []step{
			{recv: []uint16{1, 3}, want: []uint16{2}}, {}, {want: []uint16{2}}, {}, {want: []uint16{2}}, {},
			{want: []uint16{2}}, {}, {want: []uint16{2}}, {}, {}, {}, {},
		}},
		"a new hole while one is retried": {true, []step{
			{recv: []uint16{1, 3}, want: []uint16{2}}, {recv: []uint16{4, 6}, want: []uint16{5}},
			{want: []uint16{2}}, {want: []uint16{5}},
		}},
		// A jump past the window: the holes are too old to repair.
		"jump beyond the window": {true, []step{{recv: []uint16{1, 1 + nackWindow + 10}}, {recv: []uint16{1 + nackWindow + 12}, want: []uint16{1 + nackWindow + 11}}}},
		// Far out of sequence: a new sequence once a second packet
		// follows (RFC 3550 A.1), with no holes between the two.
		"new sequence": {true, []step{{recv: []uint16{100, 101, 40000, 40001, 40003}, want: []uint16{40002}}}},
		"a lone stray": {true, []step{{recv: []uint16{100, 101, 40000, 102}}}},
		// Whole words of the log received around the hole, which is near
		// the window's far end; and one just inside it, one just out.
		"a hole among full words": {true, []step{{recv: seqsWithout(0, 600, 300), want: []uint16{300}}}},
		"the window's edges":      {true, []step{{recv: seqsWithout(999, 999+nackWindow+2, 1000, 1001), want: []uint16{1001}}}},
		// Older than the window: neither NACKed nor does it disturb.
		"far-old late packet": {true, []step{{recv: []uint16{1000, 1000 + nackWindow + 5, 1000}}}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newRxStream(1, 90000, tc.nack)
			now := time.Now().UnixNano()
			for i, st := range tc.steps {
				for _, q := range st.recv {
					now += int64(time.Millisecond)
					s.note(q, uint32(now/11111), now)
				}
				got := nackedSeqs(s.nacks(uint32(i+1), nil))
				if !slices.Equal(got, st.want) {
					t.Fatalf("tick %d: NACKed %v, want %v", i+1, got, st.want)
				}
			}
		})
	}
}

// The reception report: fraction lost over the interval, cumulative lost,
// extended highest sequence number (with wraps), jitter in clock units
// (RFC 3550 A.8) and the sender report's LSR and DLSR.
func TestRxStreamReport(t *testing.T) {
	const clock = 90000
	start := time.Unix(1_800_000_000, 0).UnixNano()
	for name, tc := range map[string]struct {
		first     uint16
		n         int
		skipEvery int           // every skipEvery-th sequence number never arrives
		wobble    time.Duration // arrival alternately early and late by this
		fraction  uint8
		lost      uint32
		highest   uint32
		jitterMin uint32
		jitterMax uint32
	}{
		"clean":               {first: 100, n: 200, fraction: 0, lost: 0, highest: 299, jitterMax: 1},
		"one in ten lost":     {first: 100, n: 200, skipEvery: 10, fraction: 25, lost: 20, highest: 299, jitterMax: 1},
		"across a wrap":       {first: 65500, n: 100, skipEvery: 4, fraction: 64, lost: 25, highest: 1<<16 + 63, jitterMax: 1},
		"jittered arrival":    {first: 0, n: 500, wobble: 2 * time.Millisecond, highest: 499, jitterMin: 300, jitterMax: 400},
		"jittered, with loss": {first: 0, n: 500, skipEvery: 5, wobble: time.Millisecond, fraction: 51, lost: 100, highest: 499, jitterMin: 90, jitterMax: 180},
	} {
		t.Run(name, func(t *testing.T) {
			s := newRxStream(7, clock, true)
			now := start
			for i := range tc.n {
				// 100 packets a second, timestamps in step; the wobble
				// moves every other arrival by 2×wobble: a transit change of
				// 2×wobble per packet, which the jitter converges to.
				now = start + int64(i)*int64(10*time.Millisecond)
				if i%2 == 1 {
					now += int64(2 * tc.wobble)
				}
				if tc.skipEvery > 0 && i%tc.skipEvery == 1 {
					continue
				}
				s.note(tc.first+uint16(i), uint32(i*clock/100), now)
			}
			sr := time.Unix(0, now).Add(-300 * time.Millisecond)
			s.noteSR(toNTP(sr.UnixNano()), sr.UnixNano())
			r, ok := s.report(now)
			if !ok {
				t.Fatal("no report")
			}
			if r.SSRC != 7 || r.FractionLost != tc.fraction || r.TotalLost != tc.lost || r.LastSequenceNumber != tc.highest ||
				r.Jitter < tc.jitterMin || r.Jitter > tc.jitterMax {
				t.Fatalf("report %+v, want fraction %d lost %d highest %d jitter %d–%d",
					r, tc.fraction, tc.lost, tc.highest, tc.jitterMin, tc.jitterMax)
			}
			if r.LastSenderReport != ntpMiddle(sr) || r.Delay < 19660 || r.Delay > 19662 { // 0.3 s in 1/65536 s
				t.Fatalf("LSR %x DLSR %d, want %x and 0.3 s", r.LastSenderReport, r.Delay, ntpMiddle(sr))
			}
			// The next interval received everything it expected.
			r2, _ := s.report(now)
			if r2.FractionLost != 0 || r2.TotalLost != tc.lost {
				t.Fatalf("second report %+v: want no new loss", r2)
			}
		})
	}
}

// The per-packet part of the feedback allocates nothing.
func TestFeedbackPerPacketAllocs(t *testing.T) {
	fb := newPubFeedback(func([]rtcp.Packet) error { return nil }, time.Now().UnixNano())
	in := &ingress{twccID: 3, fb: fb, rx: newRxStream(5, 90000, true)}
	h := rtp.Header{Version: 2, SSRC: 5}
	ext := make([]byte, 2) // the header holds it: rewritten in place
	must(t, h.SetExtension(3, ext))
	now := time.Now().UnixNano()
	var seq uint16
	next := func() {
		seq++
		now += int64(time.Millisecond)
		h.SequenceNumber, h.Timestamp = seq, uint32(seq)*90
		ext[0], ext[1] = byte(seq>>8), byte(seq)
		in.onPacket(&h, now)
	}
	for range 2000 { // warm up, with feedback sent as the loop would
		next()
		if seq%100 == 0 {
			fb.twcc(nil)
		}
	}
	if a := testing.AllocsPerRun(1000, next); a != 0 {
		t.Fatalf("%v allocations per packet", a)
	}
}
