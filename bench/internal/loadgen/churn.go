package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Snapshot is the server's footprint at one instant.
type Snapshot struct {
	HeapAllockB int64 `json:"go_heap_alloc_kb"` // after a GC: the live heap
	RSSkB       int64 `json:"rss_kb"`
	AnonkB      int64 `json:"anon_kb"`
	FilekB      int64 `json:"file_kb"`
	Goroutines  int   `json:"goroutines"`
	FDs         int   `json:"fds"`
	Threads     int   `json:"threads"`
}

func snap(st ProcStats) Snapshot {
	return Snapshot{HeapAllockB: st.HeapAlloc / 1024, RSSkB: st.RSSkB, AnonkB: st.AnonkB, FilekB: st.FilekB, Goroutines: st.Goroutine, FDs: st.FDs, Threads: st.Threads}
}

// W6Result is churn, then the footprint compared with idle.
type W6Result struct {
	Seconds   float64  `json:"seconds"`
	Workers   int      `json:"workers"`
	Cycles    int64    `json:"cycles"`
	Joins     int64    `json:"joins"`
	PerSecond float64  `json:"cycles_per_s"`
	Idle      Snapshot `json:"idle"`
	Peak      Snapshot `json:"during"` // read at the end of churn, before settling
	End       Snapshot `json:"end"`
	SettleSec float64  `json:"settle_s"`
	// Pass/fail: goroutines and fds must come back to idle + GorTol/FDTol.
	// Memory is judged once the runtime has collected after the churn: the
	// live Go heap may grow by at most 1 MB + HeapTolB per cycle (a leaked
	// session, hub or peer would cost kilobytes each; the store's free-page
	// list legitimately grows a few bytes per session recorded), and the
	// anonymous RSS must be within AnonTolkB of idle (the runtime keeps up to
	// its GC goal mapped, and returns the rest gradually). File-backed RSS
	// is reported, not judged: the session store's mmap grows with every
	// session recorded, which is the history the product keeps on purpose.
	GorTol     int     `json:"goroutine_tolerance"`
	FDTol      int     `json:"fd_tolerance"`
	HeapTolB   int64   `json:"live_heap_tolerance_bytes_per_cycle"`
	AnonTolkB  int64   `json:"anon_tolerance_kb"`
	HeapPerCyc float64 `json:"live_heap_growth_bytes_per_cycle"`
	GCAfter    bool    `json:"gc_after_churn"`
	Pass       bool    `json:"pass"`
	Why        string  `json:"why,omitempty"`
	Note       string  `json:"note,omitempty"`
}

// RehabW6 churns sessions and peers for W6Duration, then checks that the
// footprint comes back to the idle level.
func RehabW6(ctx context.Context, env *Env, o Options) (W6Result, error) {
	res := W6Result{Workers: o.W6Workers, GorTol: 2, FDTol: 2, HeapTolB: 64, AnonTolkB: 16 << 10}
	srv, err := StartServer(ctx, env, 4*o.W6Workers+2)
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	// One cycle first, so that lazily created things (pools, the store's
	// first pages) are in the idle figure too.
	if err := churnCycle(ctx, srv); err != nil {
		return res, fmt.Errorf("warm-up cycle: %w", err)
	}
	if err := sleepCtx(ctx, o.W0Settle); err != nil {
		return res, err
	}
	srv.Quiet(time.Second)
	idle, err := srv.Proc()
	if err != nil {
		return res, err
	}
	res.Idle = snap(idle)
	if err := churn(ctx, srv, o, &res); err != nil {
		return res, err
	}
	last, gcSeen, err := settle(ctx, srv, o, idle, &res)
	if err != nil {
		return res, err
	}
	judge(&res, idle, last, gcSeen, o)
	return res, srv.Stop()
}

// churn runs W6Workers workers doing churn cycles for W6Duration.
func churn(ctx context.Context, srv *Server, o Options, res *W6Result) error {
	var cycles atomic.Int64
	end := time.Now().Add(o.W6Duration)
	var wg sync.WaitGroup
	errs := make([]error, o.W6Workers)
	t0 := time.Now()
	for w := range o.W6Workers {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				if err := churnCycle(ctx, srv); err != nil {
					errs[w] = err
					return
				}
				cycles.Add(1)
			}
		})
	}
	wg.Wait()
	res.Seconds = round3(time.Since(t0).Seconds())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("churn: %w", err)
	}
	if ctx.Err() != nil {
		return errStopped
	}
	res.Cycles = cycles.Load()
	res.Joins = 3 * res.Cycles
	res.PerSecond = round3(float64(res.Cycles) / res.Seconds)
	if st, err := srv.Proc(); err == nil {
		res.Peak = snap(st)
	}
	return nil
}

// settle polls until goroutines and fds are back and, for memory, until
// the runtime has run a GC cycle after the churn (without allocation it
// only does so every 2 minutes) and returned the freed pages, up to
// W6Settle. It returns the last figures and whether a GC was seen.
func settle(ctx context.Context, srv *Server, o Options, idle ProcStats, res *W6Result) (last ProcStats, gcSeen bool, err error) {
	s0 := time.Now()
	churnEnd := float64(s0.UnixNano())/1e9 + 0.5
	srv.Quiet(time.Second)
	for {
		last, err = srv.Proc()
		if err != nil {
			return last, gcSeen, err
		}
		// A GC that started after the churn had ended: the heap read right
		// after it is the live heap plus the little allocated since.
		if at, err := srv.metric("go_memstats_last_gc_time_seconds"); err == nil && at > churnEnd {
			gcSeen = true
		}
		back := last.Goroutine <= idle.Goroutine+res.GorTol && last.FDs <= idle.FDs+res.FDTol
		memBack := gcSeen && last.AnonkB <= idle.AnonkB+res.AnonTolkB
		if back && memBack || time.Since(s0) > o.W6Settle {
			break
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return last, gcSeen, err
		}
	}
	res.SettleSec = round3(time.Since(s0).Seconds())
	res.End = snap(last)
	res.GCAfter = gcSeen
	return last, gcSeen, nil
}

// judge says whether the service came back to idle after the churn.
func judge(res *W6Result, idle, last ProcStats, gcSeen bool, o Options) {
	var why []string
	if d := last.Goroutine - idle.Goroutine; d > res.GorTol {
		why = append(why, fmt.Sprintf("%d goroutines more than idle", d))
	}
	if d := last.FDs - idle.FDs; d > res.FDTol {
		why = append(why, fmt.Sprintf("%d open files more than idle", d))
	}
	if res.Cycles > 0 {
		res.HeapPerCyc = round3(float64(last.HeapAlloc-idle.HeapAlloc) / float64(res.Cycles))
	}
	if grew := last.HeapAlloc - idle.HeapAlloc; gcSeen && grew > heapSlack+res.HeapTolB*res.Cycles {
		why = append(why, fmt.Sprintf("live heap grew %.0f bytes per cycle", res.HeapPerCyc))
	}
	if d := last.AnonkB - idle.AnonkB; gcSeen && d > res.AnonTolkB {
		why = append(why, fmt.Sprintf("anonymous RSS %d kB above idle after a GC", d))
	}
	res.Pass = len(why) == 0
	res.Why = strings.Join(why, "; ")
	if !gcSeen {
		res.Note = fmt.Sprintf("memory not judged: no GC cycle within %.0f s of the end of churn (an idle Go process collects every 2 min)", o.W6Settle.Seconds())
	}
}

// heapSlack is the live-heap growth allowed whatever the cycle count:
// pools, caches and the store's bookkeeping.
const heapSlack = 1 << 20

// churnCycle is one short session: start, three peers join, an
// offer/answer and a chat message, one peer leaves, the session stops and
// the two others are told so.
func churnCycle(ctx context.Context, srv *Server) error {
	u, p1, p2 := NewUUID(), NewUUID(), NewUUID()
	s, err := srv.StartSession(ctx, []string{u}, []string{p1, p2})
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.StopSession(context.Background(), s.ID)
		}
	}()
	jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	dl, _ := jctx.Deadline()
	var peers []*Peer
	defer func() {
		for _, p := range peers {
			p.CloseNow()
		}
	}()
	for _, inv := range []string{u, p1, p2} {
		p, err := Join(jctx, srv.WSAddr(), s.Port, KeyOf(s.Link(inv)), inv, "churn", smallRBuf)
		if err != nil {
			return err
		}
		p.ReadDeadline(dl)
		peers = append(peers, p)
	}
	a, b, c := peers[0], peers[1], peers[2]
	if err := exchange(a, b); err != nil {
		return err
	}
	err = stopWatched(ctx, srv, s.ID, c, a, b)
	if err == nil {
		stopped = true
	}
	return err
}

// exchange is a call's offer and answer between a and b, then a chat
// message from a.
func exchange(a, b *Peer) error {
	if err := a.Send(fmt.Appendf(nil, `{"type":"signal","to":"%s","data":{"sdp":{"type":"offer","sdp":"v=0"}}}`, b.ID)); err != nil {
		return err
	}
	if err := waitSignals(b, 1); err != nil {
		return err
	}
	if err := b.Send(fmt.Appendf(nil, `{"type":"signal","to":"%s","data":{"sdp":{"type":"answer","sdp":"v=0"}}}`, a.ID)); err != nil {
		return err
	}
	if err := waitSignals(a, 1); err != nil {
		return err
	}
	return a.Send([]byte(`{"type":"message","topic":"chat","data":{"text":"bonjour"}}`))
}

// stopWatched has leaver leave, stops the session and checks that each
// of the watchers was told and closed with 4003. The watchers keep
// reading, as browsers do, so they answer the close handshake at once.
func stopWatched(ctx context.Context, srv *Server, id int64, leaver *Peer, watchers ...*Peer) error {
	codes := make([]int, len(watchers))
	var wg sync.WaitGroup
	for i, p := range watchers {
		wg.Go(func() {
			for {
				if _, err := p.Read(); err != nil {
					codes[i] = CloseCode(err)
					return
				}
			}
		})
	}
	if err := leaver.Close(); err != nil {
		wg.Wait() // the readers end at their read deadline
		return err
	}
	err := srv.StopSession(ctx, id)
	wg.Wait()
	if err != nil {
		return err
	}
	for _, code := range codes {
		if code != 4003 {
			return fmt.Errorf("after stop: close code %d, want 4003", code)
		}
	}
	return nil
}
