package hub

import (
	"context"
	"errors"
	"io"

	"github.com/coder/websocket"
)

// Serve runs one client connection until it ends, and returns only when
// every goroutine it started is done. ctx is the request context: Admit gets
// it (cancelled early if the connection ends), and when it ends the
// connection is closed with 1001. Serve owns c and always closes it.
//
// The returned error is for the caller's logs; the client has already been
// told what went wrong. It is nil for normal ends (the client left, Kick,
// Close, a newer connection replacing this one), ErrClosed if the hub was
// closed, a websocket.CloseError for the faults that close the connection
// with a code (websocket.CloseStatus reads it), or the read error of a
// connection that broke.
func (h *Hub) Serve(ctx context.Context, c *websocket.Conn) error {
	p := newPeer(h, c)
	p.co = h.takeCoalescer(c) // nil unless c comes from Accept
	if reason, ok := h.track(p); !ok {
		h.refuseClosed(c, reason)
		return ErrClosed
	}
	defer h.untrack(p)
	c.SetReadLimit(MaxFrame)

	p.startHeartbeat()
	stopWatch := p.watchContext(ctx)
	readErr := p.readLoop(ctx)
	h.leave(p)
	p.shutdown(endReadDone) // no-op if the hub ended it first
	if p.joined && h.cfg.Policy != nil {
		h.cfg.Policy.Left(Peer{p})
	}
	stopWatch()
	p.stopHeartbeat()
	p.wg.Wait() // writer, ping and context watcher

	end := p.ending()
	if p.joined {
		p.log().Info("peer left", logKeyClose, end.reason, logKeyErr, readErr)
		if h.cfg.Observer != nil {
			h.cfg.Observer.PeerLeft(p.info)
		}
	}
	switch {
	case end.fault:
		return end.err()
	case end.client:
		return normalEnd(readErr)
	}
	return nil
}

// watchContext closes the connection with 1001 when ctx ends. The returned
// stop function must be called before waiting on wg.
func (p *peer) watchContext(ctx context.Context) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	p.wg.Add(1) // held until the function has run or can no longer run
	stopFunc := context.AfterFunc(ctx, func() {
		defer p.wg.Done()
		p.shutdown(endGoingAway)
	})
	return func() {
		if stopFunc() {
			p.wg.Done()
		}
	}
}

// normalEnd hides the errors that mean the client simply went away.
func normalEnd(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return nil
	}
	return err
}

// refuseClosed answers a connection that arrives after Close. No writer runs
// yet, so Serve's goroutine may write.
func (h *Hub) refuseClosed(c *websocket.Conn, reason CloseReason) {
	h.cfg.Counters.JoinsRefused.Add(1)
	end := endFor(reason, true)
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.WriteTimeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, end.notice); err != nil {
		_ = c.CloseNow()
		return
	}
	_ = c.Close(end.code, end.reason)
}

// readLoop is the connection's only reader. It returns the error that ended
// reading: the client closed, the connection broke, or the writer closed it.
func (p *peer) readLoop(ctx context.Context) error {
	for {
		// A context that is never cancelled: see the package doc.
		typ, r, err := p.conn.Reader(context.Background())
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			p.shutdown(endBinary)
			return errors.New("binary frame")
		}
		// Buffers come from a pool per message, so idle peers hold none.
		bp := p.hub.getBuf()
		*bp, err = readAll(r, (*bp)[:0])
		if err == nil {
			p.handle(ctx, *bp)
		}
		p.hub.bufs.Put(bp)
		if errors.Is(err, websocket.ErrMessageTooBig) {
			p.shutdown(endTooBig) // coder/websocket has already sent 1009
		}
		if err != nil {
			return err
		}
	}
}

// readAll reads one message into buf, growing it as needed.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// readBufSize fits typical signaling messages (ICE candidates, small SDP).
const readBufSize = 2048

func (h *Hub) getBuf() *[]byte {
	if bp, ok := h.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, readBufSize)
	return &b
}
