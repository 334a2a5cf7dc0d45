package loadgen

// W2: joins, sequential and concurrent, and 1:1 call setups.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

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
	seq, err := joinSequential(ctx, srv, o.W2Joins)
	if err != nil {
		return res, err
	}
	res.JoinSeq = Summarize(seq)
	if err := joinConcurrent(ctx, srv, o.W2Concurrent, &res); err != nil {
		return res, err
	}
	calls, err := callSetups(ctx, srv, o.W2Calls, o.W2Candidates)
	if err != nil {
		return res, err
	}
	res.Call = Summarize(calls)
	return res, srv.Stop()
}

// inviteBatches starts sessions of at most 250 invited participants each
// (the cap is 256 per session) until n were served by each(), which gets a
// session and its invitees, then stops each session. With pairs, every
// participant has an invited user of its own; otherwise there is one user.
func inviteBatches(ctx context.Context, srv *Server, n int, pairs bool, each func(s *Session, us, ps []string) error) error {
	for done := 0; done < n; {
		batch := min(n-done, 250)
		us, ps := []string{NewUUID()}, make([]string, batch)
		if pairs {
			us = make([]string, batch)
		}
		for i := range batch {
			ps[i] = NewUUID()
			if pairs {
				us[i] = NewUUID()
			}
		}
		s, err := srv.StartSession(ctx, us, ps)
		if err != nil {
			return err
		}
		if err := each(s, us, ps); err != nil {
			return err
		}
		done += batch
		if err := srv.StopSession(ctx, s.ID); err != nil {
			return err
		}
	}
	return nil
}

// joinSequential times n joins, one invited participant per join, each
// leaving before the next joins.
func joinSequential(ctx context.Context, srv *Server, n int) ([]time.Duration, error) {
	seq := make([]time.Duration, 0, n)
	err := inviteBatches(ctx, srv, n, false, func(s *Session, _, ps []string) error {
		key := KeyOf(s.URLParticipants)
		for _, u := range ps {
			jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			t0 := time.Now()
			p, err := Join(jctx, srv.WSAddr(), s.Port, key, u, "p", smallRBuf)
			d := time.Since(t0)
			cancel()
			if err != nil {
				return err
			}
			seq = append(seq, d)
			p.Close()
		}
		return nil
	})
	return seq, err
}

// joinConcurrent times n joins into one session, all released at once,
// and the CPU time each side spent meanwhile.
func joinConcurrent(ctx context.Context, srv *Server, n int, res *W2Result) error {
	uuids := make([]string, n)
	for i := range uuids {
		uuids[i] = NewUUID()
	}
	s, err := srv.StartSession(ctx, []string{NewUUID()}, uuids)
	if err != nil {
		return err
	}
	key := KeyOf(s.URLParticipants)
	conc := make([]time.Duration, n)
	peers := make([]*Peer, n)
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range uuids {
		wg.Go(func() {
			<-gate
			jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			t0 := time.Now()
			peers[i], errs[i] = Join(jctx, srv.WSAddr(), s.Port, key, u, "p", smallRBuf)
			conc[i] = time.Since(t0)
		})
	}
	s0, l0, w0 := cpuTicksOr0(srv.Pid), SelfCPUTicks(), time.Now()
	close(gate)
	wg.Wait()
	res.ConcWallms = ms(time.Since(w0))
	res.ConcServerCPUms = 1000 * CPUSeconds(cpuTicksOr0(srv.Pid)-s0)
	res.ConcLoadCPUms = 1000 * CPUSeconds(SelfCPUTicks()-l0)
	for _, p := range peers {
		if p != nil {
			p.CloseNow()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	res.JoinConc = Summarize(conc)
	return srv.StopSession(ctx, s.ID)
}

// callSetups times n call setups: a user (caller) and a participant,
// fresh invitees each time so that a previous call's peers cannot be
// mistaken for them.
func callSetups(ctx context.Context, srv *Server, n, candidates int) ([]time.Duration, error) {
	calls := make([]time.Duration, 0, n)
	err := inviteBatches(ctx, srv, n, true, func(s *Session, us, ps []string) error {
		for i := range us {
			d, err := callSetup(ctx, srv.WSAddr(), s.Port, KeyOf(s.URLUsers), KeyOf(s.URLParticipants), us[i], ps[i], candidates)
			if err != nil {
				return err
			}
			calls = append(calls, d)
		}
		return nil
	})
	return calls, err
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
	c := call{addr: addr, port: port, half: candidates / 2, candidates: candidates}
	var wg sync.WaitGroup
	var callerErr, calleeErr error
	t0 := time.Now()
	var end [2]time.Time
	wg.Go(func() { end[0], callerErr = c.caller(ctx, ukey, u, p) })
	wg.Go(func() { end[1], calleeErr = c.callee(ctx, pkey, p) })
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

// call is one call setup's parameters: the caller trickles half of the
// candidates, the callee the rest.
type call struct {
	addr             string
	port             int
	half, candidates int
}

// candidate is a typical host ICE candidate signal, to peer id to.
func candidate(to string, i int) []byte {
	return fmt.Appendf(nil, `{"type":"signal","to":"%s","data":{"candidate":{"candidate":"candidate:%d 1 udp 2122260223 192.168.1.%d 5%04d typ host generation 0 ufrag abcd network-id 1","sdpMid":"0","sdpMLineIndex":0}}}`, to, i, i%250, i)
}

// caller joins as user u, waits for participant p, offers, waits for the
// answer, trickles its candidates and waits for the callee's; it returns
// when it has everything.
func (c call) caller(ctx context.Context, key, u, p string) (time.Time, error) {
	a, err := Join(ctx, c.addr, c.port, key, u, "caller", smallRBuf)
	if err != nil {
		return time.Time{}, err
	}
	defer a.Close()
	dl, _ := ctx.Deadline()
	a.ReadDeadline(dl)
	callee, err := awaitPeer(a, p)
	if err != nil {
		return time.Time{}, err
	}
	if err := a.Send(fmt.Appendf(nil, `{"type":"signal","to":"%s","data":{"sdp":{"type":"offer","sdp":"%s"}}}`, callee, sdpLike)); err != nil {
		return time.Time{}, err
	}
	if err := waitSignals(a, 1); err != nil { // the answer
		return time.Time{}, err
	}
	for i := range c.half {
		if err := a.Send(candidate(callee, i)); err != nil {
			return time.Time{}, err
		}
	}
	if err := waitSignals(a, c.candidates-c.half); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// awaitPeer returns the peer id of the participant with uuid, already
// there or when it joins.
func awaitPeer(a *Peer, uuid string) (string, error) {
	others, err := a.Others()
	if err != nil {
		return "", err
	}
	for _, q := range others {
		if q.UUID == uuid {
			return q.ID, nil
		}
	}
	for {
		m, err := a.Read()
		if err != nil {
			return "", err
		}
		if isType(m, "peer-joined") && string(field(m, "uuid")) == uuid {
			return string(field(m, "id")), nil
		}
	}
}

// callee joins as participant p, waits for the offer, answers, trickles
// its candidates and waits for the caller's.
func (c call) callee(ctx context.Context, key, p string) (time.Time, error) {
	b, err := Join(ctx, c.addr, c.port, key, p, "callee", smallRBuf)
	if err != nil {
		return time.Time{}, err
	}
	defer b.Close()
	dl, _ := ctx.Deadline()
	b.ReadDeadline(dl)
	var caller string
	for caller == "" { // the offer
		m, err := b.Read()
		if err != nil {
			return time.Time{}, err
		}
		if isType(m, "signal") {
			caller = string(field(m, "from"))
		}
	}
	if err := b.Send(fmt.Appendf(nil, `{"type":"signal","to":"%s","data":{"sdp":{"type":"answer","sdp":"%s"}}}`, caller, sdpLike)); err != nil {
		return time.Time{}, err
	}
	for i := range c.candidates - c.half {
		if err := b.Send(candidate(caller, 100+i)); err != nil {
			return time.Time{}, err
		}
	}
	if err := waitSignals(b, c.half); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
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
