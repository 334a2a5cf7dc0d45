package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics builds this server's own registry (no global one) and its handler.
func (s *server) metrics() http.Handler {
	reg := prometheus.NewRegistry()
	c := s.counters
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rehabrtc_sessions_running", Help: "Sessions running now."},
			func() float64 { return float64(s.mgr.Running()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rehabrtc_session_ports_in_use", Help: "Session ports taken from the pool."},
			func() float64 { return float64(s.portsInUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rehabrtc_peers_connected", Help: "Peers connected to all sessions."},
			func() float64 { return float64(c.PeersConnected.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rehabrtc_peers_pending", Help: "WebSocket connections that have not joined yet (capped)."},
			func() float64 { return float64(c.Pending.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_messages_relayed_total", Help: "Signaling and application messages relayed."},
			func() float64 { return float64(c.MessagesRelayed.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_peer_errors_total", Help: "Error replies sent to peers."},
			func() float64 { return float64(c.Errors.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_joins_total", Help: "Successful joins."},
			func() float64 { return float64(c.Joins.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_joins_refused_total", Help: "Joins refused (bad or dead key)."},
			func() float64 { return float64(c.JoinsRefused.Load()) }),
	)
	reg.MustRegister(s.turn.collectors()...)
	reg.MustRegister(s.cl.collectors(s.mgr)...)
	if e := s.media.Engine(); e != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_nacks_total", Help: "Packets subscribers asked the SFU again (NACK)."},
				func() float64 { return float64(e.Counters().NACKs) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_resent_total", Help: "Packets the SFU resent from its packet cache after a NACK."},
				func() float64 { return float64(e.Counters().Resent) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_own_writers_total",
				Help: "Subscribed tracks whose RTP the SFU encrypted and sent itself."},
				func() float64 { return float64(e.Counters().OwnWriters) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_pion_writers_total",
				Help: "Subscribed tracks left on pion's write path (no SRTP keys, ICE-TCP)."},
				func() float64 { return float64(e.Counters().PionWriters) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_own_rtcp_total",
				Help: "Peer connections whose RTCP from the SFU (feedback, REMB, PLI, sender reports) it encrypted and sent itself."},
				func() float64 { return float64(e.Counters().OwnRTCP) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_pion_rtcp_total",
				Help: "Peer connections whose RTCP from the SFU went through pion's WriteRTCP (no SRTP keys, ICE-TCP)."},
				func() float64 { return float64(e.Counters().PionRTCP) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_own_readers_total",
				Help: "Published layers whose SRTP the SFU read and decrypted itself (RehabRTC.sfu.own_read)."},
				func() float64 { return float64(e.Counters().OwnReaders) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_pion_readers_total",
				Help: "Published layers left on pion's read path (own_read off, no SRTP keys, ICE-TCP)."},
				func() float64 { return float64(e.Counters().PionReaders) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_read_rejected_total",
				Help: "Packets the SFU's own SRTP/SRTCP reader dropped because they failed SRTP authentication."},
				func() float64 { return float64(e.Counters().ReadRejected) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_rtcp_taken_total",
				Help: "SRTCP packets (subscribers' feedback, publishers' sender reports) the SFU read and decrypted itself."},
				func() float64 { return float64(e.Counters().RTCPTaken) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_read_replayed_total",
				Help: "Packets the SFU's own SRTP reader dropped as replays (a retransmission of a packet already received)."},
				func() float64 { return float64(e.Counters().ReadReplayed) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_publisher_nacked_total",
				Help: "Lost packets of publishers the SFU asked for (NACK), each counted once."},
				func() float64 { return float64(e.Counters().PubNACKed) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_publisher_repaired_total",
				Help: "Packets the SFU asked of publishers whose retransmission came."},
				func() float64 { return float64(e.Counters().PubRepaired) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_publisher_late_total",
				Help: "Publishers' packets that came late (reordered) before the SFU asked for them."},
				func() float64 { return float64(e.Counters().PubLate) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rehabrtc_sfu_publisher_gave_up_total",
				Help: "Publishers' lost packets the SFU stopped asking for (tries spent or too old); it asked a keyframe instead."},
				func() float64 { return float64(e.Counters().PubGaveUp) }),
		)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// portsInUse is the session ports this node holds: from its own pool, or,
// on a cluster node (whose ports come from the cluster's pool), one per
// session it serves.
func (s *server) portsInUse() int {
	if s.cl != nil {
		return s.mgr.Running()
	}
	return s.pool.InUse()
}
