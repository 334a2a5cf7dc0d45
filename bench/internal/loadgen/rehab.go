package loadgen

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Read buffer sizes of benchmark clients: idle and churn clients only
// read small notices; flood receivers read bursts.
const (
	smallRBuf = 4 << 10
	floodRBuf = 64 << 10
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
	starts := make([]time.Duration, 0, n)
	apis := make([]time.Duration, 0, n)
	var ids []int64
	for range n {
		u, p := NewUUID(), NewUUID()
		t0 := time.Now()
		s, err := srv.StartSession(ctx, []string{u}, []string{p})
		if err != nil {
			return W1Result{}, err
		}
		apis = append(apis, time.Since(t0))
		code, err := srv.GetPage(ctx, s.Link(p))
		if err != nil {
			return W1Result{}, err
		}
		if code != 200 {
			return W1Result{}, fmt.Errorf("session link answered %d", code)
		}
		starts = append(starts, time.Since(t0))
		ids = append(ids, s.ID)
	}
	if err := sleepCtx(ctx, o.W0Settle); err != nil {
		return W1Result{}, err
	}
	srv.Quiet(time.Second)
	after, err := srv.Proc()
	if err != nil {
		return W1Result{}, err
	}
	var children int
	for _, pid := range Children(srv.Pid) {
		if st, err := ReadProc(pid); err == nil {
			after.RSSkB += st.RSSkB
			after.AnonkB += st.AnonkB
			children++
		}
	}
	if child && children < n {
		return W1Result{}, fmt.Errorf("child-process runner: %d children for %d sessions", children, n)
	}
	stops := make([]time.Duration, 0, n)
	for _, id := range ids {
		t0 := time.Now()
		if err := srv.StopSession(ctx, id); err != nil {
			return W1Result{}, err
		}
		stops = append(stops, time.Since(t0))
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

// W2Result is joining and 1:1 call setup.
type W2Result struct {
	JoinSeq    Dist `json:"join_sequential"` // dial → welcome, one at a time
	JoinConc   Dist `json:"join_concurrent"` // the same, all at once
	Concurrent int  `json:"concurrent"`
	// CPU time of the server and of the load generator during the
	// concurrent joins: which side the wait is on.
	ConcServerCPUms float64 `json:"concurrent_server_cpu_ms,omitempty"`
	ConcLoadCPUms   float64 `json:"concurrent_load_cpu_ms,omitempty"`
	ConcWallms      float64 `json:"concurrent_wall_ms,omitempty"`
	Call            Dist    `json:"call_setup"` // both dial → offer/answer and candidates all delivered
	Calls           int     `json:"calls"`
	Candidates      int     `json:"candidates"`
}

// sdpLike is the size of a typical audio+video SDP.
var sdpLike = padString(2400)

func padString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// RehabW2 measures joins (sequential and concurrent) and call setups.
func RehabW2(ctx context.Context, env *Env, o Options) (W2Result, error) {
	srv, err := StartServer(ctx, env, 8)
	if err != nil {
		return W2Result{}, err
	}
	defer srv.Stop()
	res := W2Result{Concurrent: o.W2Concurrent, Calls: o.W2Calls, Candidates: o.W2Candidates}
	addr := srv.WSAddr()

	// Sequential joins: one invited participant per join (at most 256 per
	// session), each leaving before the next joins.
	seq := make([]time.Duration, 0, o.W2Joins)
	for done := 0; done < o.W2Joins; {
		batch := min(o.W2Joins-done, 250)
		uuids := make([]string, batch)
		for i := range uuids {
			uuids[i] = NewUUID()
		}
		s, err := srv.StartSession(ctx, []string{NewUUID()}, uuids)
		if err != nil {
			return res, err
		}
		key := KeyOf(s.URLParticipants)
		for _, u := range uuids {
			jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			t0 := time.Now()
			p, err := Join(jctx, addr, s.Port, key, u, "p", smallRBuf)
			d := time.Since(t0)
			cancel()
			if err != nil {
				return res, err
			}
			seq = append(seq, d)
			p.Close()
		}
		done += batch
		if err := srv.StopSession(ctx, s.ID); err != nil {
			return res, err
		}
	}
	res.JoinSeq = Summarize(seq)

	// Concurrent joins into one session.
	uuids := make([]string, o.W2Concurrent)
	for i := range uuids {
		uuids[i] = NewUUID()
	}
	s, err := srv.StartSession(ctx, []string{NewUUID()}, uuids)
	if err != nil {
		return res, err
	}
	key := KeyOf(s.URLParticipants)
	conc := make([]time.Duration, len(uuids))
	peers := make([]*Peer, len(uuids))
	gate := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, len(uuids))
	for i, u := range uuids {
		wg.Go(func() {
			<-gate
			jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			t0 := time.Now()
			peers[i], errs[i] = Join(jctx, addr, s.Port, key, u, "p", smallRBuf)
			conc[i] = time.Since(t0)
		})
	}
	s0, l0, w0 := cpuTicksOr0(srv.Pid), SelfCPUTicks(), time.Now()
	close(gate)
	wg.Wait()
	res.ConcWallms = ms(time.Since(w0))
	res.ConcServerCPUms = 1000 * CPUSeconds(cpuTicksOr0(srv.Pid)-s0)
	res.ConcLoadCPUms = 1000 * CPUSeconds(SelfCPUTicks()-l0)
	for i, p := range peers {
		if errs[i] != nil {
			err = errs[i]
		}
		if p != nil {
			p.CloseNow()
		}
	}
	if err != nil {
		return res, err
	}
	res.JoinConc = Summarize(conc)
	if err := srv.StopSession(ctx, s.ID); err != nil {
		return res, err
	}

	// Call setups: a user (caller) and a participant, fresh invitees each
	// time so that a previous call's peers cannot be mistaken for them.
	calls := make([]time.Duration, 0, o.W2Calls)
	for done := 0; done < o.W2Calls; {
		batch := min(o.W2Calls-done, 250)
		us, ps := make([]string, batch), make([]string, batch)
		for i := range batch {
			us[i], ps[i] = NewUUID(), NewUUID()
		}
		s, err := srv.StartSession(ctx, us, ps)
		if err != nil {
			return res, err
		}
		for i := range batch {
			d, err := callSetup(ctx, addr, s.Port, KeyOf(s.URLUsers), KeyOf(s.URLParticipants), us[i], ps[i], o.W2Candidates)
			if err != nil {
				return res, err
			}
			calls = append(calls, d)
		}
		done += batch
		if err := srv.StopSession(ctx, s.ID); err != nil {
			return res, err
		}
	}
	res.Call = Summarize(calls)
	return res, srv.Stop()
}

func cpuTicksOr0(pid int) int64 {
	t, _ := cpuTicks(pid)
	return t
}

// callSetup runs one 1:1 call setup and returns its duration: both dial and
// join at once; the caller waits until it sees the callee, sends an offer;
// the callee answers; then each side trickles half of the candidates. It
// ends when both sides have everything.
func callSetup(ctx context.Context, addr string, port int, ukey, pkey, u, p string, candidates int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	dl, _ := ctx.Deadline()
	half := candidates / 2
	cand := func(to string, i int) []byte {
		return fmt.Appendf(nil, `{"type":"signal","to":"%s","data":{"candidate":{"candidate":"candidate:%d 1 udp 2122260223 192.168.1.%d 5%04d typ host generation 0 ufrag abcd network-id 1","sdpMid":"0","sdpMLineIndex":0}}}`, to, i, i%250, i)
	}
	var wg sync.WaitGroup
	var callerErr, calleeErr error
	t0 := time.Now()
	var end [2]time.Time
	wg.Go(func() { // caller (user)
		callerErr = func() error {
			a, err := Join(ctx, addr, port, ukey, u, "caller", smallRBuf)
			if err != nil {
				return err
			}
			defer a.Close()
			a.ReadDeadline(dl)
			callee := ""
			others, err := a.Others()
			if err != nil {
				return err
			}
			for _, q := range others {
				if q.UUID == p {
					callee = q.ID
				}
			}
			for callee == "" {
				m, err := a.Read()
				if err != nil {
					return err
				}
				if isType(m, "peer-joined") && string(field(m, "uuid")) == p {
					callee = string(field(m, "id"))
				}
			}
			if err := a.Send(fmt.Appendf(nil, `{"type":"signal","to":"%s","data":{"sdp":{"type":"offer","sdp":"%s"}}}`, callee, sdpLike)); err != nil {
				return err
			}
			if err := waitSignals(a, 1); err != nil { // the answer
				return err
			}
			for i := range half {
				if err := a.Send(cand(callee, i)); err != nil {
					return err
				}
			}
			if err := waitSignals(a, candidates-half); err != nil {
				return err
			}
			end[0] = time.Now()
			return nil
		}()
	})
	wg.Go(func() { // callee (participant)
		calleeErr = func() error {
			b, err := Join(ctx, addr, port, pkey, p, "callee", smallRBuf)
			if err != nil {
				return err
			}
			defer b.Close()
			b.ReadDeadline(dl)
			var caller string
			for caller == "" { // the offer
				m, err := b.Read()
				if err != nil {
					return err
				}
				if isType(m, "signal") {
					caller = string(field(m, "from"))
				}
			}
			if err := b.Send(fmt.Appendf(nil, `{"type":"signal","to":"%s","data":{"sdp":{"type":"answer","sdp":"%s"}}}`, caller, sdpLike)); err != nil {
				return err
			}
			for i := range candidates - half {
				if err := b.Send(cand(caller, 100+i)); err != nil {
					return err
				}
			}
			if err := waitSignals(b, half); err != nil {
				return err
			}
			end[1] = time.Now()
			return nil
		}()
	})
	wg.Wait()
	if callerErr != nil {
		return 0, fmt.Errorf("caller: %w", callerErr)
	}
	if calleeErr != nil {
		return 0, fmt.Errorf("callee: %w", calleeErr)
	}
	last := end[0]
	if end[1].After(last) {
		last = end[1]
	}
	return last.Sub(t0), nil
}

// waitSignals reads until n signal messages arrived.
func waitSignals(p *Peer, n int) error {
	for n > 0 {
		m, err := p.Read()
		if err != nil {
			return err
		}
		if isType(m, "signal") {
			n--
		} else if isType(m, "error") {
			return fmt.Errorf("server error: %s", m)
		}
	}
	return nil
}

// W3Size is idle connections at one size.
type W3Size struct {
	Peers        int     `json:"peers"`
	Sessions     int     `json:"sessions"`
	ConnectSec   float64 `json:"connect_s"`
	BaseRSSkB    int64   `json:"rss_sessions_only_kb"`
	RSSkB        int64   `json:"rss_with_peers_kb"`
	PerPeerkB    float64 `json:"rss_per_peer_kb"`
	AnonPerPeer  float64 `json:"anon_per_peer_kb,omitempty"`
	GorPerPeer   float64 `json:"goroutines_per_peer,omitempty"`
	HeapPerPeer  float64 `json:"go_heap_per_peer_kb,omitempty"`  // Go heap in use
	StackPerPeer float64 `json:"go_stack_per_peer_kb,omitempty"` // goroutine stacks
	FDsPerPeer   float64 `json:"fds_per_peer"`
	ThreadsAfter int     `json:"threads"`
	IdleCPUPct   float64 `json:"idle_cpu_pct"`
	Skipped      string  `json:"skipped,omitempty"`
}

// W3Result is idle connections at every size.
type W3Result struct {
	Sizes []W3Size `json:"sizes"`
}

// RehabW3 connects N peers (W3PerSession per session) and holds them idle.
func RehabW3(ctx context.Context, env *Env, o Options) (W3Result, error) {
	var res W3Result
	for _, n := range o.W3Sizes {
		if uint64(n)+200 > env.NoFile {
			res.Sizes = append(res.Sizes, W3Size{Peers: n, Skipped: fmt.Sprintf("open-file limit %d too low", env.NoFile)})
			continue
		}
		sz, err := rehabIdle(ctx, env, o, n)
		if err != nil {
			return res, fmt.Errorf("%d peers: %w", n, err)
		}
		res.Sizes = append(res.Sizes, sz)
	}
	return res, nil
}

func rehabIdle(ctx context.Context, env *Env, o Options, n int) (W3Size, error) {
	per := o.W3PerSession
	nsess := (n + per - 1) / per
	srv, err := StartServer(ctx, env, nsess+2)
	if err != nil {
		return W3Size{}, err
	}
	defer srv.Stop()
	type slot struct {
		port int
		key  string
		uuid string
	}
	slots := make([]slot, 0, n)
	for i := range nsess {
		k := min(per, n-i*per)
		uuids := make([]string, k)
		for j := range uuids {
			uuids[j] = NewUUID()
		}
		s, err := srv.StartSession(ctx, []string{NewUUID()}, uuids)
		if err != nil {
			return W3Size{}, err
		}
		for _, u := range uuids {
			slots = append(slots, slot{s.Port, KeyOf(s.URLParticipants), u})
		}
	}
	if err := sleepCtx(ctx, o.W3Settle); err != nil {
		return W3Size{}, err
	}
	srv.Quiet(time.Second)
	before, err := srv.Proc()
	if err != nil {
		return W3Size{}, err
	}
	peers := make([]*Peer, n)
	var wg sync.WaitGroup
	defer func() {
		for _, p := range peers {
			if p != nil {
				p.CloseNow()
			}
		}
		wg.Wait()
	}()
	t0 := time.Now()
	err = parallel(ctx, n, 32, func(i int) error {
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		p, err := Join(jctx, srv.WSAddr(), slots[i].port, slots[i].key, slots[i].uuid, "idle", smallRBuf)
		if err != nil {
			return err
		}
		peers[i] = p
		wg.Go(func() { // drain peer-joined notices and answer pings
			for {
				if _, err := p.Read(); err != nil {
					return
				}
			}
		})
		return nil
	})
	if err != nil {
		return W3Size{}, err
	}
	connect := time.Since(t0)
	if err := sleepCtx(ctx, o.W3Settle); err != nil {
		return W3Size{}, err
	}
	srv.Quiet(time.Second)
	after, err := srv.Proc()
	if err != nil {
		return W3Size{}, err
	}
	// Idle CPU: the server's CPU time over a window with every peer idle.
	c0 := after.CPUTicks
	w0 := time.Now()
	if err := sleepCtx(ctx, o.W3IdleCPU); err != nil {
		return W3Size{}, err
	}
	c1, _ := cpuTicks(srv.Pid)
	fn := float64(n)
	return W3Size{Peers: n, Sessions: nsess, ConnectSec: round3(connect.Seconds()),
		BaseRSSkB: before.RSSkB, RSSkB: after.RSSkB,
		PerPeerkB:    round3(float64(after.RSSkB-before.RSSkB) / fn),
		AnonPerPeer:  round3(float64(after.AnonkB-before.AnonkB) / fn),
		GorPerPeer:   round3(float64(after.Goroutine-before.Goroutine) / fn),
		HeapPerPeer:  round3(float64(after.HeapInuse-before.HeapInuse) / 1024 / fn),
		StackPerPeer: round3(float64(after.StackInuse-before.StackInuse) / 1024 / fn),
		FDsPerPeer:   round3(float64(after.FDs-before.FDs) / fn),
		ThreadsAfter: after.Threads,
		IdleCPUPct:   round3(100 * CPUSeconds(c1-c0) / time.Since(w0).Seconds()),
	}, nil
}

// FloodRun is one relay flood (W4) or fan-out (W5).
type FloodRun struct {
	Pairs        int     `json:"pairs,omitempty"`     // W4
	Receivers    int     `json:"receivers,omitempty"` // W5
	Window       int     `json:"window"`
	Bytes        int     `json:"message_bytes"`
	Seconds      float64 `json:"seconds"`
	Sent         int64   `json:"sent"`
	Delivered    int64   `json:"delivered"`
	MsgsPerSec   float64 `json:"delivered_per_s"`
	SendsPerSec  float64 `json:"sent_per_s,omitempty"`
	Lat          Dist    `json:"latency"`
	ServerCPUPct float64 `json:"server_cpu_pct"`
	LoadCPUPct   float64 `json:"load_cpu_pct,omitempty"`
	// CPU time per delivered message: steadier than rates on a shared
	// machine, and 1e6/ServerUsPerMsg bounds what one server core can relay.
	ServerUsPerMsg float64 `json:"server_cpu_us_per_msg"`
	LoadUsPerMsg   float64 `json:"load_cpu_us_per_msg,omitempty"`
	// Repeats are the delivered rates of every repeat of this size, each on
	// a fresh server; the run reported is the median one.
	Repeats []float64 `json:"repeats_delivered_per_s,omitempty"`
}

// medianRun runs f n times and returns the run with the median rate.
func medianRun(ctx context.Context, n int, f func() (FloodRun, error)) (FloodRun, error) {
	var runs []FloodRun
	for range max(1, n) {
		r, err := f()
		if err != nil {
			return r, err
		}
		runs = append(runs, r)
		if ctx.Err() != nil {
			break
		}
	}
	slices.SortFunc(runs, func(a, b FloodRun) int { return cmp.Compare(a.MsgsPerSec, b.MsgsPerSec) })
	m := runs[len(runs)/2]
	for _, r := range runs {
		m.Repeats = append(m.Repeats, r.MsgsPerSec)
	}
	return m, nil
}

func (r *FloodRun) perMsg(serverTicks, loadTicks int64) {
	if r.Delivered > 0 {
		r.ServerUsPerMsg = round3(1e6 * CPUSeconds(serverTicks) / float64(r.Delivered))
		if loadTicks > 0 {
			r.LoadUsPerMsg = round3(1e6 * CPUSeconds(loadTicks) / float64(r.Delivered))
		}
	}
}

// W4Result is relay floods at every size.
type W4Result struct {
	Runs []FloodRun `json:"runs"`
}

// window is the in-flight bound of one sender towards its receivers: a
// message is in flight until every receiver has it.
type window struct {
	size int
	sent atomic.Int64
	recv []atomic.Int64
	wake chan struct{}
}

func newWindow(size, receivers int) *window {
	return &window{size: size, recv: make([]atomic.Int64, receivers), wake: make(chan struct{}, 1)}
}

func (w *window) minRecv() int64 {
	m := w.recv[0].Load()
	for i := 1; i < len(w.recv); i++ {
		m = min(m, w.recv[i].Load())
	}
	return m
}

func (w *window) got(i int) {
	w.recv[i].Add(1)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// measure is the measurement window of a flood, in clock() units. It is
// set once the clients are connected, while receivers already run.
type measure struct{ from, to atomic.Int64 }

func newMeasure() *measure {
	m := &measure{}
	m.from.Store(1 << 62)
	m.to.Store(1 << 62)
	return m
}

// receiver collects latencies of the messages delivered in the window.
// Only its reader goroutine touches it until that goroutine has ended.
type receiver struct {
	lat       []time.Duration
	delivered int64
}

func (r *receiver) take(m []byte, mw *measure) {
	now := clock()
	if now < mw.from.Load() || now >= mw.to.Load() {
		return
	}
	if t, ok := stamp(m); ok {
		r.lat = append(r.lat, time.Duration(now-t))
	}
	r.delivered++
}

// flow is one sender: frames from fb to p, bounded by w.
type flow struct {
	p  *Peer
	fb *frameBuilder
	w  *window
}

// sendLoop sends while the window allows, until stop.
func (f flow) sendLoop(stop <-chan struct{}) error {
	w := f.w
	bufs := make([][]byte, w.size)
	frames := make([][]byte, w.size)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		n := w.sent.Load()
		free := int64(w.size) - (n - w.minRecv())
		if free <= 0 {
			select {
			case <-w.wake:
			case <-stop:
				return nil
			}
			continue
		}
		t := clock()
		for i := range free {
			bufs[i] = f.fb.frame(bufs[i], t)
			frames[i] = bufs[i]
		}
		if err := f.p.Send(frames[:free]...); err != nil {
			return err
		}
		w.sent.Add(free)
	}
}

// drive runs the senders for warm-up + d, measures the last d, stops the
// senders, lets in-flight messages arrive, then calls finish (which must
// close the clients and wait for their readers) and summarizes.
func drive(ctx context.Context, srv *Server, flows []flow, mw *measure, recvs []*receiver, warm, d time.Duration, finish func()) (FloodRun, error) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, len(flows))
	t0 := clock()
	mw.from.Store(t0 + int64(warm))
	mw.to.Store(t0 + int64(warm+d))
	for i, f := range flows {
		wg.Go(func() { errs[i] = f.sendLoop(stop) })
	}
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt()
	if err := sleepCtx(ctx, warm); err != nil {
		return FloodRun{}, err
	}
	s0, _ := cpuTicks(srv.Pid)
	l0 := SelfCPUTicks()
	w0 := time.Now()
	if err := sleepCtx(ctx, time.Until(w0.Add(d))); err != nil {
		return FloodRun{}, err
	}
	s1, _ := cpuTicks(srv.Pid)
	l1 := SelfCPUTicks()
	wall := time.Since(w0).Seconds()
	halt()
	var sent int64
	for _, f := range flows {
		sent += f.w.sent.Load()
	}
	// Let what is in flight arrive (bounded), so the next run starts clean.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		done := true
		for _, f := range flows {
			if f.w.minRecv() < f.w.sent.Load() {
				done = false
				break
			}
		}
		if done {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	finish()
	for _, e := range errs {
		if e != nil {
			return FloodRun{}, e
		}
	}
	var lat []time.Duration
	var delivered int64
	for _, r := range recvs {
		lat = append(lat, r.lat...)
		delivered += r.delivered
	}
	if !srv.Alive() {
		return FloodRun{}, fmt.Errorf("server died: %s", srv.LogTail())
	}
	run := FloodRun{Seconds: round3(d.Seconds()), Sent: sent, Delivered: delivered,
		MsgsPerSec:   float64(int64(float64(delivered) / d.Seconds())),
		Lat:          Summarize(lat),
		ServerCPUPct: round3(100 * CPUSeconds(s1-s0) / wall),
		LoadCPUPct:   round3(100 * CPUSeconds(l1-l0) / wall),
	}
	run.perMsg(s1-s0, l1-l0)
	return run, nil
}

// RehabW4 runs the relay flood for every pair count.
func RehabW4(ctx context.Context, env *Env, o Options) (W4Result, error) {
	var res W4Result
	for _, pairs := range o.W4Pairs {
		win := o.W4Window
		if pairs == 1 {
			win = 1 // one message at a time: the latency floor
		}
		r, err := medianRun(ctx, o.W4Repeat, func() (FloodRun, error) { return rehabFlood(ctx, env, o, pairs, win) })
		if err != nil {
			return res, fmt.Errorf("%d pairs: %w", pairs, err)
		}
		res.Runs = append(res.Runs, r)
	}
	return res, nil
}

// clients tracks benchmark clients and their reader goroutines.
type clients struct {
	mu      sync.Mutex
	peers   []*Peer
	readers sync.WaitGroup
}

func (c *clients) add(p *Peer) {
	c.mu.Lock()
	c.peers = append(c.peers, p)
	c.mu.Unlock()
}

// read runs f on every message of p until its connection ends.
func (c *clients) read(p *Peer, f func(m []byte)) {
	c.readers.Go(func() {
		for {
			m, err := p.Read()
			if err != nil {
				return
			}
			if f != nil {
				f(m)
			}
		}
	})
}

// closeAll closes every client and waits for the readers.
func (c *clients) closeAll() {
	c.mu.Lock()
	for _, p := range c.peers {
		p.CloseNow()
	}
	c.peers = nil
	c.mu.Unlock()
	c.readers.Wait()
}

func rehabFlood(ctx context.Context, env *Env, o Options, pairs, win int) (FloodRun, error) {
	srv, err := StartServer(ctx, env, pairs+2)
	if err != nil {
		return FloodRun{}, err
	}
	defer srv.Stop()
	var cl clients
	defer cl.closeAll()
	mw := newMeasure()
	flows := make([]flow, pairs)
	recvs := make([]*receiver, pairs)
	err = parallel(ctx, pairs, 16, func(i int) error {
		u, p := NewUUID(), NewUUID()
		s, err := srv.StartSession(ctx, []string{u}, []string{p})
		if err != nil {
			return err
		}
		jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		a, err := Join(jctx, srv.WSAddr(), s.Port, KeyOf(s.Link(u)), u, "a", smallRBuf)
		if err != nil {
			return err
		}
		cl.add(a)
		b, err := Join(jctx, srv.WSAddr(), s.Port, KeyOf(s.Link(p)), p, "b", floodRBuf)
		if err != nil {
			return err
		}
		cl.add(b)
		w, r := newWindow(win, 1), &receiver{}
		flows[i] = flow{p: a, fb: newFrameBuilder(o.W4Size, `{"type":"signal","to":"`+b.ID+`","data":`, `}`), w: w}
		recvs[i] = r
		cl.read(a, nil) // a only gets peer-joined; keep answering pings
		cl.read(b, func(m []byte) {
			if isType(m, "signal") {
				r.take(m, mw)
				w.got(0)
			}
		})
		return nil
	})
	if err != nil {
		return FloodRun{}, err
	}
	run, err := drive(ctx, srv, flows, mw, recvs, o.W4Warmup, o.W4Duration, cl.closeAll)
	if err != nil {
		return FloodRun{}, err
	}
	run.Pairs, run.Window, run.Bytes = pairs, win, o.W4Size
	return run, srv.Stop()
}

// W5Result is fan-out at every room size.
type W5Result struct {
	Runs []FloodRun `json:"runs"`
}

// RehabW5 has one user broadcast application messages to N participants.
func RehabW5(ctx context.Context, env *Env, o Options) (W5Result, error) {
	var res W5Result
	for _, n := range o.W5Receivers {
		r, err := medianRun(ctx, o.W4Repeat, func() (FloodRun, error) { return rehabFanout(ctx, env, o, n) })
		if err != nil {
			return res, fmt.Errorf("%d receivers: %w", n, err)
		}
		res.Runs = append(res.Runs, r)
	}
	return res, nil
}

func rehabFanout(ctx context.Context, env *Env, o Options, n int) (FloodRun, error) {
	srv, err := StartServer(ctx, env, 4)
	if err != nil {
		return FloodRun{}, err
	}
	defer srv.Stop()
	var cl clients
	defer cl.closeAll()
	u := NewUUID()
	ps := make([]string, n)
	for i := range ps {
		ps[i] = NewUUID()
	}
	s, err := srv.StartSession(ctx, []string{u}, ps)
	if err != nil {
		return FloodRun{}, err
	}
	mw := newMeasure()
	w := newWindow(o.W5Window, n)
	recvs := make([]*receiver, n)
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i, p := range ps { // receivers first, so the sender's welcome lists them all
		b, err := Join(jctx, srv.WSAddr(), s.Port, KeyOf(s.URLParticipants), p, "r", floodRBuf)
		if err != nil {
			return FloodRun{}, err
		}
		cl.add(b)
		r := &receiver{}
		recvs[i] = r
		cl.read(b, func(m []byte) {
			if isType(m, "message") {
				r.take(m, mw)
				w.got(i)
			}
		})
	}
	a, err := Join(jctx, srv.WSAddr(), s.Port, KeyOf(s.Link(u)), u, "sender", smallRBuf)
	if err != nil {
		return FloodRun{}, err
	}
	cl.add(a)
	cl.read(a, nil)
	f := flow{p: a, fb: newFrameBuilder(o.W4Size, `{"type":"message","topic":"x-bench","data":`, `}`), w: w}
	run, err := drive(ctx, srv, []flow{f}, mw, recvs, o.W4Warmup, o.W5Duration, cl.closeAll)
	if err != nil {
		return FloodRun{}, err
	}
	run.Receivers, run.Window, run.Bytes = n, o.W5Window, o.W4Size
	run.SendsPerSec = float64(int64(float64(run.Delivered) / float64(n) / o.W5Duration.Seconds()))
	return run, srv.Stop()
}
