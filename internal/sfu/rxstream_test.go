package sfu

import (
	"cmp"
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

// A stream's NACKs, by the clock: a hole is asked for nackReorderDelay
// after it is seen (a reordered packet fills it first), again every
// spacing, at most maxNACKsPerPacket times, and given up a spacing after
// the last try or at maxRepairAge; late packets fill holes; wraps, big
// jumps and new sequences make no holes to ask for. counts are the
// stream's counters at the end: NACKed, repaired, late, given up.
func TestRxStreamNACKs(t *testing.T) {
	type step struct {
		at     int      // ms since the first packet
		recv   []uint16 // packets arriving at at, before the round
		want   []uint16 // sequence numbers NACKed in the round at at
		gaveUp bool     // the round gives a hole up
		next   int      // ms until the next hole is due after the round; 0: not checked, −1: none
	}
	const W = nackWindow
	for name, tc := range map[string]struct {
		nack    bool
		spacing time.Duration // 0: 40 ms
		steps   []step
		counts  [4]uint64
	}{
		"in order":   {nack: true, steps: []step{{recv: []uint16{1, 2, 3, 4}, next: -1}, {at: 20, next: -1}}},
		"one lost":   {nack: true, steps: []step{{recv: []uint16{1, 2, 4}, next: 20}, {at: 19, next: 1}, {at: 20, want: []uint16{3}, next: 40}}, counts: [4]uint64{1, 0, 0, 0}},
		"reordered":  {nack: true, steps: []step{{recv: []uint16{1, 3}}, {at: 10, recv: []uint16{2, 4}, next: -1}, {at: 20}, {at: 200}}, counts: [4]uint64{0, 0, 1, 0}},
		"audio":      {nack: false, steps: []step{{recv: []uint16{1, 2, 4}, next: -1}, {at: 20, next: -1}}},
		"burst lost": {nack: true, steps: []step{{recv: []uint16{10, 15}}, {at: 20, want: []uint16{11, 12, 13, 14}}}, counts: [4]uint64{4, 0, 0, 0}},
		"wrap":       {nack: true, steps: []step{{recv: []uint16{65534, 65535, 1}}, {at: 20, want: []uint16{0}}}, counts: [4]uint64{1, 0, 0, 0}},
		"retransmission fills the hole": {nack: true, steps: []step{
			{recv: []uint16{1, 3}}, {at: 20, want: []uint16{2}}, {at: 30, recv: []uint16{2, 4}, next: -1}, {at: 60}, {at: 300},
		}, counts: [4]uint64{1, 1, 0, 0}},
		"retried every spacing, five times, then given up": {nack: true, steps: []step{
			{recv: []uint16{1, 3}}, {at: 20, want: []uint16{2}}, {at: 59, next: 1}, {at: 60, want: []uint16{2}},
			{at: 100, want: []uint16{2}}, {at: 140, want: []uint16{2}}, {at: 180, want: []uint16{2}, next: 40},
			{at: 219}, {at: 220, gaveUp: true, next: -1}, {at: 400},
		}, counts: [4]uint64{1, 0, 0, 1}},
		"the spacing follows the round trip": {nack: true, spacing: 150 * time.Millisecond, steps: []step{
			{recv: []uint16{1, 3}}, {at: 20, want: []uint16{2}, next: 150}, {at: 100}, {at: 169}, {at: 170, want: []uint16{2}},
		}, counts: [4]uint64{1, 0, 0, 0}},
		"a new hole while one is retried": {nack: true, steps: []step{
			{recv: []uint16{1, 3}}, {at: 20, want: []uint16{2}}, {at: 30, recv: []uint16{4, 6}, next: 20},
			{at: 50, want: []uint16{5}, next: 10}, {at: 60, want: []uint16{2}}, {at: 90, want: []uint16{5}},
		}, counts: [4]uint64{2, 0, 0, 0}},
		"too old: given up at maxRepairAge": {nack: true, spacing: nackMaxSpacing, steps: []step{
			{recv: []uint16{1, 3}}, {at: 20, want: []uint16{2}}, {at: 420, want: []uint16{2}},
			{at: 820, want: []uint16{2}, next: 180}, {at: 999}, {at: 1000, gaveUp: true, next: -1}, {at: 1300},
		}, counts: [4]uint64{1, 0, 0, 1}},
		// A jump past the window: the holes are too old to repair.
		"jump beyond the window": {nack: true, steps: []step{
			{recv: []uint16{1, 1 + W + 10}, gaveUp: true, next: -1}, {at: 20, next: -1}, {at: 25, recv: []uint16{1 + W + 12}},
			{at: 45, want: []uint16{1 + W + 11}},
		}, counts: [4]uint64{1, 0, 0, W + 9}},
		// Far out of sequence: a new sequence once a second packet
		// follows (RFC 3550 A.1), with no holes between the two.
		"new sequence": {nack: true, steps: []step{{recv: []uint16{100, 101, 40000, 40001, 40003}}, {at: 20, want: []uint16{40002}}}, counts: [4]uint64{1, 0, 0, 0}},
		"a lone stray": {nack: true, steps: []step{{recv: []uint16{100, 101, 40000, 102}}, {at: 20, next: -1}}},
		// Whole words of the log received around the hole, which is near
		// the window's far end; and one just inside it, one just out
		// (given up when its slot was taken).
		"a hole among full words": {nack: true, steps: []step{{recv: seqsWithout(0, 600, 300)}, {at: 20, want: []uint16{300}}}, counts: [4]uint64{1, 0, 0, 0}},
		"the window's edges": {nack: true, steps: []step{
			{recv: seqsWithout(999, 999+W+2, 1000, 1001), gaveUp: true, next: 20}, {at: 20, want: []uint16{1001}},
		}, counts: [4]uint64{1, 0, 0, 1}},
		// Older than the window: neither NACKed nor filling a hole.
		"far-old late packet": {nack: true, steps: []step{{recv: []uint16{1000, 1000 + W + 5, 1000}, gaveUp: true, next: -1}, {at: 20, next: -1}}, counts: [4]uint64{0, 0, 0, W + 4}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newRxStream(1, 90000, tc.nack)
			spacing := cmp.Or(tc.spacing, 40*time.Millisecond)
			start := time.Unix(1_800_000_000, 0).UnixNano()
			for _, st := range tc.steps {
				now := start + int64(st.at)*int64(time.Millisecond)
				for _, q := range st.recv {
					s.note(q, uint32(now/11111), now)
				}
				pairs, due := s.nacks(now, spacing, nil)
				if got := nackedSeqs(pairs); !slices.Equal(got, st.want) || due.gaveUp != st.gaveUp {
					t.Fatalf("at %d ms: NACKed %v, gave up %v; want %v, %v", st.at, got, due.gaveUp, st.want, st.gaveUp)
				}
				if want := time.Duration(st.next) * time.Millisecond; st.next > 0 && due.wait != want || st.next < 0 && due.wait != 0 {
					t.Fatalf("at %d ms: next due in %v, want %d ms", st.at, due.wait, st.next)
				}
			}
			c := s.ctr
			if got := [4]uint64{c.pubNACKed.Load(), c.pubRepaired.Load(), c.pubLate.Load(), c.pubGaveUp.Load()}; got != tc.counts {
				t.Fatalf("counted NACKed, repaired, late, given up %v; want %v", got, tc.counts)
			}
		})
	}
}

// The spacing of a packet's NACKs: 1.5 round trips, within its floor and
// cap; libwebrtc's 100 ms round trip before ICE measured one.
func TestNACKSpacing(t *testing.T) {
	for name, tc := range map[string]struct {
		rtt, want time.Duration
	}{
		"unknown":       {0, 150 * time.Millisecond},
		"loopback":      {200 * time.Microsecond, nackMinSpacing},
		"LAN":           {5 * time.Millisecond, nackMinSpacing},
		"across a city": {40 * time.Millisecond, 60 * time.Millisecond},
		"transatlantic": {120 * time.Millisecond, 180 * time.Millisecond},
		"satellite":     {600 * time.Millisecond, nackMaxSpacing},
	} {
		t.Run(name, func(t *testing.T) {
			if got := nackSpacing(tc.rtt); got != tc.want {
				t.Fatalf("nackSpacing(%v) = %v, want %v", tc.rtt, got, tc.want)
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
