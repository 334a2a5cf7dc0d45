package hub

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// peer is one connection, from Serve until it returns. Before join only
// hub, conn, id and addr are meaningful.
//
// Goroutines: the Serve goroutine reads; one writer goroutine (writeLoop),
// started and waited for by Serve, writes, pings and enforces the join
// deadline. Everyone else talks to the connection through enqueue and
// shutdown.
type peer struct {
	hub   *Hub
	conn  *websocket.Conn
	id    string
	addr  string        // client address for the pending caps; "" when unknown
	cork  *corkConn     // nil unless ServeHTTP upgraded the connection
	wake  chan struct{} // capacity 1: frames wait in queue
	ended chan struct{} // closed when end is set

	// Owned by the Serve goroutine. info, ident and infoJSON are set at join,
	// before the peer is published under hub.mu, and read-only afterwards.
	info     PeerInfo
	ident    Identity
	infoJSON []byte // info encoded by appendPeer, reused in welcomes and peer-joined
	joined   bool   // admitted and published
	// mint makes the resume token of the welcome for the id the peer is
	// published under (set at join; it holds the join key, so it is
	// dropped once the welcome is queued).
	mint    func(id string) string
	pending bool   // counted in Counters' pending connections
	budget  bucket // the client's message budget

	greeted atomic.Bool  // a join with a key arrived: the join deadline is off
	closing atomic.Bool  // mirrors end != nil for the fast paths
	iceDue  atomic.Int64 // unix nanoseconds when the ICE servers are renewed; 0 = never (ice.go)

	mu          sync.Mutex // guards the following
	queue       [][]byte   // frames for the writer, at most QueueLen; nil when empty, so an idle peer holds none
	queued      int        // bytes in queue, at most QueueBytes
	held        bool       // the queue waits for Policy.Joined: take hands out nothing
	end         *ending    // set once: how the connection ends
	cancelAdmit context.CancelFunc
}

func newPeer(h *Hub, c *websocket.Conn, addr string) *peer {
	return &peer{
		hub: h, conn: c, id: newPeerID(), addr: addr,
		wake:  make(chan struct{}, 1),
		ended: make(chan struct{}),
	}
}

// log returns the peer's child logger. It is built when needed rather than
// kept: logging is rare per peer, idle memory is not.
func (p *peer) log() *slog.Logger {
	return p.hub.log.With(logKeyPeer, p.id)
}

// enqueue queues frame for the writer. It never blocks and never touches the
// socket, so callers may hold the hub lock. It reports false when the queue
// overflowed: the peer is then ending with 4008 and the caller must call
// hub.evict once it holds no lock.
func (p *peer) enqueue(frame []byte) bool {
	p.mu.Lock()
	switch {
	case p.end != nil:
		p.mu.Unlock()
		return true // ending: frames are dropped, the notice is last
	case len(p.queue) >= p.hub.cfg.QueueLen, p.queued+len(frame) > p.hub.cfg.QueueBytes:
		p.mu.Unlock()
		p.shutdown(endTooSlow)
		return false
	}
	p.queue = append(p.queue, frame)
	p.queued += len(frame)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // the writer is already woken
	}
	return true
}

// take hands the writer every frame queued so far, or none while held.
func (p *peer) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		return nil
	}
	q := p.queue
	p.queue, p.queued = nil, 0
	return q
}

// hold queues the welcome, first in the queue, and holds the queue until
// release: with a Policy, the client must not read its welcome (and act on
// it) before Policy.Joined has run. Called under hub.mu, before p is
// published.
func (p *peer) hold(welcome []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = true
	p.queue = append(p.queue, welcome)
	p.queued += len(welcome)
}

// release lets the writer send the held queue.
func (p *peer) release() {
	p.mu.Lock()
	p.held = false
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// shutdown asks for the connection to end: queued frames are dropped,
// e.notice (if any) is sent, then the close code. Only the first call
// counts. The writer unpublishes the peer when it gets to it.
func (p *peer) shutdown(e ending) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.end != nil {
		return
	}
	if e.fault {
		p.hub.cfg.Counters.Errors.Add(1)
	}
	p.end = &e
	p.closing.Store(true)
	if p.cancelAdmit != nil {
		p.cancelAdmit()
	}
	close(p.ended)
}

// ending returns the ending, or nil while the connection is running.
func (p *peer) ending() *ending {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.end
}

// admitting runs admit with a context that shutdown cancels, so that a slow
// Admitter cannot keep a closed connection's Serve alive.
func (p *peer) admitting(ctx context.Context, admit func(context.Context) (Identity, error)) (Identity, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.mu.Lock()
	if p.end != nil {
		cancel()
	}
	p.cancelAdmit = cancel
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.cancelAdmit = nil
		p.mu.Unlock()
	}()
	return admit(ctx)
}

// bucket is a token bucket: a client may spend burst tokens at once and
// earns rate tokens per second. Used by the reader only.
type bucket struct {
	tokens float64
	last   time.Time
}

// take spends cost tokens at now and reports whether there were enough.
func (b *bucket) take(cost, rate, burst float64, now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < cost {
		return false
	}
	b.tokens -= cost
	return true
}

// messageCost is what a message of n bytes costs: one token, plus one per
// full 16 KiB, so that large messages use the budget faster.
func messageCost(n int) float64 {
	return float64(1 + n/(16<<10))
}
