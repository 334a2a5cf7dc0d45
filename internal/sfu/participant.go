package sfu

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// gatherTimeout bounds the wait for the server's own ICE candidates; with
// the muxes and no STUN they are known at once.
const gatherTimeout = 5 * time.Second

// participant is one peer of the session, with its two peer connections:
// pub (the page offers, it publishes) and sub (the server offers, it
// receives). See the package doc for why two.
type participant struct {
	id   string
	r    *Router
	log  *slog.Logger
	bwe  *bwe
	kick chan struct{} // a subscribe renegotiation is wanted
	done chan struct{} // closed by close
	// subReady is set while the subscribe connection's transport is up:
	// packets written before that are dropped by pion, so forwarding
	// starts (at a keyframe) only then.
	subReady atomic.Bool

	mu             sync.Mutex // guards the fields below
	closed         bool
	pub, sub       *webrtc.PeerConnection
	subPath        *directPath           // sub's own RTP write path; nil: pion's
	pubPath        *recvPath             // pub's registration with the read tap; nil: pion reads
	subRecv        *recvPath             // sub's registration with the read tap, for its SRTCP; nil: pion reads
	pubRTCPOut     *rtcpWriter           // the router's RTCP to pub (feedback, REMB, PLI)
	subRTCPOut     *rtcpWriter           // the router's RTCP to sub (sender reports)
	sources        map[string]string     // mid → source, from the publish offers
	published      map[string]*upTrack   // by track id
	down           map[string]*downTrack // by upTrack id
	senders        map[string]*webrtc.RTPSender
	awaitingAnswer bool // a subscribe offer is out
	dirty          bool // the subscribe side changed since the last offer
	subRestart     bool // the next subscribe offer is for a new connection
	overLimit      int  // consecutive seconds far above the bitrate limit
	warned         bool
}

func newParticipant(id string, r *Router) *participant {
	return &participant{
		id: id, r: r, log: r.log.With("peer", id),
		bwe:  newBWE(float64(r.cfg.InitialBitrate), 50_000, float64(r.cfg.MaxSubscriberBitrate)),
		kick: make(chan struct{}, 1), done: make(chan struct{}),
		sources: map[string]string{}, published: map[string]*upTrack{},
		down: map[string]*downTrack{}, senders: map[string]*webrtc.RTPSender{},
	}
}

// close closes both peer connections and withdraws the participant's
// subscriptions; it returns the tracks it published, for the router to
// withdraw from the others.
func (p *participant) close() []*upTrack {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	pub, sub := p.pub, p.sub
	p.pubPath.close() // before pub closes: no packet meets its keys after
	p.subRecv.close()
	p.pub, p.sub, p.subPath, p.pubPath, p.subRecv = nil, nil, nil, nil, nil
	p.pubRTCPOut, p.subRTCPOut = nil, nil
	ups := make([]*upTrack, 0, len(p.published))
	for _, u := range p.published {
		ups = append(ups, u)
	}
	downs := p.down
	p.down = map[string]*downTrack{}
	p.mu.Unlock()
	for _, d := range downs {
		d.up.removeSub(d)
	}
	// Closing waits for pion's goroutines and fires state callbacks that
	// take p.mu: never under the lock.
	for _, pc := range []*webrtc.PeerConnection{pub, sub} {
		if pc != nil {
			if err := pc.Close(); err != nil {
				p.log.Debug("sfu: close peer connection", "err", err)
			}
		}
	}
	return ups
}

// signal sends m to the page; called with p.mu held so that a
// participant's messages leave in order.
func (p *participant) signal(m Message) { p.r.sig.Signal(p.id, m) }

// countSending counts the m-lines of an offer that send media.
func countSending(s *sdp.SessionDescription) int {
	n := 0
	for _, m := range s.MediaDescriptions {
		if m.MediaName.Media != "audio" && m.MediaName.Media != "video" {
			continue
		}
		if _, ok := m.Attribute("recvonly"); ok {
			continue
		}
		if _, ok := m.Attribute("inactive"); ok {
			continue
		}
		if m.MediaName.Port.Value == 0 {
			continue
		}
		n++
	}
	return n
}

// handlePublishOffer answers the page's publish offer, creating (or with
// Restart, replacing) its publish peer connection.
func (p *participant) handlePublishOffer(m Message) error {
	if m.PC != PCPublish || m.SDP == "" {
		return ErrBadMessage
	}
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(m.SDP); err != nil {
		return withDetail(ErrBadMessage, err)
	}
	if countSending(parsed) > p.r.cfg.MaxTracksPerPeer {
		return ErrTooManyTracks
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrUnknownPeer
	}
	var old *webrtc.PeerConnection
	if m.Restart && p.pub != nil {
		old = p.dropPub()
	}
	if p.pub == nil {
		pc, path, dpath, err := p.r.e.newPublishConnection(parsed)
		if err != nil {
			p.mu.Unlock()
			return withDetail(ErrNegotiation, err)
		}
		if dpath != nil {
			// The router's SRTCP to this connection cannot move to pion
			// (the page would drop it as replays) nor follow a pair the
			// socket does not carry (ICE-TCP): it stops until the page
			// republishes.
			lost := func() {
				p.log.Warn("sfu: publish connection moved off the UDP socket; its RTCP feedback stops")
			}
			dpath.lost.Store(&lost)
		}
		rw := newRTCPWriter(pc.WriteRTCP, dpath, p.r.counters(), p.r.linksOf(pc))
		fb := newPubFeedback(rw.write, time.Now().UnixNano())
		fb.rttOf = func() time.Duration { return iceRTT(pc) } // the only round trip a publish connection gives
		pc.OnTrack(func(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) { p.onTrack(pc, fb, t, rcv) })
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed {
				fb.stop()
			}
			p.onPublishState(pc, s)
		})
		p.pub, p.pubPath, p.pubRTCPOut = pc, path, rw
	}
	for mid, src := range m.Sources {
		p.sources[mid] = src
	}
	pc := p.pub
	answer, err := p.answer(pc, m.SDP)
	if err == nil {
		p.signal(Message{Type: TypeAnswer, PC: PCPublish, SDP: answer})
	} else if !p.recover(pc) {
		// A connection stuck half-way is dropped; the next offer makes a
		// new one.
		p.dropPub()
		if old == nil {
			old = pc
		} else {
			defer pc.Close()
		}
	}
	p.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return err
}

// dropPub forgets the publish connection and takes it off the read tap,
// and returns it for the caller to close (after p.mu). Called with p.mu
// held.
func (p *participant) dropPub() *webrtc.PeerConnection {
	pc := p.pub
	p.pubPath.close()
	p.pub, p.pubPath, p.pubRTCPOut = nil, nil, nil
	return pc
}

// recover brings a publish connection whose negotiation failed back to
// its last stable state; it reports whether it could.
func (p *participant) recover(pc *webrtc.PeerConnection) bool {
	switch pc.SignalingState() {
	case webrtc.SignalingStateStable:
		return pc.CurrentRemoteDescription() != nil
	case webrtc.SignalingStateHaveRemoteOffer:
		if pc.CurrentRemoteDescription() == nil {
			return false // never negotiated: nothing to go back to
		}
		return pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}) == nil
	}
	return false
}

// answer applies an offer to pc and returns the complete answer. Called
// with p.mu held: candidates are already known (muxes, no STUN), so the
// wait is short.
func (p *participant) answer(pc *webrtc.PeerConnection, offer string) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", withDetail(ErrNegotiation, err)
	}
	a, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", withDetail(ErrNegotiation, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(a); err != nil {
		return "", withDetail(ErrNegotiation, err)
	}
	select {
	case <-gathered:
	case <-time.After(gatherTimeout):
	}
	return pc.LocalDescription().SDP, nil
}

// onPublishState withdraws the tracks of a publish connection that failed
// (ICE silent for ICEFailedTimeout) or that the page closed (DTLS
// close_notify) without a word on the WebSocket.
func (p *participant) onPublishState(pc *webrtc.PeerConnection, s webrtc.PeerConnectionState) {
	if s != webrtc.PeerConnectionStateFailed && s != webrtc.PeerConnectionStateClosed {
		return
	}
	p.mu.Lock()
	if p.pub != pc || p.closed {
		p.mu.Unlock()
		return
	}
	p.dropPub()
	ups := make([]*upTrack, 0, len(p.published))
	for _, u := range p.published {
		ups = append(ups, u)
	}
	clear(p.published)
	p.mu.Unlock()
	p.log.Info("sfu: publish connection ended; tracks withdrawn", "state", s.String(), "tracks", len(ups))
	for _, u := range ups {
		p.r.unpublish(u)
	}
	_ = pc.Close()
}

// midOf finds the mid of the transceiver that owns rcv.
func midOf(pc *webrtc.PeerConnection, rcv *webrtc.RTPReceiver) string {
	for _, t := range pc.GetTransceivers() {
		if t.Receiver() == rcv {
			return t.Mid()
		}
	}
	return ""
}

// onTrack binds a remote track (or one simulcast layer of it) to its
// upTrack, creating and publishing the upTrack the first time; fb is the
// connection's feedback, which the new stream joins.
func (p *participant) onTrack(pc *webrtc.PeerConnection, fb *pubFeedback, remote *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	mid := midOf(pc, rcv)
	p.mu.Lock()
	if p.pub != pc || p.closed {
		p.mu.Unlock()
		return
	}
	key := remote.ID()
	if key == "" {
		key = mid
	}
	key = p.id + "/" + key
	u := p.published[key]
	isNew := u == nil
	if isNew {
		if len(p.published) >= p.r.cfg.MaxTracksPerPeer {
			p.signal(Message{Type: TypeError, Code: ErrTooManyTracks.Code, Text: ErrTooManyTracks.Text})
			p.mu.Unlock()
			return
		}
		src := p.sources[mid]
		if src == "" {
			src = map[webrtc.RTPCodecType]string{webrtc.RTPCodecTypeAudio: "mic"}[remote.Kind()]
			if src == "" {
				src = "camera"
			}
		}
		u = newUpTrack(key, p, src, remote)
		p.published[key] = u
	} else if u.codec.MimeType != remote.Codec().MimeType {
		p.mu.Unlock()
		p.log.Warn("sfu: a republished track changed codec; ignored", "track", key)
		return
	}
	u.mid = mid
	idx := ridIndex(remote.RID())
	if idx < 0 {
		p.mu.Unlock()
		p.log.Warn("sfu: unknown simulcast rid; ignored", "rid", remote.RID())
		return
	}
	l := u.layers[idx]
	gen := l.attach(remote, pc, p.pubRTCPOut)
	// Only now may the tap take this SSRC: pion has seen its first
	// packets and announced it.
	sink := p.pubPath.newSink(uint32(remote.SSRC()), p.r.counters())
	ctl := p.pubPath.serveRTCP() // with the connection's first layer; nil after
	p.mu.Unlock()
	if ctl != nil {
		p.r.goOwned(func() { ctl.run(fb.onRTCP) })
	}
	c := remote.Codec()
	rx := newRxStream(uint32(remote.SSRC()), c.ClockRate, hasNACK(c))
	rx.ctr, rx.keyframe = p.r.counters(), l.requestKeyframe
	in := &ingress{gen: gen, audioLevelID: extID(rcv, sdp.AudioLevelURI), twccID: extID(rcv, sdp.TransportCCURI),
		fb: fb, rx: rx}
	// The feedback loop starts with the connection's first stream: a
	// connection that carries none has nothing to say.
	fb.begin.Do(func() { p.r.goOwned(func() { fb.run(p.done) }) })
	p.r.goOwned(func() { u.readLayer(l, remote, in, sink) })
	p.r.goOwned(func() { readSenderReports(rcv, remote.RID(), in.rx) })
	if isNew {
		p.r.publish(u)
	} else {
		l.requestKeyframe(time.Now()) // subscribers wait for one to resume
	}
}

// subscribe sends track u to this participant.
func (p *participant) subscribe(u *upTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.down[u.id] != nil || u.publisher == p {
		return
	}
	if p.sub == nil {
		pc, path, recv, err := p.r.e.newSubscribeConnection()
		if err != nil {
			p.log.Error("sfu: subscribe peer connection", "err", err)
			return
		}
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { p.onSubscribeState(pc, s) })
		if path != nil {
			// Our writers cannot follow the connection onto a pair the
			// socket does not carry (ICE-TCP), nor hand an SSRC back to
			// pion: a new connection takes over, decided afresh.
			lost := func() {
				p.log.Info("sfu: subscribe connection moved off the UDP socket; making a new one")
				p.r.goOwned(func() { p.resubscribe(pc) })
			}
			path.lost.Store(&lost)
		}
		p.sub, p.subPath, p.subRecv = pc, path, recv
		p.subRTCPOut = newRTCPWriter(pc.WriteRTCP, path, p.r.counters(), p.r.linksOf(pc))
	}
	d := newDownTrack(u, p)
	d.path = p.subPath
	d.ready.Store(p.subReady.Load())
	t, err := p.sub.AddTransceiverFromTrack(d, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		p.log.Error("sfu: add track", "track", u.id, "err", err)
		return
	}
	sender := t.Sender()
	p.down[u.id] = d
	p.senders[u.id] = sender
	u.addSub(d)
	p.r.goOwned(func() { d.readRTCP(sender) })
	p.renegotiate()
}

// onSubscribeState starts forwarding when the subscribe transport is up,
// and the read tap's reading of the subscriber's SRTCP.
func (p *participant) onSubscribeState(pc *webrtc.PeerConnection, s webrtc.PeerConnectionState) {
	if ctl := p.subscribeState(pc, s); ctl != nil {
		p.r.goOwned(func() { ctl.run(p.subRTCP(pc)) })
	}
}

// subscribeState follows the subscribe connection's state; it returns the
// connection's SRTCP sink to run once the connection is up, or nil.
func (p *participant) subscribeState(pc *webrtc.PeerConnection, s webrtc.PeerConnectionState) *ctlSink {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sub != pc {
		return nil
	}
	ready := s == webrtc.PeerConnectionStateConnected
	p.subReady.Store(ready)
	for _, d := range p.down {
		d.ready.Store(ready)
	}
	switch s {
	case webrtc.PeerConnectionStateConnected:
		for _, d := range p.down {
			_, target, _ := d.state()
			d.requestKeyframe(target)
		}
		return p.subRecv.serveRTCP() // nil when it serves it already
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		p.r.goOwned(func() { p.resubscribe(pc) })
	}
	return nil
}

// subRTCP is the read tap's handler of the subscribe connection pc's
// SRTCP: one per connection, where pion ran a reader per track and gave
// each the packets naming it. A REMB reaches the estimate once; the rest
// goes to the downTrack of the SSRC it names, through the same
// subFeedback as pion's readers. The receiver reports go to the link's
// figures too, which pion's interceptor fed on its path.
func (p *participant) subRTCP(pc *webrtc.PeerConnection) func(pkts []rtcp.Packet, now int64) {
	var downs []*downTrack // the handler's scratch: one goroutine calls it
	fb := subFeedback{bwe: p.bwe, track: func(ssrc uint32) *downTrack {
		for _, d := range downs {
			if d.ssrcOf() == ssrc {
				return d
			}
		}
		return nil
	}}
	return func(pkts []rtcp.Packet, now int64) {
		p.mu.Lock()
		if p.sub != pc {
			p.mu.Unlock()
			return
		}
		for _, d := range p.down {
			downs = append(downs, d)
		}
		p.mu.Unlock()
		fb.handle(pkts, time.Unix(0, now))
		clear(downs) // hold no downTrack past its packet
		downs = downs[:0]
		if lr := p.r.linksOf(pc); lr != nil {
			lr.take(pkts, true)
		}
	}
}

// resubscribe replaces a subscribe connection that failed or that the page
// closed by a new one carrying the same tracks; its first offer says
// restart, so the page makes a new connection for it.
func (p *participant) resubscribe(old *webrtc.PeerConnection) {
	p.mu.Lock()
	if p.closed || p.sub != old {
		p.mu.Unlock()
		return
	}
	p.subRecv.close()
	p.sub, p.subPath, p.subRecv, p.subRTCPOut = nil, nil, nil, nil
	p.awaitingAnswer, p.subRestart = false, true
	downs := p.down
	p.down = map[string]*downTrack{}
	clear(p.senders)
	p.mu.Unlock()
	_ = old.Close()
	for _, d := range downs {
		d.up.removeSub(d)
	}
	p.log.Info("sfu: subscribe connection ended; making a new one", "tracks", len(downs))
	_, ups := p.r.snapshot()
	for _, u := range ups {
		p.subscribe(u)
	}
}

// unsubscribe stops sending track u to this participant.
func (p *participant) unsubscribe(u *upTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.down[u.id]
	if d == nil || d.up != u {
		return
	}
	delete(p.down, u.id)
	sender := p.senders[u.id]
	delete(p.senders, u.id)
	u.removeSub(d)
	if p.sub != nil && sender != nil {
		if err := p.sub.RemoveTrack(sender); err != nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
			p.log.Debug("sfu: remove track", "err", err)
		}
		p.renegotiate()
	}
}

// renegotiate marks the subscribe side changed; called with p.mu held.
func (p *participant) renegotiate() {
	p.dirty = true
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// negotiateLoop sends subscribe offers when the set of tracks changed and
// no offer is outstanding. One goroutine per participant, so the callers
// (pion callbacks, other participants' offers) never wait for it.
func (p *participant) negotiateLoop() {
	for {
		select {
		case <-p.done:
			return
		case <-p.kick:
			p.offerSubscribe()
		}
	}
}

func (p *participant) offerSubscribe() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.sub == nil || p.awaitingAnswer || !p.dirty {
		return
	}
	pc := p.sub
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		p.log.Error("sfu: subscribe offer", "err", err)
		return
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		p.log.Error("sfu: subscribe offer", "err", err)
		return
	}
	p.dirty, p.awaitingAnswer = false, true
	select {
	case <-gathered:
	case <-time.After(gatherTimeout):
	}
	p.signal(Message{Type: TypeOffer, PC: PCSubscribe, SDP: pc.LocalDescription().SDP, Tracks: p.trackInfos(),
		Restart: p.subRestart})
	p.subRestart = false
}

// trackInfos says what each m-line of the subscribe connection carries.
func (p *participant) trackInfos() []TrackInfo {
	var out []TrackInfo
	for _, t := range p.sub.GetTransceivers() {
		s := t.Sender()
		if s == nil {
			continue
		}
		d, ok := s.Track().(*downTrack)
		if !ok {
			continue
		}
		out = append(out, TrackInfo{Mid: t.Mid(), ID: d.up.id, Peer: d.up.publisher.id,
			Kind: d.up.kind.String(), Source: d.up.source})
	}
	return out
}

// handleSubscribeAnswer completes a subscribe negotiation.
func (p *participant) handleSubscribeAnswer(m Message) error {
	if m.PC != PCSubscribe || m.SDP == "" {
		return ErrBadMessage
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sub == nil || !p.awaitingAnswer {
		return withDetail(ErrBadMessage, errors.New("no subscribe offer outstanding"))
	}
	err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
	if err != nil {
		// Roll back to stable with the old description so that the next
		// offer can be made; the page gets the error.
		_ = p.sub.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback})
		p.awaitingAnswer = false
		p.renegotiate()
		return withDetail(ErrNegotiation, err)
	}
	p.awaitingAnswer = false
	if p.dirty {
		p.renegotiate()
	}
	return nil
}

func (p *participant) addCandidate(m Message) error {
	if m.Candidate == nil {
		return ErrBadMessage
	}
	p.mu.Lock()
	pc := p.pub
	if m.PC == PCSubscribe {
		pc = p.sub
	} else if m.PC != PCPublish {
		pc = nil
	}
	p.mu.Unlock()
	if pc == nil {
		return ErrBadMessage
	}
	if err := pc.AddICECandidate(*m.Candidate); err != nil {
		return withDetail(ErrBadMessage, err)
	}
	return nil
}

// setLayer records the tile height a page shows a track at; the next
// allocation (within a tick) follows it.
func (p *participant) setLayer(m Message) error {
	if m.Height == nil || *m.Height < 0 || *m.Height > 1<<14 {
		return ErrBadMessage
	}
	p.mu.Lock()
	d := p.down[m.Track]
	p.mu.Unlock()
	if d == nil {
		return ErrUnknownTrack
	}
	d.reqHeight.Store(int32(*m.Height))
	return nil
}

// maxReportsPerPacket keeps a compound RTCP packet of sender reports
// (28 bytes each) well under the path's MTU.
const maxReportsPerPacket = 32

// sendReports sends the subscriber an RTCP sender report for every track
// it receives: the page needs them for audio/video sync and round-trip
// times. Called by the router's loop about once a second.
func (p *participant) sendReports(now int64) {
	if !p.subReady.Load() {
		return
	}
	p.mu.Lock()
	w := p.subRTCPOut
	downs := make([]*downTrack, 0, len(p.down))
	for _, d := range p.down {
		downs = append(downs, d)
	}
	p.mu.Unlock()
	if w == nil {
		return
	}
	pkts := make([]rtcp.Packet, 0, min(len(downs), maxReportsPerPacket))
	flush := func() {
		if len(pkts) == 0 {
			return
		}
		if err := w.write(pkts); err != nil { // closing: the next tick finds it gone
			p.log.Debug("sfu: sender reports", "err", err)
		}
		pkts = pkts[:0]
	}
	for _, d := range downs {
		if sr, ok := d.senderReport(now); ok {
			pkts = append(pkts, &sr)
			if len(pkts) == maxReportsPerPacket {
				flush()
			}
		}
	}
	flush()
}
