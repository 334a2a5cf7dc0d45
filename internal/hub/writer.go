package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// errWriteTimeout is logged when the write watchdog closed a connection.
var errWriteTimeout = errors.New("write timeout")

// writeLoop is the only goroutine that writes messages to the connection,
// started by enqueue or shutdown when there is work and none is running. It
// drains the whole queue at each pass (a burst becomes one batch) and exits
// when the queue is empty, so an idle peer has no writer goroutine. When the
// connection is ending it sends the notice and closes the socket.
func (p *peer) writeLoop() {
	defer p.wg.Done()
	for {
		batch, end, ok := p.take()
		if !ok {
			return // nothing left: a later enqueue starts a new writer
		}
		if err := p.writeBatch(batch); err != nil {
			timeout := errors.Is(err, errWriteTimeout)
			if timeout {
				p.log().Info("write timeout, disconnecting")
			}
			p.shutdown(ending{reason: err.Error(), fault: timeout, client: !timeout})
			p.hub.leave(p)
			_ = p.conn.CloseNow()
			return // still marked writing: nothing will be written again
		}
		p.recycle(batch)
		if end != nil {
			// Unpublish now: the close handshake may take seconds with a
			// dead client, and the others should not wait for it.
			p.hub.leave(p)
			p.finish(end)
			return
		}
	}
}

// finish sends the notice of end, if any, and closes the connection.
func (p *peer) finish(end *ending) {
	if end.notice != nil {
		if err := p.writeBatch([][]byte{end.notice}); err != nil {
			_ = p.conn.CloseNow()
			return
		}
	}
	if end.code == 0 {
		_ = p.conn.CloseNow()
		return
	}
	// Close waits (up to 5 s) for the client's close frame; the reader,
	// still running, lets the handshake finish as soon as it arrives.
	_ = p.conn.Close(end.code, end.reason)
}

// startHeartbeat arms the timer that pings every PingInterval and enforces
// the join deadline. One timer per peer and no parked goroutine: the timer
// function (tick) runs the ping and re-arms the timer itself.
func (p *peer) startHeartbeat() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wg.Add(1) // held by the timer while armed or running; see stopHeartbeat
	p.beat = time.AfterFunc(p.nextBeat(), p.tick)
}

// nextBeat is the delay to the next tick: the ping interval, or less if the
// join deadline comes first.
func (p *peer) nextBeat() time.Duration {
	d := p.hub.cfg.PingInterval
	if !p.greeted.Load() {
		d = min(d, max(p.hub.cfg.JoinTimeout-time.Since(p.started), 0))
	}
	return d
}

func (p *peer) tick() {
	switch {
	case p.closing.Load():
	case !p.greeted.Load() && time.Since(p.started) >= p.hub.cfg.JoinTimeout:
		p.shutdown(endWithError(errJoinTimeout))
	default:
		// Ping blocks until the reader goroutine reads the pong.
		ctx, cancel := context.WithTimeout(context.Background(), p.hub.cfg.PongTimeout)
		err := p.conn.Ping(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			p.log().Info("heartbeat timeout, disconnecting")
			p.shutdown(endHeartbeat)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		p.wg.Done()
		return
	}
	p.beat.Reset(p.nextBeat())
}

// stopHeartbeat releases the timer's count in wg unless its function is
// running or about to run, in which case tick releases it (it sees done).
func (p *peer) stopHeartbeat() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
	if p.beat.Stop() {
		p.wg.Done()
	}
}

// watchdog bounds a batch of writes. Writes use a context that is never
// cancelled, so coder/websocket does not set up a context watcher per frame;
// instead one reusable timer closes the connection if a batch takes longer
// than the write timeout, which unblocks the write. It lives inside peer and
// is used only by the writer.
type watchdog struct {
	t     *time.Timer    // created by the first batch
	fired sync.WaitGroup // counts the timer's function while it may run
}

func (p *peer) writeBatch(batch [][]byte) error {
	if len(batch) == 0 {
		return nil
	}
	w := &p.dog
	if w.t == nil {
		w.t = time.AfterFunc(time.Hour, func() {
			defer w.fired.Done()
			_ = p.conn.CloseNow()
		})
		w.t.Stop()
	}
	w.fired.Add(1)
	w.t.Reset(p.hub.cfg.WriteTimeout)
	if p.co != nil {
		p.co.hold() // one write to the socket for the whole batch
	}
	var err error
	for _, frame := range batch {
		if err = p.conn.Write(context.Background(), websocket.MessageText, frame); err != nil {
			break
		}
	}
	if p.co != nil {
		if rerr := p.co.release(); err == nil {
			err = rerr
		}
	}
	if w.t.Stop() {
		w.fired.Done() // the function will not run
		return err
	}
	// The timer fired: wait for its function so that no goroutine outlives
	// the writer.
	w.fired.Wait()
	return errWriteTimeout
}
