package socketio

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// serveWebSocket answers the WebSocket transport: a new session without
// sid, or the upgrade of a polling session with one. Errors found before
// the WebSocket handshake get socket.io's JSON error answer.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, sid string) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		writeEngineError(w, errBadRequest)
		return
	}
	if sid == "" {
		s.serveNewWebSocket(w, r)
		return
	}
	c := s.lookup(sid)
	if c == nil {
		writeEngineError(w, errUnknownSID)
		return
	}
	if !c.reserveProbe() {
		writeEngineError(w, errBadRequest) // not polling, or already upgrading
		return
	}
	ws, err := s.accept(w, r)
	if err != nil {
		c.releaseProbe()
		return
	}
	if err := c.probe(ws); err != nil {
		c.log.Debug("socketio: upgrade failed", logKeyErr, err)
		c.releaseProbe()
		_ = ws.CloseNow() // the client goes on polling
		return
	}
	c.runWebSocket(ws)
}

// serveNewWebSocket opens a WebSocket-only session.
func (s *Server) serveNewWebSocket(w http.ResponseWriter, r *http.Request) {
	c, refusal := s.open(r, transportWebSocket)
	if c == nil {
		s.refuseHandshake(w, refusal)
		return
	}
	ws, err := s.accept(w, r)
	if err != nil {
		c.closeWith("transport error")
		return
	}
	// The writer is not running yet, so the open packet goes out first.
	if err := c.write(ws, c.openPacket(false)); err != nil {
		c.closeWith("transport error")
		_ = ws.CloseNow()
		return
	}
	c.runWebSocket(ws)
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	// ServeHTTP checked the origin already; the patterns say it again
	// (exact origins: config validation allows no wildcards). No compression.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.opts.AllowedOrigins})
	if err != nil {
		s.log.Debug("socketio: websocket accept failed", logKeyErr, err)
		return nil, err
	}
	ws.SetReadLimit(int64(s.opts.MaxPayload))
	return ws, nil
}

// reserveProbe claims the right to upgrade a polling session; one
// WebSocket at a time, and none once upgraded.
func (c *conn) reserveProbe() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeReason != "" || c.transport != transportPolling || c.probing {
		return false
	}
	c.probing = true
	return true
}

func (c *conn) releaseProbe() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probing, c.upgrading = false, false
}

var (
	errProbe   = errors.New("socketio: expected ping probe")
	errUpgrade = errors.New("socketio: expected upgrade packet")
	errClosed  = errors.New("socketio: session closed during upgrade")
)

// probe runs the upgrade handshake on ws: 2probe → 3probe, then noop the
// pending poll, then wait for 5. Polling stays the transport until then.
func (c *conn) probe(ws *websocket.Conn) error {
	ctx, cancel := context.WithTimeout(c.ctx, upgradeTimeout)
	defer cancel()
	p, err := readPacket(ctx, ws)
	if err != nil {
		return err
	}
	if p.Type != EnginePing || string(p.Data) != "probe" {
		return errProbe
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("3probe")); err != nil {
		return err
	}
	c.mu.Lock()
	c.upgrading = true
	c.kickPollLocked()
	c.mu.Unlock()

	if p, err = readPacket(ctx, ws); err != nil {
		return err
	}
	if p.Type != EngineUpgrade {
		return errUpgrade
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeReason != "" {
		return errClosed
	}
	c.transport, c.probing, c.upgrading = transportWebSocket, false, false
	c.kickPollLocked()
	return nil
}

func readPacket(ctx context.Context, ws *websocket.Conn) (EnginePacket, error) {
	typ, data, err := ws.Read(ctx)
	if err != nil {
		return EnginePacket{}, err
	}
	return DecodeEnginePacket(data, typ == websocket.MessageBinary)
}

// runWebSocket makes ws the session's transport until the session ends:
// this goroutine reads, a second one writes, and both are done on return.
func (c *conn) runWebSocket(ws *websocket.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() { c.writeLoop(ws) })
	c.readLoop(ws)
	wg.Wait()
}

// readLoop hands inbound packets to the loop. Its context is not the
// session's: cancelling a read closes the WebSocket, and the writer must
// still be able to flush and close it cleanly.
func (c *conn) readLoop(ws *websocket.Conn) {
	for {
		typ, data, err := ws.Read(c.srv.hard)
		if err != nil {
			c.closeWith(readErrorReason(err))
			return
		}
		p, err := DecodeEnginePacket(data, typ == websocket.MessageBinary)
		if err != nil {
			c.protocolError(err)
			return
		}
		select {
		case c.in <- p:
		case <-c.ctx.Done():
			return
		}
	}
}

func readErrorReason(err error) string {
	switch {
	case websocket.CloseStatus(err) != -1:
		return "transport close" // the client closed the WebSocket
	case errors.Is(err, websocket.ErrMessageTooBig):
		return "parse error"
	default:
		return "transport error"
	}
}

// writeLoop sends queued packets until the session ends, then flushes what
// is left (unless Close is out of time) and closes the WebSocket.
func (c *conn) writeLoop(ws *websocket.Conn) {
	for {
		select {
		case p := <-c.out:
			if err := c.write(ws, p); err != nil {
				c.closeWith("transport error")
				_ = ws.CloseNow()
				return
			}
		case <-c.ctx.Done():
			for _, p := range c.drain(nil) {
				if c.write(ws, p) != nil {
					_ = ws.CloseNow()
					return
				}
			}
			if c.srv.hard.Err() != nil {
				_ = ws.CloseNow()
				return
			}
			_ = ws.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}

// write sends one text packet within PingTimeout.
func (c *conn) write(ws *websocket.Conn, p []byte) error {
	ctx, cancel := context.WithTimeout(c.srv.hard, c.srv.opts.PingTimeout)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, p)
}
