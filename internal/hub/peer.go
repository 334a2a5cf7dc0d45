package hub

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// keepQueueCap is the largest queue array kept between batches: enough to
// avoid allocating under steady load, too small to let a past burst pin
// memory on an idle peer.
const keepQueueCap = 8

// peer is one connection, from Serve until it returns. Before join only
// hub, conn and id are meaningful.
//
// Goroutines: the Serve goroutine reads. A flush goroutine (writeLoop) runs
// only while there is something to write, at most one at a time; it is the
// only writer of messages. The heartbeat timer's function runs the pings.
// All of them are counted in wg, which Serve waits on before returning.
type peer struct {
	hub     *Hub
	conn    *websocket.Conn
	co      *coalescer // batches writes; nil unless conn comes from Accept
	id      string
	started time.Time // when Serve started, for the join deadline

	// Set by the Serve goroutine at join, before the peer is published under
	// hub.mu; read-only afterwards.
	info     PeerInfo
	ident    Identity
	infoJSON []byte // info encoded by appendPeer, reused in welcomes and peer-joined
	joined   bool   // admitted and published; only the Serve goroutine uses it

	greeted atomic.Bool // a join with a key arrived: the join deadline is off
	closing atomic.Bool // mirrors end != nil for the reader's fast path
	wg      sync.WaitGroup

	mu          sync.Mutex         // guards the following
	queue       [][]byte           // frames waiting for the writer
	spare       [][]byte           // the previous batch's array, reused
	end         *ending            // set once: how the connection ends
	writing     bool               // a writeLoop goroutine is running
	done        bool               // Serve is waiting for wg: start nothing new
	beat        *time.Timer        // heartbeat and join deadline
	dog         watchdog           // write deadline; used by the writer only
	cancelAdmit context.CancelFunc // set while Admit runs
}

func newPeer(h *Hub, c *websocket.Conn) *peer {
	return &peer{hub: h, conn: c, id: newPeerID(), started: time.Now()}
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
	defer p.mu.Unlock()
	if p.end != nil {
		return true // ending: frames are dropped, the notice is last
	}
	if len(p.queue) >= p.hub.cfg.QueueLen {
		p.endLocked(&endTooSlow)
		return false
	}
	p.queue = append(p.queue, frame)
	p.startWriterLocked()
	return true
}

// shutdown asks for the connection to end: pending frames are dropped,
// e.notice (if any) is sent, then the close code. Only the first call
// counts. The peer leaves the hub when the writer gets to it.
func (p *peer) shutdown(e ending) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.end == nil {
		p.endLocked(&e)
	}
}

func (p *peer) endLocked(e *ending) {
	if e.fault {
		p.hub.cfg.Counters.Errors.Add(1)
	}
	p.queue = nil
	p.end = e
	p.closing.Store(true)
	if p.cancelAdmit != nil {
		p.cancelAdmit()
	}
	p.startWriterLocked()
}

// startWriterLocked starts the writer unless it runs already. Every
// goroutine is counted in wg before Serve may wait on it.
func (p *peer) startWriterLocked() {
	if p.writing || p.done {
		return
	}
	p.writing = true
	p.wg.Add(1)
	go p.writeLoop()
}

// take hands the writer everything queued so far and the ending, if any.
// With nothing to do it marks the writer stopped and reports false.
func (p *peer) take() ([][]byte, *ending, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	batch, end := p.queue, p.end
	if len(batch) == 0 && end == nil {
		p.writing = false
		return nil, nil, false
	}
	p.queue, p.spare = p.spare, nil
	return batch, end, true
}

// recycle gives a written batch back so the next one can reuse its array.
func (p *peer) recycle(batch [][]byte) {
	if cap(batch) > keepQueueCap {
		return
	}
	clear(batch) // let the frames be collected
	p.mu.Lock()
	if p.spare == nil && p.end == nil {
		p.spare = batch[:0]
	}
	p.mu.Unlock()
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
