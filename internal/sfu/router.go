package sfu

import (
	"log/slog"
	"sync"
	"time"
)

// RouterConfig holds one session's media limits. Zero values take the
// defaults below.
type RouterConfig struct {
	// MaxTracksPerPeer limits the tracks one peer publishes (camera, mic,
	// screen, second camera…). Default 6.
	MaxTracksPerPeer int
	// MaxPublisherBitrate (bits/s) is announced to each publisher as a REMB
	// cap; a publisher far above it for seconds is told so (sfu-error
	// sfu-bitrate-limit). Default 6 Mbit/s.
	MaxPublisherBitrate int
	// InitialBitrate (bits/s) is a subscriber's estimate before its first
	// report. Default 1 Mbit/s.
	InitialBitrate int
	// MaxSubscriberBitrate (bits/s) caps any subscriber's estimate.
	// Default 30 Mbit/s.
	MaxSubscriberBitrate int
	Logger               *slog.Logger
}

func (c RouterConfig) withDefaults() RouterConfig {
	if c.MaxTracksPerPeer <= 0 {
		c.MaxTracksPerPeer = 6
	}
	if c.MaxPublisherBitrate <= 0 {
		c.MaxPublisherBitrate = 6_000_000
	}
	if c.InitialBitrate <= 0 {
		c.InitialBitrate = 1_000_000
	}
	if c.MaxSubscriberBitrate <= 0 {
		c.MaxSubscriberBitrate = 30_000_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// tick is the period of the router's housekeeping: layer rates, layer
// choice per subscriber, keyframe retries, active speakers; every fourth
// tick, publishers' bitrate caps and subscribers' sender reports.
const tick = 250 * time.Millisecond

// Router forwards the media of one session. It admits nobody: the owner
// (the session's hub) calls Add for a peer it admitted, passes that peer's
// SFU messages to Handle, and calls Remove when the peer leaves or is
// removed. Messages to pages go out through the Signaler.
type Router struct {
	e   *Engine
	cfg RouterConfig
	sig Signaler
	log *slog.Logger

	mu       sync.Mutex // guards the fields below; taken before any participant's
	closed   bool
	peers    map[string]*participant
	tracks   map[string]*upTrack
	speakers []string

	// Counters at the last sfu-stats, owned by the tick.
	statDown map[*downTrack]statCounts
	statUp   map[*participant]statCounts

	// bufs holds the fan-out goroutines' send scratch (*sendBuf): one per
	// goroutine at a time, reused packet after packet.
	bufs sync.Pool

	goMu     sync.Mutex // guards goClosed; see goOwned
	goClosed bool
	wg       sync.WaitGroup
	stop     chan struct{}
}

// NewRouter starts a router for one session; Close stops it.
func (e *Engine) NewRouter(cfg RouterConfig, sig Signaler) *Router {
	cfg = cfg.withDefaults()
	r := &Router{
		e: e, cfg: cfg, sig: sig, log: cfg.Logger,
		peers: map[string]*participant{}, tracks: map[string]*upTrack{},
		stop: make(chan struct{}),
	}
	r.goOwned(r.loop)
	return r
}

// goOwned runs f in a goroutine that Close waits for; after Close it does
// nothing.
func (r *Router) goOwned(f func()) {
	r.goMu.Lock()
	defer r.goMu.Unlock()
	if r.goClosed {
		return
	}
	r.wg.Go(f)
}

// sendBuf lends a send scratch; putBuf gives it back.
func (r *Router) sendBuf() *sendBuf {
	if b, ok := r.bufs.Get().(*sendBuf); ok {
		return b
	}
	return new(sendBuf)
}

func (r *Router) putBuf(b *sendBuf) { r.bufs.Put(b) }

// Add makes an admitted peer known to the router: it may then publish, and
// it is offered every track of the session.
func (r *Router) Add(peer string) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if _, ok := r.peers[peer]; ok {
		r.mu.Unlock()
		return nil
	}
	p := newParticipant(peer, r)
	r.peers[peer] = p
	ups := make([]*upTrack, 0, len(r.tracks))
	for _, u := range r.tracks {
		ups = append(ups, u)
	}
	r.mu.Unlock()
	r.goOwned(p.negotiateLoop)
	for _, u := range ups {
		p.subscribe(u)
	}
	return nil
}

// Remove closes the peer's connections; its tracks vanish for everyone.
func (r *Router) Remove(peer string) {
	r.mu.Lock()
	p := r.peers[peer]
	if p == nil {
		r.mu.Unlock()
		return
	}
	delete(r.peers, peer)
	r.mu.Unlock()
	ups := p.close()
	for _, u := range ups {
		r.unpublish(u)
	}
}

// Handle takes one SFU message from an admitted peer. The error, if any,
// has a public face (*Error) for the hub to send back.
func (r *Router) Handle(peer string, m Message) error {
	r.mu.Lock()
	p := r.peers[peer]
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if p == nil {
		return ErrUnknownPeer
	}
	switch m.Type {
	case TypeOffer:
		return p.handlePublishOffer(m)
	case TypeAnswer:
		return p.handleSubscribeAnswer(m)
	case TypeCandidate:
		return p.addCandidate(m)
	case TypeLayer:
		return p.setLayer(m)
	}
	return ErrBadMessage
}

// Close closes every peer connection and waits for every goroutine of the
// router. The router refuses everything afterwards.
func (r *Router) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	peers := r.peers
	r.peers = map[string]*participant{}
	r.tracks = map[string]*upTrack{}
	r.mu.Unlock()
	close(r.stop)
	for _, p := range peers {
		p.close()
	}
	r.goMu.Lock()
	r.goClosed = true
	r.goMu.Unlock()
	r.wg.Wait()
}

// publish offers a new track to every other peer.
func (r *Router) publish(u *upTrack) {
	r.mu.Lock()
	if r.closed || r.peers[u.publisher.id] != u.publisher {
		r.mu.Unlock()
		return
	}
	r.tracks[u.id] = u
	subs := make([]*participant, 0, len(r.peers))
	for id, p := range r.peers {
		if id != u.publisher.id {
			subs = append(subs, p)
		}
	}
	r.mu.Unlock()
	for _, p := range subs {
		p.subscribe(u)
	}
}

// unpublish withdraws a track from every subscriber.
func (r *Router) unpublish(u *upTrack) {
	r.mu.Lock()
	if r.tracks[u.id] == u {
		delete(r.tracks, u.id)
	}
	subs := make([]*participant, 0, len(r.peers))
	for _, p := range r.peers {
		subs = append(subs, p)
	}
	r.mu.Unlock()
	for _, p := range subs {
		p.unsubscribe(u)
	}
}

// snapshot returns the current peers and tracks.
func (r *Router) snapshot() ([]*participant, []*upTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := make([]*participant, 0, len(r.peers))
	for _, p := range r.peers {
		ps = append(ps, p)
	}
	us := make([]*upTrack, 0, len(r.tracks))
	for _, u := range r.tracks {
		us = append(us, u)
	}
	return ps, us
}

// loop is the router's housekeeping goroutine.
func (r *Router) loop() {
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	lastStats := last
	var n int
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			peers, ups := r.snapshot()
			dt := now.Sub(last)
			last = now
			for _, u := range ups {
				for _, l := range u.layers {
					l.measure(dt)
				}
			}
			for _, p := range peers {
				p.allocate(now)
			}
			r.updateDynacast(ups, now)
			r.updateSpeakers(peers, ups)
			if n++; n%4 == 0 {
				for _, p := range peers {
					p.capPublisher(r.cfg.MaxPublisherBitrate)
					p.sendReports(now.UnixNano())
				}
			}
			if n%statsEvery == 0 {
				r.sendStats(peers, ups, now, now.Sub(lastStats))
				lastStats = now
			}
		}
	}
}
