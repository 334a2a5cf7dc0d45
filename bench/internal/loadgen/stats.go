package loadgen

import (
	"math"
	"slices"
	"time"
)

// Dist summarizes latency samples, in milliseconds. Percentiles are
// nearest-rank over every sample (no histogram buckets); the Node adapter
// computes them the same way.
type Dist struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// Summarize sorts samples (in place) and summarizes them.
func Summarize(samples []time.Duration) Dist {
	if len(samples) == 0 {
		return Dist{}
	}
	slices.Sort(samples)
	var sum float64
	for _, s := range samples {
		sum += ms(s)
	}
	return Dist{
		N:    len(samples),
		P50:  ms(rank(samples, 0.50)),
		P99:  ms(rank(samples, 0.99)),
		Max:  ms(samples[len(samples)-1]),
		Mean: round3(sum / float64(len(samples))),
	}
}

// rank is the nearest-rank percentile of sorted samples.
func rank(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return round3(float64(d) / 1e6) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// median of a few values (W0 runs).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
