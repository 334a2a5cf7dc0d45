package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// Transport names, as they appear in the "transport" query parameter.
const (
	transportPolling   = "polling"
	transportWebSocket = "websocket"
)

// conn is one Engine.IO session and the Socket.IO sockets it carries.
//
// Its loop goroutine (run) owns the sockets and the heartbeat and runs every
// callback, so the callbacks of a connection never run concurrently.
// Transports talk to the loop through channels: inbound packets go through
// the unbuffered in (a transport holds at most one decoded packet while the
// loop is busy, which bounds memory by MaxPayload), outbound packets through
// the bounded out, drained by the WebSocket writer or the pending poll.
type conn struct {
	srv       *Server
	sid       string
	log       *slog.Logger
	handshake *http.Request // the request that opened the session
	addr      string        // the client's LimitKey, for the pending bound
	pending   bool          // counted as pending by the server; guarded by srv.mu

	ctx    context.Context // cancelled once the loop has torn the session down
	cancel context.CancelFunc

	in   chan EnginePacket
	out  chan []byte   // encoded text packets
	wake chan struct{} // capacity 1: something below changed, the loop should look

	mu           sync.Mutex
	closeReason  string    // set once: the loop then tears down
	clientClosed bool      // the client sent a close packet
	removals     []*Socket // sockets disconnected by the server, to finish on the loop
	transport    string
	probing      bool          // a WebSocket is attempting an upgrade
	upgrading    bool          // the probe succeeded: polls are answered with a noop
	polling      bool          // a GET is pending
	pollKick     chan struct{} // closed to end the pending GET with a noop
	posting      bool          // a POST is being read

	sockets  map[string]*Socket // by namespace; owned by the loop
	admitted bool               // has had a socket since it was last pending; owned by the loop
}

func newConn(s *Server, r *http.Request, transport string) *conn {
	hs := r.Clone(context.Background())
	hs.Body = http.NoBody
	c := &conn{
		srv:       s,
		sid:       randomID(),
		log:       s.log.With(logKeyConn, s.nextConn.Add(1)),
		handshake: hs,
		addr:      LimitKey(s.opts.ClientAddress(r)),
		in:        make(chan EnginePacket),
		out:       make(chan []byte, sendQueueLen),
		wake:      make(chan struct{}, 1),
		transport: transport,
		sockets:   make(map[string]*Socket),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// randomID returns 20 URL-safe characters from 120 random bits, the shape
// of socket.io ids. Engine session ids and socket ids are drawn separately:
// a socket id is shown to other clients, a session id would let them hijack
// the session.
func randomID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail (Go ≥ 1.24 aborts instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// closeWith asks the loop to close the session; safe from any goroutine,
// never blocks, and the first reason wins.
func (c *conn) closeWith(reason string) {
	c.mu.Lock()
	c.closeLocked(reason)
	c.mu.Unlock()
}

func (c *conn) closeLocked(reason string) {
	if c.closeReason == "" {
		c.closeReason = reason
	}
	c.poke()
}

func (c *conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (c *conn) closing() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeReason
}

// send queues one encoded packet without blocking. A full queue means the
// client does not keep up: it is disconnected rather than slowing the caller.
func (c *conn) send(pkt []byte) error {
	if c.ctx.Err() != nil {
		return ErrDisconnected
	}
	select {
	case c.out <- pkt:
		return nil
	default:
		c.closeWith("slow client")
		return ErrSlowClient
	}
}

// sendMessage queues a Socket.IO packet inside an Engine.IO message packet.
func (c *conn) sendMessage(p SocketPacket) error {
	return c.send(appendSocketPacket([]byte{'0' + byte(EngineMessage)}, p))
}

// run is the connection's loop: heartbeat, inbound packets, callbacks.
func (c *conn) run() {
	opts := &c.srv.opts
	ping := time.NewTimer(opts.PingInterval)
	pong := time.NewTimer(opts.PingTimeout)
	pong.Stop() // armed only while a ping is outstanding
	connect := time.NewTimer(opts.ConnectTimeout)
	defer func() { ping.Stop(); pong.Stop(); connect.Stop() }()

	for c.closing() == "" {
		select {
		case p := <-c.in:
			if c.handlePacket(p) {
				pong.Stop()
				ping.Reset(opts.PingInterval)
			}
		case <-ping.C:
			_ = c.send([]byte{'0' + byte(EnginePing)}) // a full queue closes the session itself
			pong.Reset(opts.PingTimeout)
		case <-pong.C:
			c.closeWith("ping timeout")
		case <-connect.C:
			if len(c.sockets) == 0 {
				c.closeWith("connect timeout")
			}
		case <-c.wake:
			c.finishRemovals()
		case <-c.srv.ctx.Done():
			c.closeWith("server shutting down")
		}
		if c.admitted && len(c.sockets) == 0 {
			c.unadmit(connect)
		}
	}
	c.teardown()
}

// admit stops bounding c as pending: a namespace admitted it.
func (c *conn) admit() {
	if !c.admitted {
		c.admitted = true
		c.srv.settle(c)
	}
}

// unadmit makes a session whose last socket is gone pending again: it
// counts against the bounds (and is closed if over them) and has
// ConnectTimeout to join a namespace, as a new one. Otherwise a client
// could join and leave a namespace to hold sessions without bound.
func (c *conn) unadmit(connect *time.Timer) {
	c.admitted = false
	if !c.srv.repend(c) {
		c.closeWith("too many pending connections")
		return
	}
	connect.Reset(c.srv.opts.ConnectTimeout)
}

// handlePacket handles one inbound Engine.IO packet and reports whether it
// was a pong, which restarts the heartbeat.
func (c *conn) handlePacket(p EnginePacket) (pong bool) {
	switch p.Type {
	case EnginePong:
		return true
	case EngineMessage:
		c.handleMessage(p)
	case EngineClose:
		c.mu.Lock()
		c.clientClosed = c.closeReason == ""
		c.closeLocked("transport close")
		c.mu.Unlock()
	case EngineNoop:
	default:
		// Pings come from the server in v4; open and upgrade never reach the loop.
		c.protocolError(fmt.Errorf("unexpected engine packet type %d", p.Type))
	}
	return false
}

func (c *conn) protocolError(err error) {
	c.log.Debug("socketio: protocol error", logKeyErr, err)
	c.closeWith("parse error")
}

// teardown ends every socket, then releases the transports.
func (c *conn) teardown() {
	reason := c.closing()
	c.srv.mu.Lock()
	delete(c.srv.conns, c.sid)
	c.srv.mu.Unlock()
	c.srv.settle(c)

	c.finishRemovals()
	for _, nsp := range slices.Sorted(maps.Keys(c.sockets)) {
		c.dropSocket(c.sockets[nsp], reason)
	}
	c.cancel()
	c.log.Debug("socketio: connection closed", logKeyReason, reason)
}

// finishRemovals completes Socket.Disconnect calls on the loop.
func (c *conn) finishRemovals() {
	c.mu.Lock()
	removals := c.removals
	c.removals = nil
	c.mu.Unlock()
	for _, s := range removals {
		c.dropSocket(s, "server namespace disconnect")
	}
}

// dropSocket closes s (at most once), fails its pending acks and calls its
// OnDisconnect handler.
func (c *conn) dropSocket(s *Socket, reason string) {
	if c.sockets[s.nsp] == s {
		delete(c.sockets, s.nsp)
	}
	acks, onDisconnect, first := s.drop()
	if !first {
		return
	}
	c.log.Debug("socketio: socket disconnected", logKeySocket, s.id, logKeyNamespace, s.nsp, logKeyReason, reason)
	for _, id := range slices.Sorted(maps.Keys(acks)) {
		c.call("ack callback", func() { acks[id](nil, ErrDisconnected) })
	}
	if onDisconnect != nil {
		c.call("OnDisconnect", func() { onDisconnect(reason) })
	}
}

// call runs an application callback. A panic is logged and closes this
// connection instead of the whole process, as net/http does for handlers.
func (c *conn) call(what string, fn func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("socketio: callback panicked", logKeyCallback, what, logKeyPanic, v, logKeyStack, string(debug.Stack()))
			c.closeWith("callback panic")
			ok = false
		}
	}()
	fn()
	return true
}
