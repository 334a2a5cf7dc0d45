package hub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// writeLoop is the connection's only writer of messages. Serve starts it
// and waits for it. It writes queued frames, sends a ping every
// PingInterval, ends the connection if no join arrives within JoinTimeout,
// and, once the connection is ending, sends the notice and closes.
func (p *peer) writeLoop() {
	cfg := &p.hub.cfg
	var pings sync.WaitGroup // at most one ping in flight; waited for on return
	defer pings.Wait()
	var pinging atomic.Bool
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	// One shot: it fires once and is never re-armed (issue 12.1).
	joinDeadline := time.NewTimer(cfg.JoinTimeout)
	defer joinDeadline.Stop()
	for {
		// An ending wins over queued frames: they are dropped.
		select {
		case <-p.ended:
			p.finish()
			return
		default:
		}
		select {
		case <-p.ended:
			p.finish()
			return
		case <-p.wake:
			if err := p.write(p.take()); err != nil {
				p.writeFailed(err)
				return
			}
		case <-ping.C:
			p.renewICE() // due renewals ride on the heartbeat: no timer of their own
			if pinging.CompareAndSwap(false, true) {
				pings.Go(func() {
					defer pinging.Store(false)
					p.ping()
				})
			}
		case <-joinDeadline.C:
			if !p.greeted.Load() {
				p.shutdown(endWithError(errJoinTimeout))
			}
		}
	}
}

// write writes frames under one write deadline, in one write to the socket
// when corked. It stops early if the connection starts ending.
func (p *peer) write(frames [][]byte) (err error) {
	ctx := context.Background()
	if p.cork != nil {
		// Corked, coder/websocket's writes only fill a buffer; the socket
		// is written by uncork (or a full cork) under a socket deadline.
		// So no context deadline, which would cost a context watcher per
		// frame.
		p.cork.cork()
		defer func() {
			if uerr := p.cork.uncork(); err == nil {
				err = uerr
			}
		}()
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.hub.cfg.WriteTimeout, errWriteTimeout)
		defer cancel()
	}
	for i, frame := range frames {
		if i > 0 && p.closing.Load() {
			return nil
		}
		if err := p.conn.Write(ctx, websocket.MessageText, frame); err != nil {
			if context.Cause(ctx) == errWriteTimeout {
				return errWriteTimeout
			}
			return err
		}
	}
	return nil
}

// errWriteTimeout is logged when a write outlasted WriteTimeout.
var errWriteTimeout = errors.New("write timeout")

// writeFailed ends a connection whose socket could not be written.
func (p *peer) writeFailed(err error) {
	timeout := errors.Is(err, errWriteTimeout) || p.cork != nil && p.cork.timedOut.Load()
	if timeout {
		p.log().Info("write timeout, disconnecting")
	}
	p.shutdown(ending{reason: err.Error(), fault: timeout, client: !timeout})
	p.hub.leave(p)
	_ = p.conn.CloseNow() // unblocks the reader
}

// finish unpublishes the peer, sends the notice of its ending, if any, and
// closes the connection.
func (p *peer) finish() {
	// Unpublish first: the close handshake may take seconds with a dead
	// client, and the others should not wait for it.
	p.hub.leave(p)
	end := p.ending()
	if end.notice != nil {
		if err := p.write([][]byte{end.notice}); err != nil {
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

// ping sends a ping and waits for the pong, which the reader receives;
// without one within PongTimeout the connection ends with 4010.
func (p *peer) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), p.hub.cfg.PongTimeout)
	defer cancel()
	if err := p.conn.Ping(ctx); errors.Is(err, context.DeadlineExceeded) {
		p.log().Info("heartbeat timeout, disconnecting")
		p.shutdown(endHeartbeat)
	}
}
