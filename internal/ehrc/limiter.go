package ehrc

import (
	"sync"
	"time"
)

// maxLimiterKeys bounds the addresses a limiter remembers. Past it (after
// dropping the idle ones) new addresses are refused: failing closed keeps
// memory bounded under a flood from many addresses.
const maxLimiterKeys = 1 << 16

// limiter is a token bucket per client address: burst requests at once,
// then one every interval.
type limiter struct {
	burst    float64
	interval time.Duration
	now      func() time.Time

	mu        sync.Mutex // guards the following
	buckets   map[string]*bucket
	lastSweep time.Time
	sweeps    int // how many sweeps ran (tests)
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was computed
}

func newLimiter(burst int, interval time.Duration, now func() time.Time) *limiter {
	return &limiter{burst: float64(burst), interval: interval, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for key; when there is none it returns how long
// until the next one.
func (l *limiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	// Full, sweep at most once an interval (a bucket gains one token an
	// interval, so sooner frees next to nothing): a sweep walks every
	// bucket, and a flood of new addresses must not buy one per request.
	since := now.Sub(l.lastSweep)
	if since > time.Minute || len(l.buckets) >= maxLimiterKeys && since >= l.interval {
		l.sweepLocked(now)
	}
	b := l.buckets[key]
	switch {
	case b == nil && len(l.buckets) >= maxLimiterKeys:
		return false, l.interval
	case b == nil:
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	default:
		b.tokens = l.refill(b, now)
		b.at = now
	}
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(l.interval))
	}
	b.tokens--
	return true, 0
}

func (l *limiter) refill(b *bucket, now time.Time) float64 {
	return min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.interval))
}

// sweepLocked forgets the addresses whose bucket is full again: they are
// the same as new.
func (l *limiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	l.sweeps++
	for k, b := range l.buckets {
		if l.refill(b, now) >= l.burst {
			delete(l.buckets, k)
		}
	}
}
