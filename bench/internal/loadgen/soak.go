package loadgen

// W7: the soak (issue 12, "Beyond the list"). Honest peers in many
// sessions, some of them leaving and coming back all the time, a few
// hostile participants flooding their sessions with chat, and
// unauthenticated WebSockets that never join, reopened as soon as the
// server closes them; for a long time. It reports the service's CPU, its
// footprint at the start and end of the load, and every honest peer the
// service disconnected (there must be none).

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// W7Result is one soak.
type W7Result struct {
	Seconds     float64 `json:"seconds"`
	Sessions    int     `json:"sessions"`
	Peers       int     `json:"honest_peers"`
	Flooders    int     `json:"flooders"`
	IdleSockets int     `json:"idle_sockets"`
	ConnectSec  float64 `json:"connect_s"` // the honest peers' first joins

	Rejoins     int64 `json:"churn_rejoins"`
	ChurnErrors int64 `json:"churn_errors"` // an honest peer that could not come back
	ChatSent    int64 `json:"honest_chat_sent"`
	ChatRecv    int64 `json:"honest_messages_received"`

	// HonestCut counts honest peers the service disconnected, by close
	// code ("0": the connection broke without one). Must stay empty.
	HonestCut   int              `json:"honest_disconnected"`
	HonestCodes map[string]int64 `json:"honest_close_codes,omitempty"`

	FloodSent    int64            `json:"flood_messages_sent"`
	FloodJoins   int64            `json:"flooder_joins"`
	FloodRefused int64            `json:"flooder_joins_refused"`
	FloodCodes   map[string]int64 `json:"flooder_close_codes,omitempty"`

	IdleOpened  int64 `json:"idle_opened"`
	IdleRefused int64 `json:"idle_refused"` // upgrades answered with an HTTP error
	IdleClosed  int64 `json:"idle_closed_by_server"`

	// CPU of the service, in % of one core: the mean over the load and
	// the highest W7Sample window.
	CPUMeanPct  float64 `json:"cpu_mean_pct"`
	CPUMaxPct   float64 `json:"cpu_max_pct"`
	Samples     int     `json:"samples"`
	HealthMaxMs float64 `json:"healthz_max_ms"`   // the slowest /healthz during the load
	HealthFails int     `json:"healthz_failures"` // no answer within healthTimeout

	Baseline Snapshot `json:"baseline"` // sessions started, nobody connected
	Start    Snapshot `json:"start"`    // every peer and idle socket connected
	End      Snapshot `json:"end"`      // the end of the load, still connected
	After    Snapshot `json:"after"`    // everyone gone, settled
	GorTol   int      `json:"goroutine_tolerance"`
	Pass     bool     `json:"pass"`
	Why      string   `json:"why,omitempty"`
}

// RehabW7 runs the soak.
func RehabW7(ctx context.Context, env *Env, o Options) (W7Result, error) {
	res := W7Result{Sessions: o.W7Sessions, Peers: o.W7Peers, Flooders: o.W7Flooders, IdleSockets: o.W7Idle, GorTol: 4}
	if err := checkW7(o); err != nil {
		return res, err
	}
	if need := uint64(2*(o.W7Peers+o.W7Idle+o.W7Flooders) + 200); need > env.NoFile {
		return res, fmt.Errorf("open-file limit %d too low: need %d", env.NoFile, need)
	}
	srv, err := StartServer(ctx, env, o.W7Sessions+2, ProductLimits)
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	s, err := newSoak(ctx, srv, o)
	if err != nil {
		return res, err
	}
	srv.Quiet(time.Second)
	base, err := srv.Proc()
	if err != nil {
		return res, err
	}
	res.Baseline = snap(base)
	err = s.run(ctx, &res)
	s.stop()
	s.collect(&res)
	if err != nil {
		return res, err
	}
	after, err := settleTo(ctx, srv, base.Goroutine+res.GorTol, o.W6Settle)
	if err != nil {
		return res, err
	}
	res.After = snap(after)
	judgeSoak(&res)
	return res, srv.Stop()
}

// checkW7 refuses sizes the soak cannot run with.
func checkW7(o Options) error {
	switch {
	case o.W7Sessions < 1 || o.W7Peers < o.W7Sessions:
		return fmt.Errorf("W7: want at least one session and one honest peer per session (got %d sessions, %d peers)", o.W7Sessions, o.W7Peers)
	case o.W7Flooders < 0 || o.W7Flooders > o.W7Sessions:
		return fmt.Errorf("W7: flooders must be between 0 and the session count (got %d)", o.W7Flooders)
	case o.W7Idle < 0 || o.W7Idle > 250*250*5:
		return fmt.Errorf("W7: idle sockets must be between 0 and %d (got %d)", 250*250*5, o.W7Idle)
	case o.W7Duration <= 0 || o.W7ChurnEvery <= 0 || o.W7ChatEvery <= 0 || o.W7FloodPause <= 0 || o.W7Sample <= 0 || o.W7FloodBurst < 1:
		return fmt.Errorf("W7: durations and the flood burst must be positive")
	}
	return nil
}

// soak is the state of one soak run.
type soak struct {
	srv     *Server
	o       Options
	honest  []*honestPeer
	flood   []slot
	ports   []int // the sessions' ports, for idle sockets
	wg      sync.WaitGroup
	chatRcv atomic.Int64

	mu          sync.Mutex // guards the maps and idle
	honestCodes map[string]int64
	floodCodes  map[string]int64
	idle        map[*WS]struct{}
	stopped     bool

	rejoins, churnErrs, chatSent        atomic.Int64
	floodSent, floodJoins, floodRefused atomic.Int64
	idleOpened, idleRefused, idleClosed atomic.Int64
}

// honestPeer is one honest invitee; churn replaces its connection.
type honestPeer struct {
	slot
	mu      sync.Mutex // guards p, done and leaving
	p       *Peer
	done    chan struct{} // closed when p's reader ends
	leaving bool          // we are closing p: its end is not a cut
}

// newSoak starts W7Sessions sessions of W7Peers/W7Sessions honest
// invitees each (one user, the rest participants), plus one more
// participant, a flooder, in each of the first W7Flooders sessions.
func newSoak(ctx context.Context, srv *Server, o Options) (*soak, error) {
	s := &soak{srv: srv, o: o, honestCodes: map[string]int64{}, floodCodes: map[string]int64{}, idle: map[*WS]struct{}{}}
	per := max(1, o.W7Peers/o.W7Sessions)
	for i := range o.W7Sessions {
		u := NewUUID()
		ps := make([]string, per-1, per)
		for j := range ps {
			ps[j] = NewUUID()
		}
		if i < o.W7Flooders {
			ps = append(ps, NewUUID())
		}
		sess, err := srv.StartSession(ctx, []string{u}, ps)
		if err != nil {
			return nil, fmt.Errorf("session %d: %w", i, err)
		}
		s.ports = append(s.ports, sess.Port)
		for _, inv := range append([]string{u}, ps[:per-1]...) {
			s.honest = append(s.honest, &honestPeer{slot: slot{sess.Port, KeyOf(sess.Link(inv)), inv}})
		}
		if i < o.W7Flooders {
			f := ps[len(ps)-1]
			s.flood = append(s.flood, slot{sess.Port, KeyOf(sess.Link(f)), f})
		}
	}
	return s, nil
}

// run connects everyone, loads the service for W7Duration and samples it.
func (s *soak) run(ctx context.Context, res *W7Result) error {
	t0 := time.Now()
	if err := parallel(ctx, len(s.honest), 32, func(i int) error { return s.connect(ctx, s.honest[i]) }); err != nil {
		return fmt.Errorf("honest joins: %w", err)
	}
	res.ConnectSec = round3(time.Since(t0).Seconds())
	lctx, cancel := context.WithTimeout(ctx, s.o.W7Duration)
	defer cancel()
	for i := range s.o.W7Idle {
		s.wg.Go(func() { s.idleLoop(lctx, i) })
	}
	for _, f := range s.flood {
		s.wg.Go(func() { s.floodLoop(lctx, f) })
	}
	s.wg.Go(func() { s.churnLoop(lctx) })
	s.wg.Go(func() { s.chatLoop(lctx) })
	if err := s.awaitIdle(lctx); err != nil {
		return err
	}
	s.srv.Quiet(time.Second)
	start, err := s.srv.Proc()
	if err != nil {
		return err
	}
	res.Start = snap(start)
	t1 := time.Now()
	if err := s.monitor(lctx, res); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errStopped
	}
	res.Seconds = round3(time.Since(t1).Seconds())
	end, err := s.srv.Proc()
	if err != nil {
		return err
	}
	res.End = snap(end)
	return nil
}

// awaitIdle waits (up to 30 s) until the idle sockets are mostly open, so
// that the start figures include them.
func (s *soak) awaitIdle(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for s.idleOpened.Load()+s.idleRefused.Load() < int64(s.o.W7Idle) && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return nil // a very short soak: sample what there is
		}
	}
	return nil
}

// monitor samples the service's CPU and /healthz every W7Sample until ctx
// ends.
func (s *soak) monitor(ctx context.Context, res *W7Result) error {
	c0, err := cpuTicks(s.srv.Pid)
	if err != nil {
		return err
	}
	first, w0 := c0, time.Now()
	start := w0
	hc := &http.Client{Timeout: healthTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		_ = sleepCtx(ctx, s.o.W7Sample)
		if !s.srv.Alive() {
			return fmt.Errorf("the server exited during the soak:\n%s", s.srv.LogTail())
		}
		c1, err := cpuTicks(s.srv.Pid)
		if err != nil {
			return err
		}
		now := time.Now()
		if pct := 100 * CPUSeconds(c1-c0) / now.Sub(w0).Seconds(); now.Sub(w0) > s.o.W7Sample/2 {
			res.CPUMaxPct = max(res.CPUMaxPct, round3(pct))
			res.Samples++
		}
		c0, w0 = c1, now
		h0 := time.Now()
		if resp, err := hc.Get(s.srv.Service + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
			resp.Body.Close()
		} else {
			if err == nil {
				resp.Body.Close()
			}
			res.HealthFails++
		}
		res.HealthMaxMs = max(res.HealthMaxMs, ms(time.Since(h0)))
		if ctx.Err() != nil {
			res.CPUMeanPct = round3(100 * CPUSeconds(c1-first) / now.Sub(start).Seconds())
			return nil
		}
	}
}

// healthTimeout is how long a /healthz may take during the soak before it
// counts as a failure (a load balancer would take the node out).
const healthTimeout = 10 * time.Second

// connect joins h and starts its reader.
func (s *soak) connect(ctx context.Context, h *honestPeer) error {
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := Join(jctx, s.srv.WSAddr(), h.port, h.key, h.uuid, "honest", smallRBuf)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.isStopped() { // stop has passed h, or is about to: it would not close p
		p.CloseNow()
		return errStopped
	}
	h.p, h.done, h.leaving = p, done, false
	s.wg.Go(func() {
		defer close(done)
		s.readHonest(h, p)
	})
	return nil
}

// readHonest reads p, as a browser does, until it ends; an end we did not
// ask for is a cut.
func (s *soak) readHonest(h *honestPeer, p *Peer) {
	for {
		if _, err := p.Read(); err != nil {
			h.mu.Lock()
			ours := h.leaving || h.p != p
			h.mu.Unlock()
			if !ours {
				s.count(s.honestCodes, CloseCode(err))
			}
			return
		}
		s.chatRcv.Add(1)
	}
}

// count adds one end with code to m.
func (s *soak) count(m map[string]int64, code int) {
	s.mu.Lock()
	m[strconv.Itoa(code)]++
	s.mu.Unlock()
}

// churnLoop has one honest peer leave and come back every W7ChurnEvery.
func (s *soak) churnLoop(ctx context.Context) {
	t := time.NewTicker(s.o.W7ChurnEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h := s.honest[mrand.IntN(len(s.honest))]
		h.mu.Lock()
		p, done := h.p, h.done
		h.leaving = true
		h.mu.Unlock()
		if p == nil {
			continue
		}
		_ = p.Close()
		<-done
		if err := s.connect(ctx, h); err != nil {
			if ctx.Err() == nil {
				s.churnErrs.Add(1)
			}
			continue
		}
		s.rejoins.Add(1)
	}
}

// chatLoop has every honest peer send a chat message every W7ChatEvery,
// spread evenly over that period.
func (s *soak) chatLoop(ctx context.Context) {
	const tick = 100 * time.Millisecond
	perTick := max(1, int(int64(len(s.honest))*int64(tick)/int64(s.o.W7ChatEvery)))
	t := time.NewTicker(tick)
	defer t.Stop()
	msg := []byte(`{"type":"message","topic":"chat","data":{"text":"bonjour, on commence l'exercice"}}`)
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for range perTick {
			h := s.honest[next%len(s.honest)]
			next++
			h.mu.Lock()
			if h.p != nil && !h.leaving && h.p.Send(msg) == nil {
				s.chatSent.Add(1)
			}
			h.mu.Unlock()
		}
	}
}

// floodLoop is one hostile participant: it joins, drains what it is sent
// (so that it is never cut merely for being slow) and sends bursts of
// W7FloodBurst chat messages every W7FloodPause; when the service
// disconnects it, it comes back a second later.
func (s *soak) floodLoop(ctx context.Context, f slot) {
	burst := make([][]byte, s.o.W7FloodBurst)
	for i := range burst {
		burst[i] = []byte(`{"type":"message","topic":"chat","data":{"text":"flood flood flood flood"}}`)
	}
	for ctx.Err() == nil {
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		p, err := Join(jctx, s.srv.WSAddr(), f.port, f.key, f.uuid, "flooder", floodRBuf)
		cancel()
		if err != nil {
			s.floodRefused.Add(1)
			_ = sleepCtx(ctx, time.Second)
			continue
		}
		s.floodJoins.Add(1)
		s.flooding(ctx, p, burst)
		_ = sleepCtx(ctx, time.Second)
	}
}

// flooding sends bursts on p until the service closes it or ctx ends.
func (s *soak) flooding(ctx context.Context, p *Peer, burst [][]byte) {
	done := make(chan int, 1)
	s.wg.Go(func() {
		for {
			if _, err := p.Read(); err != nil {
				done <- CloseCode(err)
				return
			}
		}
	})
	for {
		if err := p.Send(burst...); err == nil {
			s.floodSent.Add(int64(len(burst)))
		}
		t := time.NewTimer(s.o.W7FloodPause)
		select {
		case code := <-done:
			t.Stop()
			s.count(s.floodCodes, code)
			p.CloseNow()
			return
		case <-ctx.Done():
			t.Stop()
			p.CloseNow()
			<-done
			return
		case <-t.C:
		}
	}
}

// idleLoop keeps one unauthenticated WebSocket open on a session's port:
// upgraded, never joined. The service closes it at its join deadline; it
// is reopened at once. Each comes through the gateway as a reverse proxy
// would forward it, with an X-Forwarded-For of its own (198.18.0.0/15,
// the benchmarking range), five sockets per address.
func (s *soak) idleLoop(ctx context.Context, i int) {
	port := s.ports[i%len(s.ports)]
	xff := fmt.Sprintf("X-Forwarded-For: 198.18.%d.%d\r\n", i/5/250, i/5%250+1)
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ws, err := DialWSHeaders(dctx, s.srv.WSAddr(), fmt.Sprintf("/websocket/%d/", port), smallRBuf, xff)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.idleRefused.Add(1)
				_ = sleepCtx(ctx, time.Second)
			}
			continue
		}
		if !s.track(ws) {
			ws.CloseNow()
			return
		}
		s.idleOpened.Add(1)
		for {
			if _, err := ws.Read(); err != nil {
				break
			}
		}
		if s.untrack(ws) && ctx.Err() == nil {
			s.idleClosed.Add(1)
		}
	}
}

func (s *soak) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// track records an open idle socket; false once the soak is stopping.
func (s *soak) track(ws *WS) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.idle[ws] = struct{}{}
	return true
}

// untrack forgets ws; false if stop already closed it.
func (s *soak) untrack(ws *WS) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.idle[ws]
	delete(s.idle, ws)
	return ok && !s.stopped
}

// stop closes every connection and waits for every goroutine of the soak.
func (s *soak) stop() {
	s.mu.Lock()
	s.stopped = true
	for ws := range s.idle {
		ws.CloseNow()
	}
	s.mu.Unlock()
	for _, h := range s.honest {
		h.mu.Lock()
		if h.p != nil {
			h.leaving = true
			_ = h.p.Close()
		}
		h.mu.Unlock()
	}
	s.wg.Wait()
}

// collect copies the counters into res.
func (s *soak) collect(res *W7Result) {
	res.Rejoins, res.ChurnErrors, res.ChatSent, res.ChatRecv = s.rejoins.Load(), s.churnErrs.Load(), s.chatSent.Load(), s.chatRcv.Load()
	res.FloodSent, res.FloodJoins, res.FloodRefused = s.floodSent.Load(), s.floodJoins.Load(), s.floodRefused.Load()
	res.IdleOpened, res.IdleRefused, res.IdleClosed = s.idleOpened.Load(), s.idleRefused.Load(), s.idleClosed.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	res.HonestCodes, res.FloodCodes = s.honestCodes, s.floodCodes
	for _, n := range s.honestCodes {
		res.HonestCut += int(n)
	}
}

// settleTo polls the service until its goroutines are at most gor, or
// limit has passed, and returns the last figures.
func settleTo(ctx context.Context, srv *Server, gor int, limit time.Duration) (ProcStats, error) {
	deadline := time.Now().Add(limit)
	srv.Quiet(time.Second)
	for {
		st, err := srv.Proc()
		if err != nil || st.Goroutine <= gor || time.Now().After(deadline) {
			return st, err
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return st, err
		}
	}
}

// judgeSoak: no honest peer cut or shut out, under one core on average,
// and back to the baseline's goroutines once everyone has gone.
func judgeSoak(res *W7Result) {
	var why []string
	if res.HonestCut > 0 {
		why = append(why, fmt.Sprintf("%d honest peers disconnected (close codes %v)", res.HonestCut, res.HonestCodes))
	}
	if res.ChurnErrors > 0 {
		why = append(why, fmt.Sprintf("%d honest rejoins failed", res.ChurnErrors))
	}
	if res.HealthFails > 0 {
		why = append(why, fmt.Sprintf("%d /healthz without an answer within %s", res.HealthFails, healthTimeout))
	}
	if res.CPUMeanPct >= 100 {
		why = append(why, fmt.Sprintf("mean CPU %.0f%% of a core", res.CPUMeanPct))
	}
	if d := res.After.Goroutines - res.Baseline.Goroutines; d > res.GorTol {
		why = append(why, fmt.Sprintf("%d goroutines more than the baseline after everyone left", d))
	}
	res.Pass = len(why) == 0
	res.Why = strings.Join(why, "; ")
}
