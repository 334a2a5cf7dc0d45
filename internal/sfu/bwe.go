package sfu

import (
	"sync"
	"time"
)

// bwe is a subscriber's bandwidth estimate: what its receiver reports (REMB,
// from a browser whose subscribe connection negotiates goog-remb and not
// transport-cc) capped by a loss-based controller fed by its receiver
// reports (the classic rule: back off above 10 % loss, grow below 2 %).
type bwe struct {
	mu       sync.Mutex
	rembBps  float64 // 0: no REMB yet
	rembAt   time.Time
	lossBps  float64
	lossAt   time.Time
	lastLoss float64 // fraction lost in the last receiver report
	minBps   float64
	maxBps   float64
	override float64 // tests and operators: a fixed estimate when > 0
	rembs    uint64  // REMBs taken: one per packet on the read tap's path, one per named track on pion's
}

// rembMaxAge is how long a REMB value holds without a fresh one.
const rembMaxAge = 5 * time.Second

func newBWE(initial, minBps, maxBps float64) *bwe {
	return &bwe{lossBps: initial, minBps: minBps, maxBps: maxBps}
}

func (b *bwe) remb(bps float64, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rembBps, b.rembAt = bps, now
	b.rembs++
}

// loss takes an RTCP fraction lost (0–255).
func (b *bwe) loss(fraction uint8, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.lossAt) < 500*time.Millisecond { // one report per track: update at most twice a second
		return
	}
	b.lossAt = now
	l := float64(fraction) / 256
	b.lastLoss = l
	switch {
	case l > 0.10:
		b.lossBps *= 1 - 0.5*l
	case l < 0.02:
		b.lossBps *= 1.08
	}
	b.lossBps = min(max(b.lossBps, b.minBps), b.maxBps)
}

// estimate is the rate the subscriber can take now, in bits/s: the lower
// of the two controllers that were fed recently.
func (b *bwe) estimate(now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.override > 0 {
		return b.override
	}
	rembFresh := b.rembBps > 0 && now.Sub(b.rembAt) < rembMaxAge
	lossFresh := !b.lossAt.IsZero() && now.Sub(b.lossAt) < rembMaxAge
	e := b.lossBps
	switch {
	case rembFresh && lossFresh && b.lastLoss < 0.02:
		// Without losses the receiver's own estimate governs; the loss
		// rule continues from there when losses come.
		b.lossBps = min(b.rembBps, b.maxBps)
		e = b.lossBps
	case rembFresh && lossFresh:
		e = min(b.rembBps, b.lossBps)
	case rembFresh:
		e = b.rembBps
	}
	return max(e, b.minBps)
}
