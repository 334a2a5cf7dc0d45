package loadgen

// W8: the SFU under load (issue 11, "Benchmark"). Synthetic participants
// join sessions of a real `rehabrtc serve` in media mode "sfu" through the
// session WebSocket, publish VP8 and Opus made by the tool and subscribe
// to everyone else (sfuclient.go); the server's CPU, RSS and the delays
// are measured from outside.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// SFUScenario is one shape of W8: Sessions sessions of Size participants,
// the first Pubs of each publishing a camera and a mic.
type SFUScenario struct {
	Sessions int `json:"sessions"`
	Size     int `json:"size"`
	Pubs     int `json:"publishers"`
}

// String is the scenario in the flag's syntax: "1x101/1", "1x6", "10x4".
func (s SFUScenario) String() string {
	if s.Pubs == s.Size {
		return fmt.Sprintf("%dx%d", s.Sessions, s.Size)
	}
	return fmt.Sprintf("%dx%d/%d", s.Sessions, s.Size, s.Pubs)
}

// Label names the scenario as issue 11 does.
func (s SFUScenario) Label() string {
	switch {
	case s.Sessions == 1 && s.Pubs < s.Size:
		return fmt.Sprintf("%d × %d (fan-out)", s.Pubs, s.Size-s.Pubs)
	case s.Sessions == 1:
		return fmt.Sprintf("%d × %d (everyone publishes)", s.Pubs, s.Size)
	}
	return fmt.Sprintf("%d sessions of %d", s.Sessions, s.Size)
}

// ParseSFUScenarios reads "1x101/1,1x6,10x4": sessions x participants,
// optionally /publishers (default: everyone publishes).
func ParseSFUScenarios(v string) ([]SFUScenario, error) {
	var out []SFUScenario
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		shape, pubs, hasPubs := strings.Cut(f, "/")
		a, b, ok := strings.Cut(shape, "x")
		if !ok {
			return nil, fmt.Errorf("SFU scenario %q: want SESSIONSxPARTICIPANTS[/PUBLISHERS], e.g. 1x101/1", f)
		}
		var s SFUScenario
		var err1, err2, err3 error
		s.Sessions, err1 = strconv.Atoi(a)
		s.Size, err2 = strconv.Atoi(b)
		s.Pubs = s.Size
		if hasPubs {
			s.Pubs, err3 = strconv.Atoi(pubs)
		}
		if err := errors.Join(err1, err2, err3); err != nil || s.Sessions < 1 || s.Size < 2 || s.Pubs < 1 || s.Pubs > s.Size {
			return nil, fmt.Errorf("SFU scenario %q: want 1 ≤ publishers ≤ participants, 2 ≤ participants, 1 ≤ sessions", f)
		}
		if s.Sessions*s.Size > 2000 {
			return nil, fmt.Errorf("SFU scenario %q: at most 2,000 participants", f)
		}
		out = append(out, s)
	}
	return out, nil
}

// W8Result is one run per scenario.
type W8Result struct {
	Runs []SFURun `json:"runs"`
}

// SFURun is what one scenario measured.
type SFURun struct {
	Scenario      string  `json:"scenario"` // flag syntax
	Label         string  `json:"label"`
	Sessions      int     `json:"sessions"`
	Size          int     `json:"participants_per_session"`
	Pubs          int     `json:"publishers_per_session"`
	Subscriptions int     `json:"subscriptions"` // (subscriber, track) pairs, video and audio
	Audio         bool    `json:"audio"`         // each publisher also sends a mic
	Simulcast     bool    `json:"simulcast"`     // cameras in three layers (the top one is forwarded)
	Seconds       float64 `json:"seconds"`       // the measured window
	// Packets published in the window, and what the subscribers should
	// have received of them (each to every other participant).
	Sent     int64   `json:"sent"`
	Expected int64   `json:"expected"`
	Received int64   `json:"received"`
	LossPct  float64 `json:"loss_pct"`
	PktPerS  float64 `json:"forwarded_pkt_per_s"`
	Mbps     float64 `json:"forwarded_mbit_per_s"`
	// Server CPU (utime+stime from /proc/<pid>/stat) over the window.
	ServerCPUPct   float64 `json:"server_cpu_pct"`
	ServerUsPerPkt float64 `json:"server_cpu_us_per_forwarded_pkt"`
	PktPerCore     float64 `json:"forwarded_pkt_per_s_per_server_core"`
	// The load tool's own CPU over the window (all its clients).
	LoadCPUPct   float64 `json:"load_cpu_pct"`
	LoadUsPerPkt float64 `json:"load_cpu_us_per_received_pkt"`
	// Lat is the publisher's stamp (taken before WriteRTP) → the tool's
	// reader gets the decrypted packet ("at the application": includes
	// pion's write chain in the publisher and the tool's own receive
	// path), every packet of the window. LatSocket is the publisher's
	// sendto → the datagram's arrival on the subscriber's socket ("at the
	// socket": the server's added latency, what issue 11's target is
	// about). SocketStamp says where the arrival time comes from;
	// NoSocketStamp counts packets whose arrival was not found (not in
	// LatSocket), NoSendto those whose sendto time was not found (the
	// payload's stamp stands in). PubGap is, per published video packet,
	// the stamp → its sendto.
	Lat           Dist   `json:"latency"`
	LatSocket     Dist   `json:"latency_at_socket"`
	SocketStamp   string `json:"socket_stamp"`
	NoSocketStamp int64  `json:"no_socket_stamp"`
	NoSendto      int64  `json:"no_sendto_stamp"`
	PubGap        Dist   `json:"publisher_stamp_to_sendto"`
	// The socket latency split per published packet: to the first of its
	// subscribers (the server's read, decryption and routing, and its
	// waits for a CPU), and from the first to the last of them (the
	// fan-out's own length).
	SockFirst  Dist `json:"socket_latency_first_subscriber"`
	SockSpread Dist `json:"socket_fanout_first_to_last"`
	// FirstMedia is per subscription: the later of the two participants'
	// start of media signaling → the first packet received.
	FirstMedia Dist `json:"join_to_first_media"`
	// RSS after every join without media, then with every track
	// subscribed and flowing; per subscribed track.
	RSSJoinedkB   int64   `json:"rss_joined_kb"`
	RSSMediakB    int64   `json:"rss_media_kb"`
	RSSPerTrackkB float64 `json:"rss_per_subscribed_track_kb"`
	ServerThreads int     `json:"server_threads"`
	// Where a tail can come from besides the forwarding: the server's and
	// the tool's threads' time runnable but waiting for their CPU (run
	// queue, from schedstat; other processes on the CPU), ms per second
	// of the window, and the server's garbage collections in the window
	// (count, stop-the-world pauses summed, from its /metrics) and the
	// longest recent pause (go_gc_duration_seconds' quantile 1).
	ServerRunQueueMsPerS float64 `json:"server_run_queue_wait_ms_per_s"`
	ToolRunQueueMsPerS   float64 `json:"tool_run_queue_wait_ms_per_s"`
	ServerGCs            int64   `json:"server_gcs"`
	ServerGCPauseMs      float64 `json:"server_gc_pause_ms"`
	ServerGCMaxPauseMs   float64 `json:"server_gc_max_recent_pause_ms"`
	Goroutines           int     `json:"server_goroutines"`
	// Datagrams the kernel dropped in the window because a socket's
	// receive buffer was full: on the server's ICE UDP port, and on every
	// other UDP socket of the machine (the clients').
	ServerSockDrops int64   `json:"server_socket_drops"`
	ClientSockDrops int64   `json:"client_socket_drops"`
	SFUErrors       int     `json:"sfu_errors"`
	FirstSFUError   string  `json:"first_sfu_error,omitempty"`
	ReadyAfterSecs  float64 `json:"ready_after_s"` // start of media → every subscription receiving
	// With --w8-idle: the server's CPU (% of a core) while every
	// connection stays up and nobody sends media, its peer connections,
	// and that CPU per connection (CPU-µs per second).
	IdleCPUPct       float64 `json:"idle_server_cpu_pct,omitempty"`
	IdleConns        int     `json:"idle_server_peer_connections,omitempty"`
	IdleUsPerConnSec float64 `json:"idle_server_cpu_us_per_connection_s,omitempty"`
}

// fanOut reports whether the run is a fan-out (Galène's 4.1–4.3 µs
// target) rather than small groups (6.3–7.4 µs).
func (s SFURun) fanOut() bool { return s.Sessions == 1 && s.Pubs == 1 && s.Size > 10 }

// RehabW8 runs every SFU scenario, each on a fresh server.
func RehabW8(ctx context.Context, env *Env, o Options) (W8Result, error) {
	var res W8Result
	scs, err := ParseSFUScenarios(o.W8Scenarios)
	if err != nil {
		return res, err
	}
	for _, sc := range scs {
		r, err := rehabSFU(ctx, env, o, sc)
		if err != nil {
			return res, fmt.Errorf("%s: %w", sc, err)
		}
		env.Logf("W8 %s: %.0f pkt/s forwarded, %.2f server CPU-µs/pkt, p50/p99 %.2f/%.2f ms, loss %.3f %%",
			sc, r.PktPerS, r.ServerUsPerPkt, r.Lat.P50, r.Lat.P99, r.LossPct)
		res.Runs = append(res.Runs, r)
	}
	return res, nil
}

// RehabW8Pair runs every SFU scenario on env's binary, then on base's,
// scenario by scenario, so that both see the machine as it is then.
func RehabW8Pair(ctx context.Context, env, base *Env, o Options) (W8Result, W8Result, error) {
	var res, bres W8Result
	scs, err := ParseSFUScenarios(o.W8Scenarios)
	if err != nil {
		return res, bres, err
	}
	for _, sc := range scs {
		for _, side := range []struct {
			e   *Env
			out *W8Result
			who string
		}{{env, &res, "rehabrtc"}, {base, &bres, "baseline"}} {
			r, err := rehabSFU(ctx, side.e, o, sc)
			if err != nil {
				return res, bres, fmt.Errorf("%s %s: %w", side.who, sc, err)
			}
			env.Logf("W8 %s %s: %.0f pkt/s forwarded, %.2f server CPU-µs/pkt, p50/p99 %.2f/%.2f ms, loss %.3f %%",
				side.who, sc, r.PktPerS, r.ServerUsPerPkt, r.Lat.P50, r.Lat.P99, r.LossPct)
			side.out.Runs = append(side.out.Runs, r)
		}
	}
	return res, bres, nil
}

// SFUMedia makes the server carry media through its SFU on fixed loopback
// ports, without the embedded TURN server (nothing here needs a relay).
func SFUMedia(udpPort, tcpPort int) ServerOption {
	return func(cfg map[string]any) {
		r := cfg["RehabRTC"].(map[string]any)
		r["media_mode"] = "sfu"
		r["sfu"] = map[string]any{"bind": "127.0.0.1", "udp_port": udpPort, "tcp_port": tcpPort}
		r["turn"] = map[string]any{"enabled": false}
	}
}

// freeUDPPort is a loopback UDP port free a moment ago.
func freeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func (m *measure) in(t int64) bool { return t >= m.from.Load() && t < m.to.Load() }

func rehabSFU(ctx context.Context, env *Env, o Options, sc SFUScenario) (SFURun, error) {
	run := SFURun{Scenario: sc.String(), Label: sc.Label(), Sessions: sc.Sessions, Size: sc.Size, Pubs: sc.Pubs,
		Subscriptions: sc.Sessions * sc.Pubs * 2 * (sc.Size - 1), Audio: !o.W8NoAudio}
	if o.W8NoAudio {
		run.Subscriptions /= 2
		run.Label += ", camera only"
	}
	if o.W8Simulcast {
		run.Label += ", simulcast"
	}
	run.Simulcast = o.W8Simulcast
	udp, err := freeUDPPort()
	if err != nil {
		return run, err
	}
	tcp, err := freeRange(1)
	if err != nil {
		return run, err
	}
	srv, err := StartServer(ctx, env, sc.Sessions, SFUMedia(udp, tcp))
	if err != nil {
		return run, err
	}
	defer srv.Stop()
	api, socks, err := sfuClientAPI(o.W8Simulcast, o.W8TWCC)
	if err != nil {
		return run, err
	}
	tally := &sfuTally{win: newMeasure()}
	peers, err := sfuJoinAll(ctx, srv, sc, api, socks, tally, o)
	defer func() {
		_ = parallel(context.Background(), len(peers), 8, func(i int) error { peers[i].close(); return nil })
	}()
	if err != nil {
		return run, err
	}
	// RSS with every participant joined and no media yet.
	srv.Quiet(2 * time.Second)
	joined, err := srv.Proc()
	if err != nil {
		return run, err
	}
	run.RSSJoinedkB = joined.RSSkB

	t0 := time.Now()
	if err := parallel(ctx, len(peers), 4, func(i int) error { return peers[i].begin() }); err != nil {
		return run, fmt.Errorf("publish: %w", err)
	}
	if err := sfuWaitFlowing(ctx, tally, run.Subscriptions, 60*time.Second); err != nil {
		return run, err
	}
	run.ReadyAfterSecs = round3(time.Since(t0).Seconds())
	if err := sleepCtx(ctx, o.W8Warmup); err != nil {
		return run, err
	}

	st0, err := ReadProc(srv.Pid)
	if err != nil {
		return run, err
	}
	stopProfile, err := toolProfile(o.W8ToolProfile, sc)
	if err != nil {
		return run, err
	}
	self0, wall0, socks0 := SelfCPUTicks(), time.Now(), udpSockets()
	rq0, toolRQ0 := RunQueueWait(srv.Pid), RunQueueWait(os.Getpid())
	gc0, gcErr := srv.metrics("go_gc_duration_seconds_count", "go_gc_duration_seconds_sum")
	tally.win.from.Store(clock())
	err = sleepCtx(ctx, o.W8Duration)
	tally.win.to.Store(clock())
	stopProfile()
	if err != nil {
		return run, err
	}
	wall := time.Since(wall0)
	st1, err := ReadProc(srv.Pid)
	if err != nil {
		return run, err
	}
	self1 := SelfCPUTicks()
	run.ServerRunQueueMsPerS = round3(float64(RunQueueWait(srv.Pid)-rq0) / 1e6 / wall.Seconds())
	run.ToolRunQueueMsPerS = round3(float64(RunQueueWait(os.Getpid())-toolRQ0) / 1e6 / wall.Seconds())
	if gc1, err := srv.metrics("go_gc_duration_seconds_count", "go_gc_duration_seconds_sum", `go_gc_duration_seconds{quantile="1"}`); err == nil && gcErr == nil {
		run.ServerGCs = int64(gc1[0] - gc0[0])
		run.ServerGCPauseMs = round3((gc1[1] - gc0[1]) * 1e3)
		run.ServerGCMaxPauseMs = round3(gc1[2] * 1e3)
	}
	run.ServerSockDrops, run.ClientSockDrops = udpDrops(socks0, udpSockets(), udp)
	// The window's last packets in flight, then the footprint with every
	// track still subscribed and flowing.
	if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
		return run, err
	}
	full, err := srv.Proc()
	if err != nil {
		return run, err
	}
	run.RSSMediakB, run.ServerThreads, run.Goroutines = full.RSSkB, full.Threads, full.Goroutine
	run.RSSPerTrackkB = round3(float64(full.RSSkB-joined.RSSkB) / float64(run.Subscriptions))

	if o.W8Idle > 0 {
		if err := sfuIdle(ctx, env, srv, tally, &run, sc, o.W8Idle); err != nil {
			return run, err
		}
	}
	for i := range peers { // the readers add their counts when they end
		peers[i].close()
	}
	return sfuFigures(run, tally, wall, st1.CPUTicks-st0.CPUTicks, self1-self0, sc)
}

// sfuIdle mutes every publisher, lets the last packets drain, then
// measures the server's CPU for d with every connection still up.
func sfuIdle(ctx context.Context, env *Env, srv *Server, tally *sfuTally, run *SFURun, sc SFUScenario, d time.Duration) error {
	tally.muted.Store(true)
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	env.Logf("W8 %s: idle window (%s, connections up, no media)", sc, d)
	st0, err := ReadProc(srv.Pid)
	if err != nil {
		return err
	}
	wall0 := time.Now()
	if err := sleepCtx(ctx, d); err != nil {
		return err
	}
	st1, err := ReadProc(srv.Pid)
	if err != nil {
		return err
	}
	wall := time.Since(wall0).Seconds()
	cpu := CPUSeconds(st1.CPUTicks-st0.CPUTicks) / wall // cores
	run.IdleCPUPct = round3(100 * cpu)
	run.IdleConns = sc.Sessions * (sc.Size + sc.Pubs) // a subscribe connection each, a publish one per publisher
	run.IdleUsPerConnSec = round3(cpu * 1e6 / float64(run.IdleConns))
	return nil
}

// toolProfile starts the tool's CPU profile into path.<scenario>.pprof
// when path is set; the returned func stops it.
func toolProfile(path string, sc SFUScenario) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.pprof", path, strings.ReplaceAll(sc.String(), "/", "-")))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("load tool CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// sfuJoinAll starts the sessions and joins every participant (WebSocket
// and welcome only).
func sfuJoinAll(ctx context.Context, srv *Server, sc SFUScenario, api *webrtc.API, socks *stampSockets, tally *sfuTally, o Options) ([]*sfuPeer, error) {
	var all []*sfuPeer
	for range sc.Sessions {
		uuids := make([]string, sc.Size)
		for i := range uuids {
			uuids[i] = NewUUID()
		}
		s, err := srv.StartSession(ctx, uuids[:1], uuids[1:])
		if err != nil {
			return all, err
		}
		ws, err := joinSFU(ctx, srv, s, uuids)
		if err != nil {
			return all, fmt.Errorf("join: %w", err)
		}
		byID := map[string]*sfuPeer{}
		for i, p := range ws {
			c := newSFUPeer(api, socks, tally, p, i < sc.Pubs)
			c.noAudio, c.simulcast = o.W8NoAudio, o.W8Simulcast
			c.peers = byID
			byID[p.ID] = c
			all = append(all, c)
		}
	}
	return all, nil
}

// sfuWaitFlowing polls until every subscription has received media.
func sfuWaitFlowing(ctx context.Context, t *sfuTally, want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		got := t.firsts.Load()
		if got >= int64(want) {
			return nil
		}
		t.mu.Lock()
		fails, errs := t.failures, t.sfuErrs
		t.mu.Unlock()
		if len(fails) > 0 {
			return fmt.Errorf("%d client failure(s), first: %w", len(fails), fails[0])
		}
		if time.Now().After(deadline) {
			first := ""
			if len(errs) > 0 {
				first = "; first sfu-error: " + errs[0]
			}
			return fmt.Errorf("%d of %d subscriptions received media within %s%s", got, want, limit, first)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// sfuFigures turns the tally of a finished run into its figures.
func sfuFigures(run SFURun, t *sfuTally, wall time.Duration, serverTicks, selfTicks int64, sc SFUScenario) (SFURun, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	run.Seconds = round3(wall.Seconds())
	run.Sent = t.sent.Load()
	run.Expected = run.Sent * int64(sc.Size-1)
	run.Received = t.recv
	run.SFUErrors = len(t.sfuErrs)
	if len(t.sfuErrs) > 0 {
		run.FirstSFUError = t.sfuErrs[0]
	}
	if run.Expected > 0 {
		run.LossPct = round3(100 * float64(run.Expected-run.Received) / float64(run.Expected))
	}
	secs := wall.Seconds()
	run.PktPerS = round3(float64(run.Received) / secs)
	run.Mbps = round3(float64(t.bytes) * 8 / secs / 1e6)
	run.ServerCPUPct = round3(100 * CPUSeconds(serverTicks) / secs)
	run.LoadCPUPct = round3(100 * CPUSeconds(selfTicks) / secs)
	if run.Received > 0 {
		run.ServerUsPerPkt = round3(1e6 * CPUSeconds(serverTicks) / float64(run.Received))
		run.LoadUsPerPkt = round3(1e6 * CPUSeconds(selfTicks) / float64(run.Received))
	}
	if run.ServerUsPerPkt > 0 {
		run.PktPerCore = round3(1e6 / run.ServerUsPerPkt)
	}
	run.Lat = Summarize(t.lat)
	run.SockFirst, run.SockSpread = fanOutSplit(t.sockLat, t.sockKey)
	run.LatSocket = Summarize(t.sockLat)
	run.NoSocketStamp, run.NoSendto = t.noStamp, t.noSendto
	run.PubGap = Summarize(t.pubGap)
	run.SocketStamp = "kernel receive time (SO_TIMESTAMPNS)"
	if t.readTime {
		run.SocketStamp = "socket read's return (no kernel timestamps)"
	}
	run.FirstMedia = Summarize(t.first)
	if run.Received == 0 {
		return run, errors.New("no media received in the measured window")
	}
	return run, nil
}

// fanOutSplit groups socket latencies by published packet: per packet,
// the first subscriber's and the spread from the first to the last.
func fanOutSplit(lat []time.Duration, key []uint64) (first, spread Dist) {
	type span struct{ lo, hi time.Duration }
	by := make(map[uint64]span, len(lat)/4+1)
	for i, d := range lat {
		s, ok := by[key[i]]
		if !ok {
			s = span{d, d}
		}
		by[key[i]] = span{min(s.lo, d), max(s.hi, d)}
	}
	firsts := make([]time.Duration, 0, len(by))
	spreads := make([]time.Duration, 0, len(by))
	for _, s := range by {
		firsts = append(firsts, s.lo)
		spreads = append(spreads, s.hi-s.lo)
	}
	return Summarize(firsts), Summarize(spreads)
}

// Galène's figures on this workload and machine (issue 11, "Benchmark"):
// CPU per forwarded packet with the server pinned to one core, and the
// p99 added latency at 1 × 100, which rehabrtc must halve.
const (
	galeneFanoutUs  = 4.3 // µs per forwarded packet, fan-out (4.1–4.3)
	galeneGroupUs   = 7.4 // µs, small groups (6.3–7.4)
	galeneFanoutP99 = 8.0 // ms at 1 × 100
)

// rowsW8: one block of rows per scenario, the baseline binary's run of the
// same scenario beside it when there is one.
func (r *Report) rowsW8() {
	R := r.Rehab.W8
	if R == nil {
		return
	}
	for _, run := range R.Runs {
		var b *SFURun
		if r.Easy.W8 != nil {
			for i := range r.Easy.W8.Runs {
				if r.Easy.W8.Runs[i].Scenario == run.Scenario {
					b = &r.Easy.W8.Runs[i]
				}
			}
		}
		get := func(f func(SFURun) float64) (*float64, *float64) {
			var bv *float64
			if b != nil {
				bv = pf(f(*b))
			}
			return pf(f(run)), bv
		}
		name := run.Label
		for _, f := range []struct {
			fig, unit string
			higher    bool
			v         func(SFURun) float64
		}{
			{"forwarded packets/s", "pkt/s", true, func(s SFURun) float64 { return s.PktPerS }},
			{"forwarded Mbit/s", "Mbit/s", true, func(s SFURun) float64 { return s.Mbps }},
			{"server CPU per forwarded packet", "µs", false, func(s SFURun) float64 { return s.ServerUsPerPkt }},
			{"forwarded packets/s per server core", "pkt/s", true, func(s SFURun) float64 { return s.PktPerCore }},
			{"server CPU", "% of a core", false, func(s SFURun) float64 { return s.ServerCPUPct }},
			{"added latency at the socket p50", "ms", false, func(s SFURun) float64 { return s.LatSocket.P50 }},
			{"added latency at the socket p99", "ms", false, func(s SFURun) float64 { return s.LatSocket.P99 }},
			{"added latency at the application p50", "ms", false, func(s SFURun) float64 { return s.Lat.P50 }},
			{"added latency at the application p99", "ms", false, func(s SFURun) float64 { return s.Lat.P99 }},
			{"publisher's stamp → its sendto p99", "ms", false, func(s SFURun) float64 { return s.PubGap.P99 }},
			{"at the socket, per packet: first subscriber p99", "ms", false, func(s SFURun) float64 { return s.SockFirst.P99 }},
			{"at the socket, per packet: first → last subscriber p99", "ms", false, func(s SFURun) float64 { return s.SockSpread.P99 }},
			{"server RSS per subscribed track", "kB", false, func(s SFURun) float64 { return s.RSSPerTrackkB }},
			{"join to first media p50", "ms", false, func(s SFURun) float64 { return s.FirstMedia.P50 }},
			{"join to first media max", "ms", false, func(s SFURun) float64 { return s.FirstMedia.Max }},
			{"loss", "%", false, func(s SFURun) float64 { return s.LossPct }},
			{"datagrams dropped by full socket buffers: server", "", false, func(s SFURun) float64 { return float64(s.ServerSockDrops) }},
			{"datagrams dropped by full socket buffers: clients", "", false, func(s SFURun) float64 { return float64(s.ClientSockDrops) }},
			{"load tool CPU", "% of a core", false, func(s SFURun) float64 { return s.LoadCPUPct }},
			{"load tool CPU per received packet", "µs", false, func(s SFURun) float64 { return s.LoadUsPerPkt }},
			{"server threads' run-queue wait", "ms/s", false, func(s SFURun) float64 { return s.ServerRunQueueMsPerS }},
			{"load tool threads' run-queue wait", "ms/s", false, func(s SFURun) float64 { return s.ToolRunQueueMsPerS }},
			{"server garbage collections", "", false, func(s SFURun) float64 { return float64(s.ServerGCs) }},
			{"server CPU, connections up and no media (--w8-idle)", "% of a core", false, func(s SFURun) float64 { return s.IdleCPUPct }},
			{"server CPU per connection up, no media (--w8-idle)", "µs/s", false, func(s SFURun) float64 { return s.IdleUsPerConnSec }},
			{"server GC pauses, summed", "ms", false, func(s SFURun) float64 { return s.ServerGCPauseMs }},
		} {
			a, bv := get(f.v)
			r.row("W8", name+": "+f.fig, f.unit, f.higher, a, bv)
		}
	}
}

// targetsW8: CPU per forwarded packet against Galène's in every scenario,
// and half Galène's p99 in the fan-out.
func (r *Report) targetsW8() {
	R := r.Rehab.W8
	if R == nil || len(R.Runs) == 0 {
		r.target("SFU: server CPU per forwarded packet ≤ Galène's (W8)", "≤ 4.3 µs fan-out, ≤ 7.4 µs groups", "not measured in this run", nil)
		r.target("SFU: p99 added latency at the socket at 1 × 100 ≤ half Galène's 8 ms (W8)", "≤ 4 ms", "not measured in this run", nil)
		return
	}
	for _, run := range R.Runs {
		want := galeneGroupUs
		if run.fanOut() {
			want = galeneFanoutUs
		}
		r.target(fmt.Sprintf("SFU %s: server CPU per forwarded packet ≤ Galène's", run.Label), fmt.Sprintf("≤ %.1f µs", want),
			fmt.Sprintf("%.2f µs (%.0f pkt/s on %.1f %% of a core)", run.ServerUsPerPkt, run.PktPerS, run.ServerCPUPct),
			holds(run.ServerUsPerPkt <= want))
		if run.fanOut() {
			// The server's added latency ends at the subscriber's socket;
			// the tool's own receive path comes on top (shown beside it).
			r.target(fmt.Sprintf("SFU %s: p99 added latency at the socket ≤ half Galène's 8 ms", run.Label), "≤ 4 ms",
				fmt.Sprintf("at the socket: p50 %.2f ms, p99 %.2f ms (at the application: p50 %.2f ms, p99 %.2f ms)",
					run.LatSocket.P50, run.LatSocket.P99, run.Lat.P50, run.Lat.P99),
				holds(run.LatSocket.N > 0 && run.LatSocket.P99 <= galeneFanoutP99/2))
		}
	}
}
