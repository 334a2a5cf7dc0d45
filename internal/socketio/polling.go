package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// handshake is the data of the open packet, in socket.io's field order.
type handshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// openPacket encodes the open packet; only a polling session can upgrade.
func (c *conn) openPacket(upgradable bool) []byte {
	h := handshake{
		SID:          c.sid,
		Upgrades:     []string{},
		PingInterval: c.srv.opts.PingInterval.Milliseconds(),
		PingTimeout:  c.srv.opts.PingTimeout.Milliseconds(),
		MaxPayload:   c.srv.opts.MaxPayload,
	}
	if upgradable {
		h.Upgrades = []string{transportWebSocket}
	}
	data, _ := json.Marshal(h) // plain fields: cannot fail
	return append([]byte{'0' + byte(EngineOpen)}, data...)
}

// open registers a new session and starts its loop, or says why not: the
// server is closing, or too many sessions wait to join a namespace.
func (s *Server) open(r *http.Request, transport string) (*conn, engineError) {
	c := newConn(s, r, transport)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errShuttingDown
	}
	if refusal, ok := s.admitPendingLocked(c); !ok {
		return nil, refusal
	}
	s.conns[c.sid] = c
	s.wg.Go(c.run)
	return c, engineError{}
}

// servePolling answers the HTTP long-polling transport.
func (s *Server) servePolling(w http.ResponseWriter, r *http.Request, sid string) {
	if sid == "" {
		if r.Method != http.MethodGet {
			writeEngineError(w, errBadHandshakeMethod)
			return
		}
		c, refusal := s.open(r, transportPolling)
		if c == nil {
			s.refuseHandshake(w, refusal)
			return
		}
		writePayload(w, c.openPacket(true))
		return
	}
	c := s.lookup(sid)
	switch {
	case c == nil:
		writeEngineError(w, errUnknownSID)
	case r.Method == http.MethodGet:
		c.servePoll(w, r)
	case r.Method == http.MethodPost:
		c.serveData(w, r)
	default:
		writeEngineError(w, errBadRequest)
	}
}

// servePoll answers a GET with the queued packets, waiting for some if
// there are none. During an upgrade it answers with a noop so the client
// can finish switching to WebSocket.
func (c *conn) servePoll(w http.ResponseWriter, r *http.Request) {
	kick, bad := c.startPoll()
	if bad.status != 0 {
		writeEngineError(w, bad)
		return
	}
	defer c.endPoll()

	var packets [][]byte
	select {
	case p := <-c.out:
		packets = c.drain([][]byte{p})
	case <-kick:
		packets = c.drain(nil)
	case <-c.ctx.Done():
		packets = append(c.drain(nil), c.lastPollPacket())
	case <-r.Context().Done():
		c.closeWith("transport close") // the client went away mid-poll
		return
	}
	if len(packets) == 0 {
		packets = [][]byte{{'0' + byte(EngineNoop)}}
	}
	if !c.respond(w, bytes.Join(packets, []byte{recordSeparator})) {
		c.closeWith("transport error") // the packets are lost: do not go on without them
	}
}

// startPoll marks a GET pending. A second concurrent GET is a protocol
// violation that closes the session (the pending one then gets a close
// packet); a GET after the upgrade is refused.
func (c *conn) startPoll() (kick chan struct{}, bad engineError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closeReason != "":
		return nil, errUnknownSID
	case c.transport != transportPolling:
		return nil, errBadRequest
	case c.polling:
		c.closeLocked("transport error")
		return nil, errBadRequest
	}
	c.polling = true
	kick = make(chan struct{})
	if c.upgrading {
		close(kick)
	} else {
		c.pollKick = kick
	}
	return kick, engineError{}
}

func (c *conn) endPoll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.polling, c.pollKick = false, nil
}

// kickPollLocked ends the pending GET with a noop; c.mu must be held.
func (c *conn) kickPollLocked() {
	if c.pollKick != nil {
		close(c.pollKick)
		c.pollKick = nil
	}
}

// lastPollPacket ends a poll on a closed session: noop if the client closed
// it (as socket.io does), close otherwise.
func (c *conn) lastPollPacket() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clientClosed {
		return []byte{'0' + byte(EngineNoop)}
	}
	return []byte{'0' + byte(EngineClose)}
}

// drain appends every packet queued right now.
func (c *conn) drain(packets [][]byte) [][]byte {
	for {
		select {
		case p := <-c.out:
			packets = append(packets, p)
		default:
			return packets
		}
	}
}

// serveData reads a POST payload and hands its packets to the loop one by
// one; the answer "ok" means all of them were taken.
func (c *conn) serveData(w http.ResponseWriter, r *http.Request) {
	if bad := c.startPost(); bad.status != 0 {
		writeEngineError(w, bad)
		return
	}
	defer c.endPost()

	body, err := c.readBody(w, r)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			c.closeWith("parse error")
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		c.closeWith("transport error")
		writeEngineError(w, errBadRequest)
		return
	}
	// Validate everything first, so a bad payload delivers nothing.
	for _, err := range payloadPackets(body) {
		if err != nil {
			c.protocolError(err)
			writeEngineError(w, errBadRequest)
			return
		}
	}
	for p := range payloadPackets(body) {
		select {
		case c.in <- p:
		case <-c.ctx.Done():
			writeEngineError(w, errUnknownSID)
			return
		case <-r.Context().Done():
			return
		}
	}
	c.respond(w, []byte("ok"))
}

// startPost marks a POST in progress; two at once close the session, as the
// protocol requires, since their packets could be reordered.
func (c *conn) startPost() engineError {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closeReason != "":
		return errUnknownSID
	case c.transport != transportPolling:
		return errBadRequest
	case c.posting:
		c.closeLocked("transport error")
		return errBadRequest
	}
	c.posting = true
	return engineError{}
}

func (c *conn) endPost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.posting = false
}

// readBody reads a POST body of at most MaxPayload bytes within PingTimeout.
func (c *conn) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	// Deadlines stay on a keep-alive connection: clear them afterwards.
	// Writers without deadline support simply get none.
	if rc.SetReadDeadline(time.Now().Add(c.srv.opts.PingTimeout)) == nil {
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, int64(c.srv.opts.MaxPayload)))
}

// respond writes a polling response body within PingTimeout; false if it
// did not go out.
func (c *conn) respond(w http.ResponseWriter, body []byte) bool {
	rc := http.NewResponseController(w)
	if rc.SetWriteDeadline(time.Now().Add(c.srv.opts.PingTimeout)) == nil {
		defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	}
	return writePayload(w, body) && rc.Flush() == nil
}

// writePayload writes a polling response body; false if it did not go out.
func writePayload(w http.ResponseWriter, body []byte) bool {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err == nil
}
