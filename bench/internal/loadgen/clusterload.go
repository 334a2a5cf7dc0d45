package loadgen

// W9: the signaling workloads on one node and on a cluster of three with
// one Redis (links spread over the gateways, sessions homed on every
// node, so most connections are proxied), then the failover time of a
// kill -9 of a session's home over many trials (docs/performance.md,
// "Cluster").

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// W9Side is the signaling figures of one topology.
type W9Side struct {
	Nodes int `json:"nodes"`
	// Start: session_manage start through node i's API → the participant's
	// page 200 through the next node's gateway (proxied when that node is
	// not the home). Stop: through a third node (forwarded to the home).
	Start Dist `json:"session_start"`
	Stop  Dist `json:"session_stop"`
	// Joins (dial → welcome) one after the other and all at once, each
	// through a gateway that is not the session's home (on three nodes).
	JoinSeq  Dist `json:"join_sequential"`
	JoinConc Dist `json:"join_concurrent"`
	// Homes counts the sessions of the joins and the flood per node.
	Homes []int `json:"homes"`
	// ProxiedPct is the share of the joins' and the flood's connections
	// made through a gateway that is not their session's home.
	ProxiedPct float64  `json:"proxied_pct"`
	Flood      FloodRun `json:"flood"` // CPU summed over every node and Redis
	// Redis commands (INFO total_commands_processed), three nodes only:
	// per session start (with its page through another gateway), per
	// second during the flood, and per node per second with the sessions
	// held and nobody connected (heartbeats and lease renewals).
	RedisPerStart       float64 `json:"redis_commands_per_start,omitempty"`
	RedisFloodPerSec    float64 `json:"redis_commands_per_s_flood,omitempty"`
	RedisIdlePerNodeSec float64 `json:"redis_commands_per_node_per_s_idle,omitempty"`
}

// W9Failover is the failover of a session's home over many trials.
type W9Failover struct {
	LeaseMS  int `json:"lease_ms"`
	Trials   int `json:"trials"`
	Sessions int `json:"sessions"`
	Clients  int `json:"clients"`
	// CutPerTrial: clients cut by each kill (those in the killed home's
	// sessions and those connected through its gateway).
	CutPerTrial []int `json:"cut_per_trial"`
	// Trial: kill → the last cut client admitted again (same link)
	// through a surviving gateway. Client: the same for each client.
	Trial  Dist `json:"kill_to_all_admitted"`
	Client Dist `json:"kill_to_client_admitted"`
	// Unexpected counts clients cut that were neither in the killed
	// home's sessions nor on its gateway (want 0).
	Unexpected int `json:"unexpected_cuts"`
}

// W9Result is W9.
type W9Result struct {
	One      W9Side      `json:"one_node"`
	Three    W9Side      `json:"three_nodes"`
	Failover *W9Failover `json:"failover,omitempty"`
}

// w9Sessions is how many sessions the joins and the flood use: two homed
// on each of three nodes.
const w9Sessions = 6

// topo is where a W9 side sends its clients: one node, or a cluster.
type topo struct {
	nodes []*Server
	cl    *Cluster // nil: one node
}

func (t *topo) meter() meter {
	if t.cl != nil {
		return t.cl
	}
	return t.nodes[0]
}

func (t *topo) home(id int64) (int, error) {
	if t.cl == nil {
		return 0, nil
	}
	return t.cl.Home(id)
}

// via is the gateway of the i-th connection into a session homed on home:
// on a cluster never the home itself, so every such connection is
// proxied.
func (t *topo) via(home, i int) int {
	k := len(t.nodes)
	if k == 1 || home < 0 {
		return 0
	}
	return (home + 1 + i%(k-1)) % k
}

// pageURL is a session link on node n's gateway (the links name the
// load balancer's port).
func pageURL(n *Server, link string) string {
	i := strings.Index(link, "/webrtc/")
	if i < 0 {
		return link
	}
	return n.Gateway + link[i:]
}

// RehabW9 runs the signaling workloads on one node, then on three nodes
// and a Redis, then the failover trials on the three.
func RehabW9(ctx context.Context, env *Env, o Options) (W9Result, error) {
	var res W9Result
	if o.W9Starts < 1 || o.W9Joins < 1 || o.W9Concurrent < 1 || o.W9Pairs < 1 || o.W9Duration <= 0 ||
		o.W9FailoverSessions < 1 || o.W9Clients < o.W9FailoverSessions || o.W9Trials < 0 {
		return res, errors.New("W9: starts, joins, concurrent joins, pairs, failover sessions must be ≥ 1, the duration > 0, clients ≥ failover sessions")
	}
	room := o.W9Starts + w9Sessions + o.W9FailoverSessions + 4
	one, err := StartServer(ctx, env, room)
	if err != nil {
		return res, err
	}
	res.One, err = w9Side(ctx, &topo{nodes: []*Server{one}}, o)
	if err != nil {
		one.Stop()
		return res, fmt.Errorf("one node: %w", err)
	}
	if err := one.Stop(); err != nil {
		return res, err
	}
	cl, err := StartCluster(ctx, env, 3, room, o.W9LeaseMS)
	if err != nil {
		return res, err
	}
	defer cl.Stop()
	res.Three, err = w9Side(ctx, &topo{nodes: cl.Nodes, cl: cl}, o)
	if err != nil {
		return res, fmt.Errorf("three nodes: %w", err)
	}
	if o.W9Trials > 0 {
		fo, err := failover(ctx, cl, o)
		res.Failover = &fo
		if err != nil {
			return res, fmt.Errorf("failover: %w", err)
		}
	}
	return res, cl.Stop()
}

// w9Side measures one topology.
func w9Side(ctx context.Context, t *topo, o Options) (W9Side, error) {
	side := W9Side{Nodes: len(t.nodes), Homes: make([]int, len(t.nodes))}
	if err := w9Starts(ctx, t, o.W9Starts, &side); err != nil {
		return side, fmt.Errorf("starts: %w", err)
	}
	ss, err := spreadSessions(ctx, t, o)
	if err != nil {
		return side, fmt.Errorf("sessions: %w", err)
	}
	for _, s := range ss {
		side.Homes[s.home]++
	}
	var conns, proxied int
	count := func(home, gw int) {
		conns++
		if home != gw {
			proxied++
		}
	}
	if side.JoinSeq, err = w9JoinSeq(ctx, t, ss, o.W9Joins, count); err != nil {
		return side, fmt.Errorf("sequential joins: %w", err)
	}
	if side.JoinConc, err = w9JoinConc(ctx, t, ss, o.W9Concurrent, count); err != nil {
		return side, fmt.Errorf("concurrent joins: %w", err)
	}
	if side.Flood, side.RedisFloodPerSec, err = w9Flood(ctx, t, ss, o, count); err != nil {
		return side, fmt.Errorf("flood: %w", err)
	}
	if t.cl != nil {
		if side.RedisIdlePerNodeSec, err = redisIdle(ctx, t.cl, o.W9Idle); err != nil {
			return side, err
		}
	}
	side.ProxiedPct = round3(100 * float64(proxied) / float64(max(1, conns)))
	for i, s := range ss {
		if err := t.nodes[i%len(t.nodes)].StopSession(ctx, s.ID); err != nil {
			return side, err
		}
	}
	return side, t.meter().check()
}

// w9Starts starts n sessions one after the other, session i through node
// i's API, its participant's page through the next node's gateway, and
// then stops them through a third node.
func w9Starts(ctx context.Context, t *topo, n int, side *W9Side) error {
	k := len(t.nodes)
	var r0 int64
	if t.cl != nil {
		r0, _ = t.cl.RedisCommands()
	}
	starts := make([]time.Duration, 0, n)
	ids := make([]int64, 0, n)
	for i := range n {
		p := NewUUID()
		t0 := time.Now()
		s, err := t.nodes[i%k].StartSession(ctx, []string{NewUUID()}, []string{p})
		if err != nil {
			return err
		}
		code, err := t.nodes[(i+1)%k].GetPage(ctx, pageURL(t.nodes[(i+1)%k], s.Link(p)))
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("session %d: participant page HTTP %d", s.ID, code)
		}
		starts = append(starts, time.Since(t0))
		ids = append(ids, s.ID)
	}
	if t.cl != nil {
		r1, _ := t.cl.RedisCommands()
		side.RedisPerStart = round3(float64(r1-r0-1) / float64(max(1, n)))
	}
	stops := make([]time.Duration, 0, n)
	for i, id := range ids {
		t0 := time.Now()
		if err := t.nodes[(i+2)%k].StopSession(ctx, id); err != nil {
			return err
		}
		stops = append(stops, time.Since(t0))
	}
	side.Start, side.Stop = Summarize(starts), Summarize(stops)
	return nil
}

// w9Session is one of the sessions of the joins and the flood, with its
// invitees set aside per use.
type w9Session struct {
	*Session
	home              int
	joins, concs      []string // participants
	pairUsers, pairPs []string
}

// spreadSessions starts w9Sessions sessions. On a cluster, each start
// waits until its home's heartbeat counts it, so that the placement (by
// the heartbeats' loads) puts them on every node as it would sessions
// started over minutes.
func spreadSessions(ctx context.Context, t *topo, o Options) ([]*w9Session, error) {
	per := func(n int) int { return (n + w9Sessions - 1) / w9Sessions }
	out := make([]*w9Session, w9Sessions)
	for i := range out {
		s := &w9Session{joins: uuids(per(o.W9Joins)), concs: uuids(per(o.W9Concurrent)),
			pairUsers: uuids(per(o.W9Pairs)), pairPs: uuids(per(o.W9Pairs))}
		users := append([]string{NewUUID()}, s.pairUsers...)
		ps := slices.Concat(s.joins, s.concs, s.pairPs)
		var err error
		if s.Session, err = t.nodes[i%len(t.nodes)].StartSession(ctx, users, ps); err != nil {
			return nil, err
		}
		if s.home, err = t.home(s.ID); err != nil {
			return nil, err
		}
		if s.home < 0 {
			return nil, fmt.Errorf("session %d has no home", s.ID)
		}
		if t.cl != nil {
			if err := t.cl.awaitHeartbeat(ctx, s.ID); err != nil {
				return nil, err
			}
		}
		out[i] = s
	}
	return out, nil
}

func uuids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = NewUUID()
	}
	return out
}

// w9JoinSeq times n joins one after the other, each closed before the
// next.
func w9JoinSeq(ctx context.Context, t *topo, ss []*w9Session, n int, count func(home, gw int)) (Dist, error) {
	d := make([]time.Duration, 0, n)
	for j := range n {
		s := ss[j%len(ss)]
		u := s.joins[j/len(ss)]
		gw := t.via(s.home, j)
		count(s.home, gw)
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t0 := time.Now()
		p, err := Join(jctx, t.nodes[gw].WSAddr(), s.Port, KeyOf(s.Link(u)), u, "p", smallRBuf)
		d = append(d, time.Since(t0))
		cancel()
		if err != nil {
			return Dist{}, err
		}
		p.Close()
	}
	return Summarize(d), nil
}

// w9JoinConc times n joins released at once, spread over the sessions.
func w9JoinConc(ctx context.Context, t *topo, ss []*w9Session, n int, count func(home, gw int)) (Dist, error) {
	d := make([]time.Duration, n)
	peers := make([]*Peer, n)
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for j := range n {
		s := ss[j%len(ss)]
		u := s.concs[j/len(ss)]
		gw := t.via(s.home, j)
		count(s.home, gw)
		wg.Go(func() {
			<-gate
			jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			t0 := time.Now()
			peers[j], errs[j] = Join(jctx, t.nodes[gw].WSAddr(), s.Port, KeyOf(s.Link(u)), u, "p", smallRBuf)
			d[j] = time.Since(t0)
		})
	}
	close(gate)
	wg.Wait()
	for _, p := range peers {
		if p != nil {
			p.CloseNow()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Dist{}, err
	}
	return Summarize(d), nil
}

// w9Flood is W4's relay flood with the pairs spread over the sessions,
// each side of a pair through another gateway than the home.
// On a cluster, redisPerSec is Redis's commands per second while the
// messages flow (the connections' set-up excluded).
func w9Flood(ctx context.Context, t *topo, ss []*w9Session, o Options, count func(home, gw int)) (run FloodRun, redisPerSec float64, err error) {
	var cl clients
	defer cl.closeAll()
	mw := newMeasure()
	n := o.W9Pairs
	flows := make([]flow, n)
	recvs := make([]*receiver, n)
	for j := range n {
		s := ss[j%len(ss)]
		count(s.home, t.via(s.home, j))
		count(s.home, t.via(s.home, j+1))
	}
	err = parallel(ctx, n, 16, func(j int) error {
		s := ss[j%len(ss)]
		u, p := s.pairUsers[j/len(ss)], s.pairPs[j/len(ss)]
		jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		a, err := Join(jctx, t.nodes[t.via(s.home, j)].WSAddr(), s.Port, KeyOf(s.Link(u)), u, "a", smallRBuf)
		if err != nil {
			return err
		}
		cl.add(a)
		b, err := Join(jctx, t.nodes[t.via(s.home, j+1)].WSAddr(), s.Port, KeyOf(s.Link(p)), p, "b", floodRBuf)
		if err != nil {
			return err
		}
		cl.add(b)
		w, r := newWindow(o.W4Window, 1), &receiver{}
		flows[j] = flow{p: a, fb: newFrameBuilder(o.W4Size, `{"type":"signal","to":"`+b.ID+`","data":`, `}`), w: w}
		recvs[j] = r
		cl.read(a, nil)
		cl.read(b, func(m []byte) {
			if isType(m, "signal") {
				r.take(m, mw)
				w.got(0)
			}
		})
		return nil
	})
	if err != nil {
		return FloodRun{}, 0, err
	}
	var r0 int64
	if t.cl != nil {
		r0, _ = t.cl.RedisCommands()
	}
	t0 := time.Now()
	run, err = drive(ctx, t.meter(), flows, mw, recvs, o.W4Warmup, o.W9Duration, cl.closeAll)
	if err != nil {
		return FloodRun{}, 0, err
	}
	if t.cl != nil {
		r1, _ := t.cl.RedisCommands()
		redisPerSec = round3(float64(r1-r0-1) / time.Since(t0).Seconds())
	}
	run.Pairs, run.Window, run.Bytes = n, o.W4Window, o.W4Size
	return run, redisPerSec, nil
}

// redisIdle is Redis's commands per node per second while the cluster
// holds its sessions and nobody is connected.
func redisIdle(ctx context.Context, c *Cluster, d time.Duration) (float64, error) {
	r0, err := c.RedisCommands()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := sleepCtx(ctx, d); err != nil {
		return 0, err
	}
	r1, err := c.RedisCommands()
	if err != nil {
		return 0, err
	}
	return round3(float64(r1-r0-1) / time.Since(t0).Seconds() / float64(len(c.Nodes))), nil
}

// foClient is one WebSocket client of the failover trials: it joins
// through a live gateway, reads until its connection ends, and joins
// again with the same link, for as long as the trials run.
type foClient struct {
	sess     *Session
	uuid     string
	prefer   int // its gateway while that node is up
	mu       sync.Mutex
	gw       int       // the gateway of its current connection
	admitted time.Time // of the current connection
	up       bool
	cuts     int
}

func (f *foClient) state() (gw int, admitted time.Time, up bool, cuts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gw, f.admitted, f.up, f.cuts
}

// run keeps the client in its session until ctx ends. down is the index
// of the node being killed (-1: none), whose gateway it avoids.
func (f *foClient) run(ctx context.Context, gws []string, down *atomic.Int32) {
	k := len(gws)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		gw := (f.prefer + attempt) % k
		if int(down.Load()) == gw {
			continue
		}
		jctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		p, err := Join(jctx, gws[gw], f.sess.Port, KeyOf(f.sess.Link(f.uuid)), f.uuid, "p", smallRBuf)
		cancel()
		if err != nil {
			_ = sleepCtx(ctx, 50*time.Millisecond) // a browser retries too; the service answers 502/503 meanwhile
			continue
		}
		attempt = -1 // back to the preferred gateway after the next cut
		f.mu.Lock()
		f.gw, f.admitted, f.up = gw, time.Now(), true
		f.mu.Unlock()
		stop := context.AfterFunc(ctx, func() { p.CloseNow() })
		for {
			if _, err := p.Read(); err != nil {
				break
			}
		}
		stop()
		p.CloseNow()
		f.mu.Lock()
		f.up = false
		f.cuts++
		f.mu.Unlock()
	}
}

// failover kills the node homing most of the trial sessions, W9Trials
// times, and times until every client it cut is admitted again through a
// surviving gateway with the same link; the killed node is started again
// (it takes nothing back) before the next trial.
func failover(ctx context.Context, c *Cluster, o Options) (W9Failover, error) {
	res := W9Failover{LeaseMS: c.LeaseMS, Trials: o.W9Trials, Sessions: o.W9FailoverSessions, Clients: o.W9Clients}
	m := o.W9FailoverSessions
	sess := make([]*Session, m)
	parts := make([][]string, m)
	for i := range sess {
		parts[i] = uuids((o.W9Clients + m - 1) / m)
		var err error
		if sess[i], err = c.Nodes[i%len(c.Nodes)].StartSession(ctx, []string{NewUUID()}, parts[i]); err != nil {
			return res, err
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var down atomic.Int32
	down.Store(-1)
	gws := make([]string, len(c.Nodes)) // a restarted node keeps its ports
	for i, n := range c.Nodes {
		gws[i] = n.WSAddr()
	}
	clients := make([]*foClient, o.W9Clients)
	for j := range clients {
		clients[j] = &foClient{sess: sess[j%m], uuid: parts[j%m][j/m], prefer: j % len(c.Nodes)}
		wg.Go(func() { clients[j].run(cctx, gws, &down) })
	}
	var trials, each []time.Duration
	for trial := range o.W9Trials {
		d, per, cut, unexpected, err := failoverTrial(ctx, c, sess, clients, &down)
		if err != nil {
			return res, fmt.Errorf("trial %d: %w", trial+1, err)
		}
		trials, each = append(trials, d), append(each, per...)
		res.CutPerTrial = append(res.CutPerTrial, cut)
		res.Unexpected += unexpected
		c.env.logf("W9 failover trial %d: %d clients cut, all back in %.2f s", trial+1, cut, d.Seconds())
	}
	res.Trial, res.Client = Summarize(trials), Summarize(each)
	cancel()
	wg.Wait()
	for i, s := range sess {
		if err := c.Nodes[i%len(c.Nodes)].StopSession(ctx, s.ID); err != nil {
			return res, err
		}
	}
	return res, nil
}

// failoverTrial is one kill -9 and its recovery.
func failoverTrial(ctx context.Context, c *Cluster, sess []*Session, clients []*foClient, down *atomic.Int32) (all time.Duration, per []time.Duration, cut, unexpected int, err error) {
	if err := waitAllUp(ctx, clients, time.Now().Add(30*time.Second)); err != nil {
		return 0, nil, 0, 0, err
	}
	homes := map[int64]int{}
	load := make([]int, len(c.Nodes))
	for _, s := range sess {
		h, err := c.Home(s.ID)
		if err != nil || h < 0 {
			return 0, nil, 0, 0, fmt.Errorf("home of session %d: %d, %v", s.ID, h, err)
		}
		homes[s.ID] = h
		load[h]++
	}
	victim := 0
	for i := range load {
		if load[i] > load[victim] {
			victim = i
		}
	}
	// The clients this kill must cut: in the victim's sessions, or
	// connected through its gateway.
	cuts0 := make([]int, len(clients))
	var must []int
	for j, f := range clients {
		gw, _, _, n := f.state()
		cuts0[j] = n
		if homes[f.sess.ID] == victim || gw == victim {
			must = append(must, j)
		}
	}
	down.Store(int32(victim))
	killed := time.Now()
	c.Nodes[victim].Kill()
	deadline := killed.Add(30 * time.Second)
	for {
		back := 0
		for _, j := range must {
			if _, adm, up, n := clients[j].state(); up && n > cuts0[j] && adm.After(killed) {
				back++
			}
		}
		if back == len(must) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, nil, 0, 0, fmt.Errorf("%d of %d cut clients admitted again within 30 s of the kill", back, len(must))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, j := range must {
		_, adm, _, _ := clients[j].state()
		per = append(per, adm.Sub(killed))
		all = max(all, adm.Sub(killed))
	}
	for j, f := range clients {
		if _, _, _, n := f.state(); n > cuts0[j] && !slices.Contains(must, j) {
			unexpected++
		}
	}
	n, err := c.Nodes[victim].Restart(ctx)
	if err != nil {
		return 0, nil, 0, 0, fmt.Errorf("restart node %c: %w", 'a'+victim, err)
	}
	c.Nodes[victim] = n
	down.Store(-1)
	return all, per, len(must), unexpected, nil
}

func waitAllUp(ctx context.Context, clients []*foClient, deadline time.Time) error {
	for {
		up := 0
		for _, f := range clients {
			if _, _, ok, _ := f.state(); ok {
				up++
			}
		}
		if up == len(clients) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("only %d of %d clients connected", up, len(clients))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
