package loadgen

// W0 and W1: starting the service and starting sessions.

import (
	"context"
	"fmt"
	"time"
)

// W0Run is one start of the service.
type W0Run struct {
	ListenMs   float64 `json:"listen_ms"` // start → public port accepts TCP
	ReadyMs    float64 `json:"ready_ms"`  // start → /readyz 200 (or, for EasyRTC, /status?key= 200)
	IdleRSSkB  int64   `json:"idle_rss_kb"`
	HWMkB      int64   `json:"max_rss_kb"`
	Threads    int     `json:"threads"`
	Goroutines int     `json:"goroutines,omitempty"`
	FDs        int     `json:"fds"`
}

// W0Result is start-up and idle footprint over several runs.
type W0Result struct {
	Runs        []W0Run `json:"runs"`
	ReadyMedian float64 `json:"ready_ms_median"`
	RSSMedian   float64 `json:"idle_rss_kb_median"`
}

func summarizeW0(runs []W0Run) W0Result {
	var ready, rss []float64
	for _, r := range runs {
		ready = append(ready, r.ReadyMs)
		rss = append(rss, float64(r.IdleRSSkB))
	}
	return W0Result{Runs: runs, ReadyMedian: median(ready), RSSMedian: median(rss)}
}

// RehabW0 starts the service W0Runs times.
func RehabW0(ctx context.Context, env *Env, o Options) (W0Result, error) {
	var runs []W0Run
	for range o.W0Runs {
		srv, err := StartServer(ctx, env, 50)
		if err != nil {
			return W0Result{}, err
		}
		if err := sleepCtx(ctx, o.W0Settle); err != nil {
			srv.Stop()
			return W0Result{}, err
		}
		srv.Quiet(time.Second)
		st, err := srv.Proc()
		if err != nil {
			srv.Stop()
			return W0Result{}, err
		}
		runs = append(runs, W0Run{ListenMs: ms(srv.Listen), ReadyMs: ms(srv.Ready), IdleRSSkB: st.RSSkB, HWMkB: st.HWMkB,
			Threads: st.Threads, Goroutines: st.Goroutine, FDs: st.FDs})
		if err := srv.Stop(); err != nil {
			return W0Result{}, err
		}
	}
	return summarizeW0(runs), nil
}

// W1Result is session start.
type W1Result struct {
	Sessions      int     `json:"sessions"`
	Start         Dist    `json:"start"`         // start call → session page 200
	API           Dist    `json:"api_only"`      // the start call alone
	RSSBeforekB   int64   `json:"rss_before_kb"` // no session
	RSSAfterkB    int64   `json:"rss_after_kb"`  // every session running, idle
	PerSessionkB  float64 `json:"rss_per_session_kb"`
	AnonPerSessKB float64 `json:"anon_per_session_kb,omitempty"`
	GorPerSession float64 `json:"goroutines_per_session,omitempty"`
	FDsPerSession float64 `json:"fds_per_session"`
	Stop          Dist    `json:"stop,omitempty"`
}

// RehabW1 starts W1Sessions sessions one after the other, each timed from
// the start call until its participant link answers 200, and keeps them
// running to measure what an idle session costs. With child set, each
// session runs in a child process (process-per-session mode) and the RSS
// of the children counts too.
func RehabW1(ctx context.Context, env *Env, o Options, child bool) (W1Result, error) {
	n := o.W1Sessions
	var opts []ServerOption
	if child {
		opts = append(opts, ChildRunner)
	}
	srv, err := StartServer(ctx, env, n+2, opts...)
	if err != nil {
		return W1Result{}, err
	}
	defer srv.Stop()
	// Warm the API path once (first-request costs: TLS-free, but lazy
	// init of handlers and the store's first write), then measure from idle.
	warm, err := srv.StartSession(ctx, []string{NewUUID()}, []string{NewUUID()})
	if err != nil {
		return W1Result{}, err
	}
	if err := srv.StopSession(ctx, warm.ID); err != nil {
		return W1Result{}, err
	}
	if err := sleepCtx(ctx, o.W0Settle); err != nil {
		return W1Result{}, err
	}
	srv.Quiet(time.Second)
	before, err := srv.Proc()
	if err != nil {
		return W1Result{}, err
	}
	starts, apis, ids, err := startTimed(ctx, srv, n)
	if err != nil {
		return W1Result{}, err
	}
	if err := sleepCtx(ctx, o.W0Settle); err != nil {
		return W1Result{}, err
	}
	srv.Quiet(time.Second)
	after, err := srv.Proc()
	if err != nil {
		return W1Result{}, err
	}
	children := addChildren(srv, &after)
	if child && children < n {
		return W1Result{}, fmt.Errorf("child-process runner: %d children for %d sessions", children, n)
	}
	stops, err := stopTimed(ctx, srv, ids)
	if err != nil {
		return W1Result{}, err
	}
	fn := float64(n)
	return W1Result{Sessions: n, Start: Summarize(starts), API: Summarize(apis), Stop: Summarize(stops),
		RSSBeforekB: before.RSSkB, RSSAfterkB: after.RSSkB,
		PerSessionkB:  round3(float64(after.RSSkB-before.RSSkB) / fn),
		AnonPerSessKB: round3(float64(after.AnonkB-before.AnonkB) / fn),
		GorPerSession: round3(float64(after.Goroutine-before.Goroutine) / fn),
		FDsPerSession: round3(float64(after.FDs-before.FDs) / fn),
	}, srv.Stop()
}

// startTimed starts n sessions one after the other and returns how long
// each took until its participant link answered 200 (starts), the start
// call alone (apis), and the session ids.
func startTimed(ctx context.Context, srv *Server, n int) (starts, apis []time.Duration, ids []int64, err error) {
	starts = make([]time.Duration, 0, n)
	apis = make([]time.Duration, 0, n)
	for range n {
		u, p := NewUUID(), NewUUID()
		t0 := time.Now()
		s, err := srv.StartSession(ctx, []string{u}, []string{p})
		if err != nil {
			return nil, nil, nil, err
		}
		apis = append(apis, time.Since(t0))
		code, err := srv.GetPage(ctx, s.Link(p))
		if err != nil {
			return nil, nil, nil, err
		}
		if code != 200 {
			return nil, nil, nil, fmt.Errorf("session link answered %d", code)
		}
		starts = append(starts, time.Since(t0))
		ids = append(ids, s.ID)
	}
	return starts, apis, ids, nil
}

// addChildren adds the memory of the server's child processes to st and
// returns how many there are.
func addChildren(srv *Server, st *ProcStats) int {
	var children int
	for _, pid := range Children(srv.Pid) {
		if c, err := ReadProc(pid); err == nil {
			st.RSSkB += c.RSSkB
			st.AnonkB += c.AnonkB
			children++
		}
	}
	return children
}

// stopTimed stops the sessions one after the other, timing each.
func stopTimed(ctx context.Context, srv *Server, ids []int64) ([]time.Duration, error) {
	stops := make([]time.Duration, 0, len(ids))
	for _, id := range ids {
		t0 := time.Now()
		if err := srv.StopSession(ctx, id); err != nil {
			return nil, err
		}
		stops = append(stops, time.Since(t0))
	}
	return stops, nil
}
