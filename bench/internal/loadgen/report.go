package loadgen

import (
	"cmp"
	"fmt"
	"math"
	"strings"
)

// Row is one figure of the table.
type Row struct {
	Workload string   `json:"workload"`
	Figure   string   `json:"figure"`
	Unit     string   `json:"unit"`
	Rehab    *float64 `json:"rehabrtc"`
	Easy     *float64 `json:"easyrtc,omitempty"`
	// Ratio is how many times better rehabrtc is (easyrtc/rehabrtc for
	// lower-is-better figures, rehabrtc/easyrtc otherwise).
	Ratio        *float64 `json:"ratio,omitempty"`
	HigherBetter bool     `json:"higher_is_better"`
	Note         string   `json:"note,omitempty"`
}

// Target is one target of issue 6, point 4.
type Target struct {
	Name  string `json:"name"`
	Want  string `json:"want"`
	Got   string `json:"got"`
	Holds *bool  `json:"holds"` // nil: not measured in this run
}

// Results are the raw results of each side, per workload.
type Results struct {
	W0 *W0Result `json:"w0,omitempty"`
	W1 *W1Result `json:"w1,omitempty"`
	// W1Child is W1 with rehabrtc's process-per-session mode.
	W1Child *W1Result `json:"w1_child_process,omitempty"`
	W2      *W2Result `json:"w2,omitempty"`
	W3      *W3Result `json:"w3,omitempty"`
	W4      *W4Result `json:"w4,omitempty"`
	W5      *W5Result `json:"w5,omitempty"`
	W6      *W6Result `json:"w6,omitempty"`
	W7      *W7Result `json:"w7,omitempty"`
	W8      *W8Result `json:"w8,omitempty"`
	W9      *W9Result `json:"w9,omitempty"`
}

// Report is the whole output of a run.
type Report struct {
	Started   string  `json:"started"`
	Seconds   float64 `json:"seconds"`
	Machine   Machine `json:"machine"`
	Pinning   string  `json:"pinning"`
	ServerEnv string  `json:"server_env"`
	LogLevels string  `json:"log_levels"`
	EasyRTC   string  `json:"easyrtc"` // versions, or why it did not run
	// Other names the comparison column: "" for open-easyrtc, "baseline"
	// when it holds another rehabrtc binary (Config.BaselineBin).
	Other   string   `json:"other,omitempty"`
	Options Options  `json:"options"`
	Rehab   Results  `json:"rehabrtc"`
	Easy    Results  `json:"easyrtc_results"`
	Rows    []Row    `json:"rows"`
	Targets []Target `json:"targets"`
	// ClusterRows are W9's figures: Easy holds one node's, Rehab three
	// nodes' (its own table: the columns are not open-easyrtc's).
	ClusterRows []Row    `json:"cluster_rows,omitempty"`
	Errors      []string `json:"errors,omitempty"`
	Interrupted bool     `json:"interrupted,omitempty"`
	LoadAvg     string   `json:"loadavg_at_start"`
	// OtherCPUPct is the share of the machine's CPU time that processes
	// other than the benchmark and its servers used during the run.
	OtherCPUPct float64 `json:"other_processes_cpu_pct"`
}

func pf(v float64) *float64 { return &v }

func (r *Report) row(w, fig, unit string, higher bool, rehab *float64, easy *float64) {
	row := Row{Workload: w, Figure: fig, Unit: unit, Rehab: rehab, Easy: easy, HigherBetter: higher}
	if rehab != nil && easy != nil && *rehab > 0 && *easy > 0 {
		ratio := *easy / *rehab
		if higher {
			ratio = *rehab / *easy
		}
		row.Ratio = pf(ratio)
	}
	r.Rows = append(r.Rows, row)
}

// Build fills Rows and Targets from the results.
func (r *Report) Build() {
	r.Rows, r.Targets = nil, nil
	r.rowsW0()
	r.rowsW1()
	r.rowsW2()
	r.rowsW3()
	r.rowsFlood()
	r.rowsW6()
	r.rowsW7()
	r.rowsW8()
	r.rowsW9()
	r.targets()
}

// rowsW0: start-up.
func (r *Report) rowsW0() {
	R, E := r.Rehab, r.Easy
	if R.W0 != nil || E.W0 != nil {
		get := func(w *W0Result, f func(W0Result) float64) *float64 {
			if w == nil || len(w.Runs) == 0 {
				return nil
			}
			return pf(f(*w))
		}
		r.row("W0", "start-up to ready, median", "ms", false,
			get(R.W0, func(w W0Result) float64 { return w.ReadyMedian }), get(E.W0, func(w W0Result) float64 { return w.ReadyMedian }))
		r.row("W0", "idle RSS, median", "MB", false,
			get(R.W0, func(w W0Result) float64 { return w.RSSMedian / 1024 }), get(E.W0, func(w W0Result) float64 { return w.RSSMedian / 1024 }))
		r.row("W0", "threads when idle", "", false,
			get(R.W0, func(w W0Result) float64 { return float64(w.Runs[0].Threads) }), get(E.W0, func(w W0Result) float64 { return float64(w.Runs[0].Threads) }))
	}
}

// rowsW1: session starts.
func (r *Report) rowsW1() {
	R, E := r.Rehab, r.Easy
	if R.W1 != nil || E.W1 != nil {
		get := func(w *W1Result, f func(W1Result) float64) *float64 {
			if w == nil || w.Sessions == 0 {
				return nil
			}
			return pf(f(*w))
		}
		r.row("W1", "session start (start → link 200) p50", "ms", false,
			get(R.W1, func(w W1Result) float64 { return w.Start.P50 }), get(E.W1, func(w W1Result) float64 { return w.Start.P50 }))
		r.row("W1", "session start p99", "ms", false,
			get(R.W1, func(w W1Result) float64 { return w.Start.P99 }), get(E.W1, func(w W1Result) float64 { return w.Start.P99 }))
		r.row("W1", "RSS per idle running session", "kB", false,
			get(R.W1, func(w W1Result) float64 { return w.PerSessionkB }), get(E.W1, func(w W1Result) float64 { return w.PerSessionkB }))
		if R.W1Child != nil && R.W1Child.Sessions > 0 {
			c := R.W1Child
			e := func(f func(W1Result) float64) *float64 { return get(E.W1, f) }
			r.row("W1", "session start, child-process runner, p50", "ms", false, pf(c.Start.P50), e(func(w W1Result) float64 { return w.Start.P50 }))
			r.row("W1", "session start, child-process runner, p99", "ms", false, pf(c.Start.P99), e(func(w W1Result) float64 { return w.Start.P99 }))
			r.row("W1", "RSS per idle session, child-process runner (server + child)", "kB", false, pf(c.PerSessionkB), e(func(w W1Result) float64 { return w.PerSessionkB }))
		}
	}
}

// rowsW2: joins and call setups.
func (r *Report) rowsW2() {
	R, E := r.Rehab, r.Easy
	if R.W2 != nil || E.W2 != nil {
		get := func(w *W2Result, f func(W2Result) Dist, p99 bool) *float64 {
			if w == nil || f(*w).N == 0 {
				return nil
			}
			if p99 {
				return pf(f(*w).P99)
			}
			return pf(f(*w).P50)
		}
		for _, f := range []struct {
			name string
			d    func(W2Result) Dist
		}{
			{"join (dial → welcome/token), sequential", func(w W2Result) Dist { return w.JoinSeq }},
			{fmt.Sprintf("join, %d concurrent", r.Options.W2Concurrent), func(w W2Result) Dist { return w.JoinConc }},
			{fmt.Sprintf("1:1 call setup (offer/answer + %d candidates)", r.Options.W2Candidates), func(w W2Result) Dist { return w.Call }},
		} {
			r.row("W2", f.name+" p50", "ms", false, get(R.W2, f.d, false), get(E.W2, f.d, false))
			r.row("W2", f.name+" p99", "ms", false, get(R.W2, f.d, true), get(E.W2, f.d, true))
		}
	}
}

// rowsW3: idle peers.
func (r *Report) rowsW3() {
	R, E := r.Rehab, r.Easy
	if R.W3 != nil || E.W3 != nil {
		for _, n := range r.Options.W3Sizes {
			find := func(w *W3Result) *W3Size {
				if w == nil {
					return nil
				}
				for i := range w.Sizes {
					if w.Sizes[i].Peers == n && w.Sizes[i].Skipped == "" {
						return &w.Sizes[i]
					}
				}
				return nil
			}
			rs, es := find(R.W3), find(E.W3)
			get := func(s *W3Size, f func(*W3Size) float64) *float64 {
				if s == nil {
					return nil
				}
				return pf(f(s))
			}
			r.row("W3", fmt.Sprintf("RSS per idle peer, %d peers", n), "kB", false,
				get(rs, func(s *W3Size) float64 { return s.PerPeerkB }), get(es, func(s *W3Size) float64 { return s.PerPeerkB }))
			r.row("W3", fmt.Sprintf("idle CPU, %d peers", n), "%", false,
				get(rs, func(s *W3Size) float64 { return s.IdleCPUPct }), get(es, func(s *W3Size) float64 { return s.IdleCPUPct }))
		}
	}
}

// floodRows adds the rows of W4 or W5 runs, each side by side with the
// EasyRTC run of the same size (key).
func (r *Report) floodRows(w string, rr, er []FloodRun, key func(FloodRun) int, label string) {
	for _, run := range rr {
		k := key(run)
		var e *FloodRun
		for i := range er {
			if key(er[i]) == k {
				e = &er[i]
			}
		}
		get := func(f func(FloodRun) float64) (*float64, *float64) {
			var ev *float64
			if e != nil {
				ev = pf(f(*e))
			}
			return pf(f(run)), ev
		}
		name := fmt.Sprintf("%s %d, window %d", label, k, run.Window)
		a, b := get(func(f FloodRun) float64 { return f.MsgsPerSec })
		r.row(w, name+": delivered msgs/s", "msg/s", true, a, b)
		a, b = get(func(f FloodRun) float64 { return f.Lat.P50 })
		r.row(w, name+": latency p50", "ms", false, a, b)
		a, b = get(func(f FloodRun) float64 { return f.Lat.P99 })
		r.row(w, name+": latency p99", "ms", false, a, b)
		a, b = get(func(f FloodRun) float64 { return f.ServerCPUPct })
		r.Rows = append(r.Rows, Row{Workload: w, Figure: name + ": server CPU", Unit: "%", Rehab: a, Easy: b})
		a, b = get(func(f FloodRun) float64 { return f.ServerUsPerMsg })
		r.row(w, name+": server CPU per delivered msg", "µs", false, a, b)
	}
}

// rowsFlood: W4 relay flood and W5 fan-out.
func (r *Report) rowsFlood() {
	R, E := r.Rehab, r.Easy
	if R.W4 != nil {
		var er []FloodRun
		if E.W4 != nil {
			er = E.W4.Runs
		}
		r.floodRows("W4", R.W4.Runs, er, func(f FloodRun) int { return f.Pairs }, "pairs")
	}
	if R.W5 != nil {
		var er []FloodRun
		if E.W5 != nil {
			er = E.W5.Runs
		}
		r.floodRows("W5", R.W5.Runs, er, func(f FloodRun) int { return f.Receivers }, "receivers")
	}
}

// rowsW6: churn.
func (r *Report) rowsW6() {
	R := r.Rehab
	if R.W6 != nil {
		w := R.W6
		r.row("W6", fmt.Sprintf("churn: %d cycles in %.0f s (%.1f/s)", w.Cycles, w.Seconds, w.PerSecond), "cycles", true, pf(float64(w.Cycles)), nil)
		r.Rows = append(r.Rows,
			Row{Workload: "W6", Figure: "live Go heap idle → end (after a GC)", Unit: "MB", Rehab: pf(round3(float64(w.End.HeapAllockB) / 1024)), Note: fmt.Sprintf("idle %.1f MB", float64(w.Idle.HeapAllockB)/1024)},
			Row{Workload: "W6", Figure: "anonymous RSS idle → end", Unit: "MB", Rehab: pf(round3(float64(w.End.AnonkB) / 1024)), Note: fmt.Sprintf("idle %.1f MB", float64(w.Idle.AnonkB)/1024)},
			Row{Workload: "W6", Figure: "RSS idle → end", Unit: "MB", Rehab: pf(round3(float64(w.End.RSSkB) / 1024)), Note: fmt.Sprintf("idle %.1f MB", float64(w.Idle.RSSkB)/1024)},
			Row{Workload: "W6", Figure: "goroutines idle → end", Unit: "", Rehab: pf(float64(w.End.Goroutines)), Note: fmt.Sprintf("idle %d", w.Idle.Goroutines)},
			Row{Workload: "W6", Figure: "open files idle → end", Unit: "", Rehab: pf(float64(w.End.FDs)), Note: fmt.Sprintf("idle %d", w.Idle.FDs)},
		)
	}
}

// rowsW7: the soak.
func (r *Report) rowsW7() {
	w := r.Rehab.W7
	if w == nil {
		return
	}
	note := fmt.Sprintf("%d honest peers in %d sessions, %d flooders, %d idle sockets, %.0f s", w.Peers, w.Sessions, w.Flooders, w.IdleSockets, w.Seconds)
	r.Rows = append(r.Rows,
		Row{Workload: "W7", Figure: "service CPU, mean over the soak", Unit: "% of a core", Rehab: pf(w.CPUMeanPct), Note: note},
		Row{Workload: "W7", Figure: "service CPU, busiest sample", Unit: "% of a core", Rehab: pf(w.CPUMaxPct), Note: fmt.Sprintf("%d samples", w.Samples)},
		Row{Workload: "W7", Figure: "honest peers disconnected", Unit: "", Rehab: pf(float64(w.HonestCut)), Note: fmt.Sprintf("%d churn rejoins, %d failed", w.Rejoins, w.ChurnErrors)},
		Row{Workload: "W7", Figure: "slowest /healthz during the soak", Unit: "ms", Rehab: pf(w.HealthMaxMs), Note: fmt.Sprintf("%d unanswered in %s", w.HealthFails, healthTimeout)},
		Row{Workload: "W7", Figure: "RSS start → end of load", Unit: "MB", Rehab: pf(round3(float64(w.End.RSSkB) / 1024)), Note: fmt.Sprintf("start %.1f MB, baseline %.1f MB, after %.1f MB", float64(w.Start.RSSkB)/1024, float64(w.Baseline.RSSkB)/1024, float64(w.After.RSSkB)/1024)},
		Row{Workload: "W7", Figure: "goroutines start → end of load", Unit: "", Rehab: pf(float64(w.End.Goroutines)), Note: fmt.Sprintf("start %d, baseline %d, after %d", w.Start.Goroutines, w.Baseline.Goroutines, w.After.Goroutines)},
	)
}

// rowsW9: one node against three, and the failover.
func (r *Report) rowsW9() {
	r.ClusterRows = nil
	w := r.Rehab.W9
	if w == nil {
		return
	}
	one, three := w.One, w.Three
	add := func(fig, unit string, a, b float64, note string) {
		r.ClusterRows = append(r.ClusterRows, Row{Workload: "W9", Figure: fig, Unit: unit, Easy: pf(a), Rehab: pf(b), Note: note})
	}
	dist := func(name string, a, b Dist) {
		add(name+" p50", "ms", a.P50, b.P50, "")
		add(name+" p99", "ms", a.P99, b.P99, "")
	}
	dist("session start → page 200 through another gateway", one.Start, three.Start)
	dist("session stop through a third node", one.Stop, three.Stop)
	dist("join, sequential", one.JoinSeq, three.JoinSeq)
	dist("join, concurrent", one.JoinConc, three.JoinConc)
	f1, f3 := one.Flood, three.Flood
	fl := fmt.Sprintf("flood, %d pairs, window %d", f3.Pairs, f3.Window)
	add(fl+": delivered", "msg/s", f1.MsgsPerSec, f3.MsgsPerSec, "")
	add(fl+": latency p50", "ms", f1.Lat.P50, f3.Lat.P50, "")
	add(fl+": latency p99", "ms", f1.Lat.P99, f3.Lat.P99, "")
	add(fl+": CPU of the service (nodes + Redis)", "% of a core", f1.ServerCPUPct, f3.ServerCPUPct, "")
	add(fl+": service CPU per delivered message", "µs", f1.ServerUsPerMsg, f3.ServerUsPerMsg, "")
	add("connections through a gateway not the home", "%", one.ProxiedPct, three.ProxiedPct, fmt.Sprintf("sessions per node %v", three.Homes))
	add("Redis commands per session start", "", 0, three.RedisPerStart, "")
	add("Redis commands per second during the flood (set-up excluded)", "/s", 0, three.RedisFloodPerSec, "")
	add("Redis commands per node per second, sessions held, idle", "/s", 0, three.RedisIdlePerNodeSec, "")
	if fo := w.Failover; fo != nil {
		note := fmt.Sprintf("%d trials, lease %d ms, %d clients in %d sessions, cut per trial %v, unexpected cuts %d",
			fo.Trials, fo.LeaseMS, fo.Clients, fo.Sessions, fo.CutPerTrial, fo.Unexpected)
		r.ClusterRows = append(r.ClusterRows,
			Row{Workload: "W9", Figure: "failover: kill -9 of the home → every cut client admitted again, p50", Unit: "ms", Rehab: pf(fo.Trial.P50), Note: note},
			Row{Workload: "W9", Figure: "failover: the same, p99", Unit: "ms", Rehab: pf(fo.Trial.P99)},
			Row{Workload: "W9", Figure: "failover: the same, max", Unit: "ms", Rehab: pf(fo.Trial.Max)},
			Row{Workload: "W9", Figure: "failover: kill → each client admitted again, p50", Unit: "ms", Rehab: pf(fo.Client.P50)},
		)
	}
}

// clusterMarkdown renders W9's table.
func (r *Report) clusterMarkdown(b *strings.Builder) {
	if len(r.ClusterRows) == 0 {
		return
	}
	b.WriteString("\n| W | figure | one node | three nodes + Redis | three ÷ one |\n|---|---|---:|---:|---:|\n")
	for _, row := range r.ClusterRows {
		unit := ""
		if row.Unit != "" {
			unit = " (" + row.Unit + ")"
		}
		three := fmtVal(row.Rehab)
		if row.Note != "" {
			three = row.Note + " → " + three
		}
		ratio := "–"
		if row.Easy != nil && row.Rehab != nil && *row.Easy > 0 {
			ratio = fmtNum(*row.Rehab / *row.Easy) + "×"
		}
		one := fmtVal(row.Easy)
		if row.Easy != nil && *row.Easy == 0 && row.Workload == "W9" && strings.HasPrefix(row.Figure, "Redis") {
			one = "–"
		}
		fmt.Fprintf(b, "| %s | %s%s | %s | %s | %s |\n", row.Workload, row.Figure, unit, one, three, ratio)
	}
}

func holds(b bool) *bool { return &b }

func (r *Report) target(name, want, got string, ok *bool) {
	r.Targets = append(r.Targets, Target{Name: name, Want: want, Got: got, Holds: ok})
}

// Galène's figures on a 2-vCPU machine (peer-systems.md §G).
const (
	galeneJoinP50     = 0.50   // ms, 200 sequential
	galeneConcP99     = 14.9   // ms, 100 concurrent (median of runs)
	galeneRelayPerSec = 106000 // msg/s flat out
	galeneRelayP99    = 0.194  // ms, one at a time
)

func (r *Report) targets() {
	if r.Other != "" {
		// The comparison column is not open-easyrtc: no target against it.
		easy := r.Easy
		r.Easy = Results{}
		defer func() { r.Easy = easy }()
	}
	r.targetsW1()
	r.targetsW3()
	big, one := r.floodRuns()
	r.targetsRelayVsEasy(big)
	r.targetsGalene(big, one)
	r.targetW6()
	r.targetW7()
	r.targetsW8()
}

// targetsW1: session start and RSS per session vs EasyRTC.
func (r *Report) targetsW1() {
	R, E := r.Rehab, r.Easy
	na := "not measured in this run"
	if R.W1 != nil && E.W1 != nil && E.W1.Sessions > 0 {
		ratio := E.W1.Start.P50 / R.W1.Start.P50
		r.target("session start p50 ≥ 100× faster than an EasyRTC process start", "≥ 100×",
			fmt.Sprintf("%.3f ms vs %.1f ms = %.0f×", R.W1.Start.P50, E.W1.Start.P50, ratio), holds(ratio >= 100))
		ratio = E.W1.PerSessionkB / R.W1.PerSessionkB
		r.target("RSS per idle running session ≤ 1/100 of an EasyRTC process", "≥ 100×",
			fmt.Sprintf("%.1f kB vs %.0f kB = %.0f×", R.W1.PerSessionkB, E.W1.PerSessionkB, ratio), holds(ratio >= 100 || R.W1.PerSessionkB <= 0))
	} else {
		r.target("session start p50 ≥ 100× faster than an EasyRTC process start", "≥ 100×", na, nil)
		r.target("RSS per idle running session ≤ 1/100 of an EasyRTC process", "≥ 100×", na, nil)
	}
}

// targetsW3: RSS per idle peer.
func (r *Report) targetsW3() {
	R := r.Rehab
	na := "not measured in this run"
	if R.W3 != nil && len(R.W3.Sizes) > 0 {
		var parts []string
		ok := true
		for _, s := range R.W3.Sizes {
			if s.Skipped != "" {
				continue
			}
			parts = append(parts, fmt.Sprintf("%.1f kB at %d", s.PerPeerkB, s.Peers))
			ok = ok && s.PerPeerkB <= 12
		}
		r.target("RSS per idle peer ≤ 12 kB", "≤ 12 kB", strings.Join(parts, ", "), holds(ok))
	} else {
		r.target("RSS per idle peer ≤ 12 kB", "≤ 12 kB", na, nil)
	}
}

// floodRuns picks the W4 run at the largest pair count and the one-pair
// run (window 1: the latency floor).
func (r *Report) floodRuns() (big, one *FloodRun) {
	R := r.Rehab
	if R.W4 != nil {
		for i := range R.W4.Runs {
			run := &R.W4.Runs[i]
			if run.Pairs == 1 {
				one = run
			} else if big == nil || run.Pairs > big.Pairs {
				big = run
			}
		}
	}
	return big, one
}

// targetsRelayVsEasy: relay at the largest pair count vs EasyRTC.
func (r *Report) targetsRelayVsEasy(big *FloodRun) {
	E := r.Easy
	na := "not measured in this run"
	var ebig *FloodRun
	if big != nil && E.W4 != nil {
		for i := range E.W4.Runs {
			if E.W4.Runs[i].Pairs == big.Pairs {
				ebig = &E.W4.Runs[i]
			}
		}
	}
	if big != nil && ebig != nil && ebig.MsgsPerSec > 0 {
		ratio := big.MsgsPerSec / ebig.MsgsPerSec
		r.target(fmt.Sprintf("relay throughput ≥ 5× open-easyrtc (%d pairs)", big.Pairs), "≥ 5×",
			fmt.Sprintf("%.0f vs %.0f msg/s = %.1f×", big.MsgsPerSec, ebig.MsgsPerSec, ratio), holds(ratio >= 5))
		ratio = ebig.Lat.P99 / big.Lat.P99
		r.target(fmt.Sprintf("relay p99 ≤ 1/5 of open-easyrtc's (%d pairs)", big.Pairs), "≥ 5×",
			fmt.Sprintf("%.2f vs %.1f ms = %.0f×", big.Lat.P99, ebig.Lat.P99, ratio), holds(ratio >= 5))
	} else {
		r.target("relay throughput ≥ 5× open-easyrtc (500 pairs)", "≥ 5×", na, nil)
		r.target("relay p99 ≤ 1/5 of open-easyrtc's (500 pairs)", "≥ 5×", na, nil)
	}
}

// targetsGalene: joins and relay vs Galène's published figures.
func (r *Report) targetsGalene(big, one *FloodRun) {
	R := r.Rehab
	na := "not measured in this run"
	if R.W2 != nil && R.W2.JoinSeq.N > 0 {
		r.target("join p50 ≤ Galène's 0.5 ms (sequential)", "≤ 0.50 ms", fmt.Sprintf("%.3f ms", R.W2.JoinSeq.P50), holds(R.W2.JoinSeq.P50 <= galeneJoinP50))
	} else {
		r.target("join p50 ≤ Galène's 0.5 ms (sequential)", "≤ 0.50 ms", na, nil)
	}
	if R.W2 != nil && R.W2.JoinConc.N >= 100 {
		r.target("100 concurrent joins p99 ≤ half of Galène's 15 ms", "≤ 7.5 ms", fmt.Sprintf("%.2f ms", R.W2.JoinConc.P99), holds(R.W2.JoinConc.P99 <= 7.5))
	} else {
		r.target("100 concurrent joins p99 ≤ half of Galène's 15 ms", "≤ 7.5 ms", na, nil)
	}
	if big != nil {
		want := 1.5 * galeneRelayPerSec
		r.target(fmt.Sprintf("relay throughput ≥ 1.5× Galène's 106 k msg/s (%d pairs)", big.Pairs), "≥ 159,000 msg/s",
			fmt.Sprintf("%.0f msg/s", big.MsgsPerSec), holds(big.MsgsPerSec >= want))
	} else {
		r.target("relay throughput ≥ 1.5× Galène's 106 k msg/s", "≥ 159,000 msg/s", na, nil)
	}
	if one != nil {
		r.target("relay p99 ≤ Galène's 0.194 ms (one message at a time)", "≤ 0.194 ms",
			fmt.Sprintf("p50 %.3f ms, p99 %.3f ms", one.Lat.P50, one.Lat.P99), holds(one.Lat.P99 <= galeneRelayP99))
	} else {
		r.target("relay p99 ≤ Galène's 0.194 ms (one message at a time)", "≤ 0.194 ms", na, nil)
	}
}

// targetW6: the footprint after churn.
func (r *Report) targetW6() {
	R := r.Rehab
	na := "not measured in this run"
	if R.W6 != nil {
		w := R.W6
		got := fmt.Sprintf("goroutines %d → %d, fds %d → %d, anon RSS %.1f → %.1f MB (RSS %.1f → %.1f MB)",
			w.Idle.Goroutines, w.End.Goroutines, w.Idle.FDs, w.End.FDs,
			float64(w.Idle.AnonkB)/1024, float64(w.End.AnonkB)/1024, float64(w.Idle.RSSkB)/1024, float64(w.End.RSSkB)/1024)
		if w.Why != "" {
			got += ": " + w.Why
		}
		if w.Note != "" {
			got += " (" + w.Note + ")"
		}
		if w.GCAfter {
			got += fmt.Sprintf(", live heap %+.1f bytes per cycle over %d cycles", w.HeapPerCyc, w.Cycles)
		}
		r.target("after churn, footprint back to idle", fmt.Sprintf("goroutines/fds ≤ idle+%d; after a GC: live heap ≤ +1 MB +%d B/cycle, anon RSS ≤ idle+%d MB", w.GorTol, w.HeapTolB, w.AnonTolkB/1024),
			got, holds(w.Pass))
	} else {
		r.target("after churn, footprint back to idle", "back to idle", na, nil)
	}
}

// targetW7: the soak's verdict.
func (r *Report) targetW7() {
	w := r.Rehab.W7
	name, want := "soak: no honest peer disconnected, CPU < 1 core, goroutines back to baseline", "0 cut; mean < 100 %; ≤ baseline + tolerance"
	if w == nil {
		r.target(name, want, "not measured in this run", nil)
		return
	}
	got := fmt.Sprintf("%d cut, CPU mean %.1f %% (max %.1f %%), goroutines %d → %d → %d (baseline → end of load → after)",
		w.HonestCut, w.CPUMeanPct, w.CPUMaxPct, w.Baseline.Goroutines, w.End.Goroutines, w.After.Goroutines)
	if w.Why != "" {
		got += ": " + w.Why
	}
	r.target(name, want, got, holds(w.Pass))
}

// Markdown renders the report as the tables of docs/performance.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Run %s, %.0f s. Machine: %d CPUs, %s, kernel %s, %s, memory %s, open-file limit %d.\n",
		r.Started, r.Seconds, m.NProc, m.CPUModel, m.Kernel, m.GoVersion, m.MemTotal, m.NoFile)
	other := cmp.Or(r.Other, "open-easyrtc")
	fmt.Fprintf(&b, "Pinning: %s. rehabrtc: %s, log level %s. open-easyrtc: %s.\n", r.Pinning, r.ServerEnv, r.LogLevels, r.EasyRTC)
	fmt.Fprintf(&b, "Load average at start: %s; other processes used %.1f%% of the machine's CPU time during the run.\n", r.LoadAvg, r.OtherCPUPct)
	if r.OtherCPUPct > 5 {
		b.WriteString("**Warning: the machine was busy with other work; throughput and latency figures are not representative.**\n")
	}
	if r.Options.Quick {
		b.WriteString("Sizes: --quick (smoke sizes; not for comparison).\n")
	}
	if len(r.Rows) > 0 { // W9 alone has only its own table
		fmt.Fprintf(&b, "\n| W | figure | rehabrtc | %s | ratio |\n|---|---|---:|---:|---:|\n", other)
		for _, row := range r.Rows {
			unit := ""
			if row.Unit != "" {
				unit = " (" + row.Unit + ")"
			}
			rehab := fmtVal(row.Rehab)
			if row.Note != "" {
				rehab = row.Note + " → " + rehab
			}
			ratio := "–"
			if row.Ratio != nil {
				ratio = fmt.Sprintf("%s×", fmtNum(*row.Ratio))
			}
			fmt.Fprintf(&b, "| %s | %s%s | %s | %s | %s |\n", row.Workload, row.Figure, unit, rehab, fmtVal(row.Easy), ratio)
		}
		fmt.Fprintf(&b, "\nRatio: how many times better rehabrtc is (%[1]s ÷ rehabrtc for times and sizes, rehabrtc ÷ %[1]s for rates).\n", other)
		b.WriteString("\n| target | want | measured | holds |\n|---|---|---|---|\n")
		for _, t := range r.Targets {
			h := "not measured"
			if t.Holds != nil {
				h = map[bool]string{true: "**yes**", false: "**no**"}[*t.Holds]
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Got, h)
		}
	}
	r.clusterMarkdown(&b)
	if len(r.Errors) > 0 {
		b.WriteString("\nErrors:\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	return b.String()
}

func fmtVal(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmtNum(*v)
}

// fmtNum prints 3 significant digits, with thousands separators for big ones.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 10000:
		s := fmt.Sprintf("%.0f", v)
		var out []byte
		for i, c := range []byte(s) {
			if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
				out = append(out, ',')
			}
			out = append(out, c)
		}
		return string(out)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}
