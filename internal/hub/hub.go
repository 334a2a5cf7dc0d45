package hub

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// Hub is the signaling hub of one session. Create it with [New]; it is safe
// for concurrent use.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	corkBufs sync.Pool // *[]byte, see corkConn
	readBufs sync.Pool // *[]byte, see readLoop

	mu     sync.RWMutex       // guards the following
	peers  map[string]*peer   // joined peers by id
	list   []*peer            // joined peers in join order
	conns  map[*peer]struct{} // every running Serve, joined or not
	closed bool
	reason CloseReason
	idle   chan struct{} // closed once closed is set and conns is empty

	redeemed map[[nonceBytes]byte]time.Time // resume nonces taken, until they expire
}

// New returns the hub of one session. cfg.Admitter is required.
func New(cfg Config) *Hub {
	if cfg.Admitter == nil {
		panic("hub: Config.Admitter is nil")
	}
	cfg = cfg.withDefaults()
	if !json.Valid(cfg.ICEServers) {
		cfg.Logger.Error("invalid ICE servers JSON, sending []")
		cfg.ICEServers = json.RawMessage("[]")
	}
	return &Hub{
		cfg:   cfg,
		log:   cfg.Logger,
		peers: make(map[string]*peer),
		conns: make(map[*peer]struct{}),
		idle:  make(chan struct{}),
	}
}

// Peers returns the joined peers, sorted by join order.
func (h *Hub) Peers() []PeerInfo {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]PeerInfo, len(h.list))
	for i, p := range h.list {
		out[i] = p.info
	}
	return out
}

// Kick removes every peer with this identity: each is sent {"type":"removed"}
// and closed with 4002, and the others see peer-left. With an empty UUID it
// removes every anonymous peer of that role. It returns how many peers were
// removed. Connections that have not joined yet are not affected: refusing
// their key from then on is the Admitter's job.
func (h *Hub) Kick(id Identity) int {
	var gone, slow []*peer
	h.mu.Lock()
	for _, p := range h.list {
		if p.ident == id {
			gone = append(gone, p)
		}
	}
	for _, p := range gone {
		slow = h.removeLocked(p, slow)
	}
	h.mu.Unlock()
	for _, p := range gone {
		p.log().Info("peer removed")
		p.shutdown(endRemoved)
		h.mediaRemove(p) // its tracks go now, not when its connection has closed
	}
	h.evict(slow)
	return len(gone)
}

// Close ends the session for every connection, joined or not: reason
// SessionEnded sends {"type":"session-ended"} and closes with 4003,
// ServerShutdown sends {"type":"server-shutdown"} and closes with 4004. New
// Serve calls are then refused. Close waits until every Serve has returned,
// or until ctx ends (returning its error): a client that does not answer the
// close handshake holds its Serve up to about 5 s. Only the first call's
// reason counts; later calls just wait.
func (h *Hub) Close(ctx context.Context, reason CloseReason) error {
	h.mu.Lock()
	var conns []*peer
	if !h.closed {
		h.closed, h.reason = true, reason
		h.cfg.Counters.PeersConnected.Add(-int64(len(h.list)))
		clear(h.peers)
		h.list = nil
		for p := range h.conns {
			conns = append(conns, p)
		}
		if len(h.conns) == 0 {
			close(h.idle)
		}
		h.log.Info("session closing", logKeyReason, reason.String(), logKeyPeers, len(conns))
	}
	h.mu.Unlock()
	end := endFor(reason, false)
	for _, p := range conns {
		p.shutdown(end)
	}
	select {
	case <-h.idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// track registers a new connection, counted as pending until it joins.
// It refuses it when the hub is closed or too many connections are pending.
func (h *Hub) track(p *peer) (ending, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		h.cfg.Counters.JoinsRefused.Add(1)
		return endFor(h.reason, true), false
	}
	if full := h.cfg.Counters.addPending(p.addr, h.cfg.MaxPendingPerAddr, h.cfg.MaxPending); full != "" {
		h.cfg.Counters.Errors.Add(1)
		h.log.Warn("connection refused: too many connections waiting to join",
			logKeyLimit, full, logKeyAddr, p.addr)
		return endWithError(errBusy), false
	}
	p.pending = true
	h.conns[p] = struct{}{}
	return ending{}, true
}

// admitted stops counting p as pending. Serve's goroutine only.
func (h *Hub) admitted(p *peer) {
	if p.pending {
		p.pending = false
		h.cfg.Counters.removePending(p.addr)
	}
}

func (h *Hub) untrack(p *peer) {
	h.admitted(p)
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, p)
	if h.closed && len(h.conns) == 0 {
		close(h.idle)
	}
}
