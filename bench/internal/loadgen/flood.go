package loadgen

// W4 and W5: relay flood and fan-out.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

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
func drive(ctx context.Context, srv meter, flows []flow, mw *measure, recvs []*receiver, warm, d time.Duration, finish func()) (FloodRun, error) {
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
	s0 := srv.cpuTicks()
	l0 := SelfCPUTicks()
	w0 := time.Now()
	if err := sleepCtx(ctx, time.Until(w0.Add(d))); err != nil {
		return FloodRun{}, err
	}
	s1 := srv.cpuTicks()
	l1 := SelfCPUTicks()
	wall := time.Since(w0).Seconds()
	halt()
	var sent int64
	for _, f := range flows {
		sent += f.w.sent.Load()
	}
	drain(flows)
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
	if err := srv.check(); err != nil {
		return FloodRun{}, err
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

// meter is what a flood measures and watches: one server, or a cluster's
// nodes and Redis together.
type meter interface {
	cpuTicks() int64 // CPU time of the service's processes
	check() error    // non-nil when one died
}

// drain lets what is in flight arrive (up to 5 s), so that the next run
// starts clean.
func drain(flows []flow) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		done := true
		for _, f := range flows {
			if f.w.minRecv() < f.w.sent.Load() {
				done = false
				break
			}
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
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
