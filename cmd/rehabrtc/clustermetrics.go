package main

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rehabrtc/rehabrtc/internal/gateway"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// clusterCounters are a cluster node's own counts, for its metrics.
type clusterCounters struct {
	claimed        atomic.Int64 // sessions claimed from lost nodes
	sessionProxied gateway.ProxyCounts
	consultProxied gateway.ProxyCounts
	consultServed  atomic.Bool
}

// collectors are the cluster metrics of this node (docs/scale-out.md,
// "Metrics"); none without a cluster.
func (c *clusterNode) collectors(m *session.Manager) []prometheus.Collector {
	if c == nil {
		return nil
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, labels prometheus.Labels, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f)
	}
	n := func(v *atomic.Int64) func() float64 { return func() float64 { return float64(v.Load()) } }
	sessionRoute, consultRoute := prometheus.Labels{"route": "session"}, prometheus.Labels{"route": "consultation"}
	const reqHelp = "Requests (pages, status, polling) this node's gateway proxied to the node serving them."
	const wsHelp = "WebSockets this node's gateway proxied to the node serving them."
	const foundHelp = "Sessions without a home this node's claim loop found (and tried): in a lost node's held set, in the orphans, or by its sweep."
	return []prometheus.Collector{
		gauge("rehabrtc_cluster_sessions_homed", "Sessions whose home is this node (it holds their lease and serves them).",
			func() float64 { return float64(m.Running()) }),
		gauge("rehabrtc_cluster_leases_held", "Leases this node holds: its sessions, and the consultations' when it serves them.",
			func() float64 { return float64(c.node.Stats().LeasesHeld) }),
		counter("rehabrtc_cluster_leases_lost_total", "Leases lost while held (expired, taken over, node lost): the sessions stopped here at once.", nil,
			func() float64 { return float64(c.node.Stats().LeasesLost) }),
		counter("rehabrtc_cluster_sessions_claimed_total", "Sessions of lost nodes restored on this node.", nil, n(&c.stats.claimed)),
		counter("rehabrtc_cluster_claim_found_total", foundHelp, prometheus.Labels{"found": "lost_node"},
			func() float64 { return float64(c.homes.ClaimStats().FromLostNodes) }),
		counter("rehabrtc_cluster_claim_found_total", foundHelp, prometheus.Labels{"found": "orphan"},
			func() float64 { return float64(c.homes.ClaimStats().Orphans) }),
		counter("rehabrtc_cluster_claim_found_total", foundHelp, prometheus.Labels{"found": "sweep"},
			func() float64 { return float64(c.homes.ClaimStats().Swept) }),
		counter("rehabrtc_cluster_sweeps_total", "Sweeps of the running sessions for sessions without a lease that this node ran (one node per 30 s).", nil,
			func() float64 { return float64(c.homes.ClaimStats().Sweeps) }),
		counter("rehabrtc_cluster_proxied_requests_total", reqHelp, sessionRoute, n(&c.stats.sessionProxied.Requests)),
		counter("rehabrtc_cluster_proxied_requests_total", reqHelp, consultRoute, n(&c.stats.consultProxied.Requests)),
		counter("rehabrtc_cluster_proxied_websockets_total", wsHelp, sessionRoute, n(&c.stats.sessionProxied.WebSockets)),
		counter("rehabrtc_cluster_proxied_websockets_total", wsHelp, consultRoute, n(&c.stats.consultProxied.WebSockets)),
		counter("rehabrtc_cluster_actions_forwarded_total", "session_manage actions sent to their session's home node.", nil,
			func() float64 { f, _ := c.homes.Forwarded(); return float64(f) }),
		counter("rehabrtc_cluster_starts_placed_total", "Session starts sent to a less loaded node.", nil,
			func() float64 { _, p := c.homes.Forwarded(); return float64(p) }),
		gauge("rehabrtc_cluster_heartbeat_age_seconds", "Time since the last heartbeat Redis accepted was sent (lost past 80 % of the lease time).",
			func() float64 { return c.node.Stats().HeartbeatAge.Seconds() }),
		gauge("rehabrtc_cluster_consultations_served", "1 while this node serves the consultations (holds their lease), else 0.",
			func() float64 {
				if c.stats.consultServed.Load() {
					return 1
				}
				return 0
			}),
	}
}
