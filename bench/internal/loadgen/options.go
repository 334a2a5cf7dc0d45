package loadgen

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the sizes of every workload.
type Options struct {
	Quick bool `json:"quick"`

	W0Runs   int           `json:"w0_runs"`
	W0Settle time.Duration `json:"w0_settle"` // start → idle RSS reading

	W1Sessions     int `json:"w1_sessions"`
	W1EasySessions int `json:"w1_easyrtc_sessions"` // processes kept alive at once (OpenTera's pool)

	W2Joins      int `json:"w2_joins"`
	W2Concurrent int `json:"w2_concurrent"`
	W2Calls      int `json:"w2_calls"`
	W2Candidates int `json:"w2_candidates"` // in total, half from each side

	W3Sizes      []int         `json:"w3_sizes"`
	W3PerSession int           `json:"w3_per_session"`
	W3Settle     time.Duration `json:"w3_settle"`
	W3IdleCPU    time.Duration `json:"w3_idle_cpu_window"`

	W4Pairs    []int         `json:"w4_pairs"`
	W4Window   int           `json:"w4_window"`
	W4Size     int           `json:"w4_message_bytes"`
	W4Duration time.Duration `json:"w4_duration"`
	W4Warmup   time.Duration `json:"w4_warmup"`
	W4Repeat   int           `json:"w4_repeat"` // runs per size (W4 and W5); the median one is reported

	W5Receivers []int         `json:"w5_receivers"`
	W5Window    int           `json:"w5_window"`
	W5Duration  time.Duration `json:"w5_duration"`

	W6Duration time.Duration `json:"w6_duration"`
	W6Workers  int           `json:"w6_workers"`
	W6Settle   time.Duration `json:"w6_settle_max"` // also W7's, after everyone has left

	W7Duration   time.Duration `json:"w7_duration"`
	W7Sessions   int           `json:"w7_sessions"`
	W7Peers      int           `json:"w7_honest_peers"` // in total, spread evenly over the sessions
	W7Flooders   int           `json:"w7_flooders"`     // one each in the first sessions
	W7Idle       int           `json:"w7_idle_sockets"` // upgraded, never joined
	W7ChurnEvery time.Duration `json:"w7_churn_every"`  // one honest peer leaves and rejoins
	W7ChatEvery  time.Duration `json:"w7_chat_every"`   // per honest peer
	W7FloodBurst int           `json:"w7_flood_burst"`  // chat messages per burst
	W7FloodPause time.Duration `json:"w7_flood_pause"`  // between bursts
	W7Sample     time.Duration `json:"w7_sample"`       // CPU and /healthz sampling period

	W9Starts           int           `json:"w9_session_starts"`
	W9Joins            int           `json:"w9_joins"`
	W9Concurrent       int           `json:"w9_concurrent_joins"`
	W9Pairs            int           `json:"w9_pairs"`
	W9Duration         time.Duration `json:"w9_flood_duration"`
	W9Idle             time.Duration `json:"w9_idle"` // Redis commands counted with the sessions held, nobody connected
	W9LeaseMS          int           `json:"w9_lease_ms"`
	W9Trials           int           `json:"w9_failover_trials"`
	W9FailoverSessions int           `json:"w9_failover_sessions"`
	W9Clients          int           `json:"w9_failover_clients"`

	W8Scenarios string        `json:"w8_scenarios"` // SFU shapes, ParseSFUScenarios' syntax
	W8Duration  time.Duration `json:"w8_duration"`  // measured window per scenario
	W8Warmup    time.Duration `json:"w8_warmup"`    // every subscription receiving → window
	W8NoAudio   bool          `json:"w8_no_audio"`  // publish the camera alone (Galène's figures are video only)
	W8Simulcast bool          `json:"w8_simulcast"` // publish the camera in three layers, as pages do
	// W8TWCC stamps a transport-wide sequence number on every published
	// packet, as browsers do, so that the server's transport-cc feedback
	// (its per-packet accounting) is part of what is measured.
	W8TWCC bool `json:"w8_twcc,omitempty"`
	// W8ToolProfile, when set, is where the tool's own CPU profile of each
	// measured window goes (FILE.<scenario>.pprof): where a received
	// packet's cost goes in the tool.
	W8ToolProfile string `json:"w8_tool_cpuprofile,omitempty"`
	// W8Idle, when set, adds a window after the measured one in which the
	// publishers send nothing while every connection stays up: what the
	// server's connections cost just by existing (ICE checks, reports,
	// ticks, timers).
	W8Idle time.Duration `json:"w8_idle,omitempty"`
}

// DefaultOptions are the sizes of the issue; quick ones finish in well
// under a minute in total.
func DefaultOptions(quick bool) Options {
	if quick {
		return Options{Quick: true,
			W0Runs: 1, W0Settle: 500 * time.Millisecond,
			W1Sessions: 10, W1EasySessions: 3,
			W2Joins: 10, W2Concurrent: 10, W2Calls: 5, W2Candidates: 10,
			W3Sizes: []int{20}, W3PerSession: 10, W3Settle: 300 * time.Millisecond, W3IdleCPU: 500 * time.Millisecond,
			W4Pairs: []int{1, 5}, W4Window: 10, W4Size: 200, W4Duration: 500 * time.Millisecond, W4Warmup: 200 * time.Millisecond, W4Repeat: 1,
			W5Receivers: []int{3}, W5Window: 10, W5Duration: 500 * time.Millisecond,
			W6Duration: 20 * time.Second, W6Workers: 2, W6Settle: 3 * time.Second,
			W7Duration: 3 * time.Second, W7Sessions: 4, W7Peers: 40, W7Flooders: 1, W7Idle: 20,
			W7ChurnEvery: 100 * time.Millisecond, W7ChatEvery: 2 * time.Second, W7FloodBurst: 300,
			W7FloodPause: 500 * time.Millisecond, W7Sample: 500 * time.Millisecond,
			W9Starts: 6, W9Joins: 6, W9Concurrent: 6, W9Pairs: 6, W9Duration: 500 * time.Millisecond, W9Idle: time.Second,
			W9LeaseMS: 3000, W9Trials: 2, W9FailoverSessions: 2, W9Clients: 6,
			W8Scenarios: "1x5/1,1x3,2x3", W8Duration: time.Second, W8Warmup: 300 * time.Millisecond,
		}
	}
	return Options{
		W0Runs: 5, W0Settle: 2 * time.Second,
		W1Sessions: 200, W1EasySessions: 50,
		W2Joins: 200, W2Concurrent: 100, W2Calls: 200, W2Candidates: 10,
		W3Sizes: []int{100, 1000, 10000}, W3PerSession: 10, W3Settle: 3 * time.Second, W3IdleCPU: 5 * time.Second,
		W4Pairs: []int{1, 50, 500}, W4Window: 10, W4Size: 200, W4Duration: 5 * time.Second, W4Warmup: time.Second, W4Repeat: 3,
		W5Receivers: []int{10, 50}, W5Window: 10, W5Duration: 5 * time.Second,
		W6Duration: 10 * time.Minute, W6Workers: 4, W6Settle: 150 * time.Second,
		W7Duration: 15 * time.Minute, W7Sessions: 100, W7Peers: 1000, W7Flooders: 5, W7Idle: 500,
		W7ChurnEvery: 100 * time.Millisecond, W7ChatEvery: 10 * time.Second, W7FloodBurst: 3000,
		W7FloodPause: 2 * time.Second, W7Sample: 10 * time.Second,
		W9Starts: 100, W9Joins: 200, W9Concurrent: 60, W9Pairs: 48, W9Duration: 5 * time.Second, W9Idle: 5 * time.Second,
		W9LeaseMS: 5000, W9Trials: 20, W9FailoverSessions: 3, W9Clients: 12,
		// Issue 11: 1 publisher × 100 subscribers, 6 × 6, 10 sessions of 4.
		W8Scenarios: "1x101/1,1x6,10x4", W8Duration: 20 * time.Second, W8Warmup: 3 * time.Second,
	}
}

// clockBase is the origin of payload timestamps: sender and receiver are
// in the same process, so one monotonic clock serves both.
var clockBase = time.Now()

func clock() int64 { return int64(time.Since(clockBase)) }

// parallel runs f(0..n-1) with at most limit at once and returns the first
// error; after an error the remaining calls are skipped.
func parallel(ctx context.Context, n, limit int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		mu    sync.Mutex
		first error
	)
	for range min(n, limit) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// errStopped means the run was interrupted.
var errStopped = errors.New("interrupted")

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return errStopped
	}
}
