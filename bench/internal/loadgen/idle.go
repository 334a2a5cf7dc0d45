package loadgen

// W3: idle peers, what each one costs.

import (
	"context"
	"fmt"
	"sync"
	"time"
)

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
	slots, err := idleSlots(ctx, srv, n, per)
	if err != nil {
		return W3Size{}, err
	}
	if err := sleepCtx(ctx, o.W3Settle); err != nil {
		return W3Size{}, err
	}
	srv.Quiet(time.Second)
	before, err := srv.Proc()
	if err != nil {
		return W3Size{}, err
	}
	t0 := time.Now()
	stop, err := joinIdle(ctx, srv, slots)
	defer stop()
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

// slot is where one idle peer joins: a session port, its key, an invitee.
type slot struct {
	port int
	key  string
	uuid string
}

// idleSlots starts sessions of per invitees each until there are n.
func idleSlots(ctx context.Context, srv *Server, n, per int) ([]slot, error) {
	slots := make([]slot, 0, n)
	for i := 0; len(slots) < n; i++ {
		k := min(per, n-i*per)
		uuids := make([]string, k)
		for j := range uuids {
			uuids[j] = NewUUID()
		}
		s, err := srv.StartSession(ctx, []string{NewUUID()}, uuids)
		if err != nil {
			return nil, err
		}
		for _, u := range uuids {
			slots = append(slots, slot{s.Port, KeyOf(s.URLParticipants), u})
		}
	}
	return slots, nil
}

// joinIdle joins one peer per slot (32 at a time), each with a reader
// that drains notices and answers pings. stop closes them all and waits
// for the readers; call it even when joinIdle fails.
func joinIdle(ctx context.Context, srv *Server, slots []slot) (stop func(), err error) {
	peers := make([]*Peer, len(slots))
	var wg sync.WaitGroup
	stop = func() {
		for _, p := range peers {
			if p != nil {
				p.CloseNow()
			}
		}
		wg.Wait()
	}
	err = parallel(ctx, len(slots), 32, func(i int) error {
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		p, err := Join(jctx, srv.WSAddr(), slots[i].port, slots[i].key, slots[i].uuid, "idle", smallRBuf)
		if err != nil {
			return err
		}
		peers[i] = p
		wg.Go(func() {
			for {
				if _, err := p.Read(); err != nil {
					return
				}
			}
		})
		return nil
	})
	return stop, err
}
