package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// LinkStats is one page's link to the server as the server sees it, for
// the page's connection-quality indicator (sfu-stats, docs/protocol.md).
type LinkStats struct {
	// Loss is the fraction of packets the link lost, 0–1, before
	// retransmission repaired them: the packets retransmitted after a NACK
	// over those that came in the last 2 s, or the last receiver report's
	// fraction lost (what stayed lost), whichever is more. Publish link:
	// what the server did not receive from the page; subscribe link: what
	// the page did not receive from the server.
	Loss  float64 `json:"loss"`
	RTTms int     `json:"rtt_ms"` // round trip server ↔ page; 0: not known yet
	Kbps  int     `json:"kbps"`   // media rate on the link
	// Subscribe links only: the server's estimate of what the page can
	// receive, and the packets it asked again (NACK) and got from the
	// server's cache, since it joined.
	EstimateKbps int    `json:"estimate_kbps,omitempty"`
	NACKs        uint64 `json:"nacks,omitempty"`
	Resent       uint64 `json:"resent,omitempty"`
}

// statsEvery is how often each page is sent its sfu-stats, in router
// ticks (2 s): the pages poll their own indicator at the same pace.
const statsEvery = 8

// sampleMaxAge is how long a receiver report's figures hold: reports come
// every second, so older ones describe a link that went quiet.
const sampleMaxAge = 5 * time.Second

// Counters are the engine's totals since it was built (metrics).
type Counters struct {
	NACKs  uint64 // packets subscribers asked again
	Resent uint64 // of which answered from a packet cache
	// Subscribed tracks whose RTP the server encrypts and sends itself,
	// and those left on pion's write path (no keys, ICE-TCP).
	OwnWriters, PionWriters uint64
	// Peer connections whose router RTCP (feedback, REMB, PLI, sender
	// reports) the server encrypts and sends itself, and those left on
	// pion's WriteRTCP.
	OwnRTCP, PionRTCP uint64
	// Upstream layers (SSRCs) whose SRTP the server reads and decrypts
	// itself, and those left on pion's read path (no read tap, the server
	// as DTLS client, ICE-TCP).
	OwnReaders, PionReaders uint64
	// ReadRejected are packets the read tap took that failed SRTP (or
	// SRTCP) authentication; ReadReplayed, those it dropped as replays (or
	// too short to be SRTP). ReadOverflow are packets it left to pion
	// because their layer's (or connection's RTCP) queue was full.
	ReadRejected, ReadReplayed, ReadOverflow uint64
	// ReadTaken are packets the read tap took from pion's path.
	ReadTaken uint64
	// Publishers' lost packets: PubNACKed, those the server asked for
	// (each once); PubRepaired, of those, the ones whose retransmission
	// came; PubLate, holes a late packet filled before the server asked;
	// PubGaveUp, holes it stopped asking for (a keyframe asked instead).
	PubNACKed, PubRepaired, PubLate, PubGaveUp uint64
	// RTCPTaken are SRTCP packets the read tap took from pion's path
	// (subscribers' feedback, publishers' sender reports).
	RTCPTaken uint64
}

// counters are the atomic Counters of an engine.
type counters struct {
	nacks, resent, ownWriters, pionWriters atomic.Uint64
	ownReaders, pionReaders                atomic.Uint64
	ownRTCP, pionRTCP                      atomic.Uint64
	readRejected, readReplayed             atomic.Uint64
	readOverflow, readTaken                atomic.Uint64
	pubNACKed, pubRepaired                 atomic.Uint64
	pubLate, pubGaveUp                     atomic.Uint64
	rtcpTaken                              atomic.Uint64
}

// Counters returns the engine's totals.
func (e *Engine) Counters() Counters {
	c := &e.counters
	return Counters{NACKs: c.nacks.Load(), Resent: c.resent.Load(),
		OwnWriters: c.ownWriters.Load(), PionWriters: c.pionWriters.Load(),
		OwnRTCP: c.ownRTCP.Load(), PionRTCP: c.pionRTCP.Load(),
		OwnReaders: c.ownReaders.Load(), PionReaders: c.pionReaders.Load(),
		ReadRejected: c.readRejected.Load(), ReadReplayed: c.readReplayed.Load(),
		ReadOverflow: c.readOverflow.Load(), ReadTaken: c.readTaken.Load(), RTCPTaken: c.rtcpTaken.Load(),
		PubNACKed: c.pubNACKed.Load(), PubRepaired: c.pubRepaired.Load(),
		PubLate: c.pubLate.Load(), PubGaveUp: c.pubGaveUp.Load()}
}

// linkWatch is an interceptor factory that reads, per peer connection,
// the receiver reports passing through it: those the server sends a
// publisher (how much of its media the server lost) and those a
// subscriber sends the server (how much the page lost, and the round
// trip). It sees RTCP only, never an RTP packet, so the forwarding path
// pays nothing for it. It must come first in the registry, so that the
// writer it wraps carries the report interceptor's reports.
type linkWatch struct {
	mu    sync.Mutex
	byID  map[string]*linkReports // by peer connection id
	clock func() time.Time
}

func newLinkWatch() *linkWatch {
	return &linkWatch{byID: map[string]*linkReports{}, clock: time.Now}
}

// NewInterceptor implements interceptor.Factory; id is the peer
// connection's id (webrtc.PeerConnection.ID).
func (w *linkWatch) NewInterceptor(id string) (interceptor.Interceptor, error) {
	r := &linkReports{id: id, w: w, loss: map[uint32]lossSample{}}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, taken := w.byID[id]; !taken { // ids are unique by time; a clash only loses figures
		w.byID[id] = r
	}
	return r, nil
}

// of returns the reports of pc, or nil.
func (w *linkWatch) of(pc *webrtc.PeerConnection) *linkReports {
	if pc == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byID[pc.ID()]
}

type lossSample struct {
	fraction uint8
	at       time.Time
}

// linkReports is one peer connection's view of its receiver reports.
type linkReports struct {
	interceptor.NoOp
	id string
	w  *linkWatch

	mu     sync.Mutex
	loss   map[uint32]lossSample // by media SSRC
	rtt    time.Duration
	rttAt  time.Time
	nacked uint64                       // distinct packets the server asked again (publish side), since the start
	asked  map[uint32]*[nackRing]uint32 // by SSRC: recently asked seqs (+1), to count each once
}

// nackRing is how many recent sequence numbers per stream are remembered
// to count a packet asked again several times once.
const nackRing = 1024

// BindRTCPWriter watches the reports the server sends (publish side).
func (r *linkReports) BindRTCPWriter(next interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		r.take(pkts, false)
		return next.Write(pkts, a)
	})
}

// BindRTCPReader watches the reports a page sends (subscribe side). The
// parse is cached in the attributes, where pion's own reader finds it.
func (r *linkReports) BindRTCPReader(next interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := next.Read(b, a)
		if err != nil {
			return n, a, err
		}
		if a == nil {
			a = interceptor.Attributes{}
		}
		if pkts, perr := a.GetRTCPPackets(b[:n]); perr == nil {
			r.take(pkts, true)
		}
		return n, a, err
	})
}

// take records the loss of every report block, and with incoming ones the
// round trip (RFC 3550 6.4.1: now − LSR − DLSR, in 1/65536 s).
func (r *linkReports) take(pkts []rtcp.Packet, incoming bool) {
	now := r.w.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pkts {
		if n, ok := p.(*rtcp.TransportLayerNack); ok && !incoming {
			r.countNACK(n)
			continue
		}
		rr, ok := p.(*rtcp.ReceiverReport)
		if !ok {
			continue
		}
		for _, b := range rr.Reports {
			r.loss[b.SSRC] = lossSample{fraction: b.FractionLost, at: now}
			if !incoming || b.LastSenderReport == 0 {
				continue
			}
			d := ntpMiddle(now) - b.LastSenderReport - b.Delay
			if rtt := time.Duration(d) * time.Second / 65536; rtt < 10*time.Second {
				r.rtt, r.rttAt = rtt, now
			}
		}
	}
}

// summary is the highest recent loss over the connection's streams (0–1)
// and the last round trip (0 when none is recent).
func (r *linkReports) summary() (loss float64, rtt time.Duration) {
	if r == nil {
		return 0, 0
	}
	now := r.w.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	var worst uint8
	for ssrc, s := range r.loss {
		if now.Sub(s.at) > sampleMaxAge {
			delete(r.loss, ssrc) // a stream that ended, or a layer the page stopped
			continue
		}
		worst = max(worst, s.fraction)
	}
	if now.Sub(r.rttAt) <= sampleMaxAge {
		rtt = r.rtt
	}
	return float64(worst) / 256, rtt
}

// countNACK counts the packets of a NACK the server sends, each once.
// Called with r.mu held.
func (r *linkReports) countNACK(n *rtcp.TransportLayerNack) {
	if r.asked == nil {
		r.asked = map[uint32]*[nackRing]uint32{}
	}
	ring := r.asked[n.MediaSSRC]
	if ring == nil {
		ring = &[nackRing]uint32{}
		r.asked[n.MediaSSRC] = ring
	}
	for _, pair := range n.Nacks {
		for _, seq := range pair.PacketList() {
			if ring[seq%nackRing] != uint32(seq)+1 {
				ring[seq%nackRing] = uint32(seq) + 1
				r.nacked++
			}
		}
	}
}

// nacks is how many distinct packets the server asked again on this
// connection.
func (r *linkReports) nacks() uint64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nacked
}

// Close forgets the connection.
func (r *linkReports) Close() error {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if r.w.byID[r.id] == r {
		delete(r.w.byID, r.id)
	}
	return nil
}

// ntpMiddle is the middle 32 bits of t as an NTP timestamp, the unit of
// LSR in receiver reports.
func ntpMiddle(t time.Time) uint32 {
	return uint32(toNTP(t.UnixNano()) >> 16) // the clock of the sender reports
}

// iceRTT is the round trip of pc's selected candidate pair, from ICE's own
// checks (the server's keepalive asks every 2 s; 0 when not known): a
// publish connection carries no reports that give the server a round trip.
// Only the selected pair's stats, from its ICE agent: pc.GetStats built the
// connection's whole report (every transceiver, codec, certificate and
// candidate, in goroutines of its own) for each page every 2 s.
func iceRTT(pc *webrtc.PeerConnection) time.Duration {
	if pc == nil {
		return 0
	}
	s, ok := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePairStats()
	if !ok || s.CurrentRoundTripTime <= 0 {
		return 0
	}
	return time.Duration(s.CurrentRoundTripTime * float64(time.Second))
}

// linksOf is pc's link reports, nil without an engine.
func (r *Router) linksOf(pc *webrtc.PeerConnection) *linkReports {
	if r.e == nil {
		return nil
	}
	return r.e.links.of(pc)
}

// counters is where the router counts for its engine (a router built
// without an engine, in benchmarks, counts for nobody).
func (r *Router) counters() *counters {
	if r.e == nil {
		return &counters{}
	}
	return &r.e.counters
}

// statCounts are a link's counters at the last sfu-stats, to take
// differences over the interval: bytes and packets that went over it,
// and repaired, the packets lost on it that a retransmission replaced
// (publish side: distinct packets the server asked again; subscribe side:
// packets the server resent. A subscriber's NACKs for packets lost before
// the server are not its link's: the server never sent those).
type statCounts struct{ bytes, packets, repaired uint64 }

// repairLoss is the share of repaired packets among those that came:
// what a link lost before retransmission repaired it. Receiver reports
// count a retransmitted packet as received, so on a link that NACK
// repairs they show only what stayed lost.
func repairLoss(now, prev statCounts) float64 {
	if now.packets <= prev.packets || now.repaired < prev.repaired {
		return 0
	}
	return min(1, float64(now.repaired-prev.repaired)/float64(now.packets-prev.packets))
}

// sendStats tells every page on the server how the server sees its link
// and every publisher's: called from the router's tick every statsEvery
// ticks, which also owns the layers' rates it reads.
func (r *Router) sendStats(peers []*participant, ups []*upTrack, now time.Time, dt time.Duration) {
	up := map[string]LinkStats{}
	rates := map[*participant]float64{}
	packets := map[*participant]uint64{}
	for _, u := range ups {
		for _, l := range u.layers {
			if l != nil {
				for _, v := range l.rate {
					rates[u.publisher] += v
				}
				packets[u.publisher] += l.packets.Load()
			}
		}
	}
	prevUp := r.statUp
	r.statUp = map[*participant]statCounts{}
	for _, p := range peers {
		p.mu.Lock()
		pub := p.pub
		p.mu.Unlock()
		if pub == nil {
			continue
		}
		reports := r.e.links.of(pub)
		loss, _ := reports.summary()
		c := statCounts{packets: packets[p], repaired: reports.nacks()}
		r.statUp[p] = c
		if last, ok := prevUp[p]; ok {
			loss = max(loss, repairLoss(c, last))
		}
		up[p.id] = LinkStats{Loss: loss, RTTms: int(iceRTT(pub).Milliseconds()), Kbps: int(rates[p] / 1000)}
	}
	prev := r.statDown
	r.statDown = map[*downTrack]statCounts{}
	for _, p := range peers {
		down, ok := r.downStats(p, prev, now, dt)
		if !ok {
			continue
		}
		p.mu.Lock()
		if !p.closed {
			p.signal(Message{Type: TypeStats, Down: &down, Up: up})
		}
		p.mu.Unlock()
	}
}

// downStats is p's subscribe link; ok is false when p has neither a
// subscribe nor a publish connection (a page on mesh).
func (r *Router) downStats(p *participant, prev map[*downTrack]statCounts, now time.Time, dt time.Duration) (LinkStats, bool) {
	p.mu.Lock()
	sub, pub := p.sub, p.pub
	downs := make([]*downTrack, 0, len(p.down))
	for _, d := range p.down {
		downs = append(downs, d)
	}
	p.mu.Unlock()
	if sub == nil && pub == nil {
		return LinkStats{}, false
	}
	var s LinkStats
	var sum, sumPrev statCounts
	for _, d := range downs {
		d.mu.Lock()
		c := statCounts{bytes: d.bytes, packets: d.packets, repaired: d.resent}
		s.NACKs += d.nacked
		s.Resent += d.resent
		d.mu.Unlock()
		r.statDown[d] = c
		if last, ok := prev[d]; ok { // tracks new in this interval count from the next
			sum.bytes, sum.packets, sum.repaired = sum.bytes+c.bytes, sum.packets+c.packets, sum.repaired+c.repaired
			sumPrev.bytes, sumPrev.packets, sumPrev.repaired = sumPrev.bytes+last.bytes, sumPrev.packets+last.packets, sumPrev.repaired+last.repaired
		}
	}
	if dt > 0 && sum.bytes >= sumPrev.bytes {
		s.Kbps = int(float64(sum.bytes-sumPrev.bytes) * 8 / dt.Seconds() / 1000)
	}
	if sub != nil {
		var rtt time.Duration
		s.Loss, rtt = r.e.links.of(sub).summary()
		s.Loss = max(s.Loss, repairLoss(sum, sumPrev))
		if rtt == 0 {
			rtt = iceRTT(sub)
		}
		s.RTTms = int(rtt.Milliseconds())
		s.EstimateKbps = int(p.bwe.estimate(now) / 1000)
	}
	return s, true
}
