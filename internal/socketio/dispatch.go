package socketio

import (
	"encoding/json"
	"errors"
)

// ConnectError refuses a namespace from Options.Authorize with a message
// (and optional JSON-encodable data) that the client receives in its
// connect_error event as err.message and err.data. Any other error is
// logged and shown to the client as "Not authorized".
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return "socketio: connection refused: " + e.Message }

// ErrInvalidNamespace refuses a namespace the way socket.io refuses one
// that does not exist: the client sees "Invalid namespace".
var ErrInvalidNamespace = errors.New("socketio: invalid namespace")

// handleMessage handles one Engine.IO message: a Socket.IO packet.
func (c *conn) handleMessage(p EnginePacket) {
	if p.Binary {
		c.protocolError(ErrBinaryUnsupported)
		return
	}
	sp, err := DecodeSocketPacket(p.Data)
	if err != nil {
		c.protocolError(err)
		return
	}
	switch sp.Type {
	case SocketConnect:
		c.handleConnect(sp)
	case SocketDisconnect:
		if s := c.sockets[sp.Namespace]; s != nil {
			c.dropSocket(s, "client namespace disconnect")
		}
	case SocketEvent:
		c.handleEvent(sp)
	case SocketAck:
		c.handleAck(sp)
	default:
		// CONNECT_ERROR only travels server → client; socket.io ignores it too.
	}
}

// handleConnect joins a namespace, or refuses it with CONNECT_ERROR.
func (c *conn) handleConnect(p SocketPacket) {
	nsp := p.Namespace
	if old := c.sockets[nsp]; old != nil {
		// The client re-connects a namespace it already holds (it lost track
		// of the old socket): replace it, as socket.io does.
		c.dropSocket(old, "client namespace disconnect")
	}
	if len(c.sockets) >= maxNamespaces {
		c.refuse(nsp, &ConnectError{Message: "Too many namespaces"})
		return
	}
	data, err := c.authorize(nsp, p.Data)
	if err != nil {
		c.refuse(nsp, err)
		return
	}
	s := newSocket(c, nsp, data)
	// The id is URL-safe base64, so it needs no JSON escaping.
	reply := json.RawMessage(`{"sid":"` + s.id + `"}`)
	if c.sendMessage(SocketPacket{Type: SocketConnect, Namespace: nsp, Data: reply}) != nil {
		return
	}
	c.sockets[nsp] = s
	c.admit() // no longer bounded as pending
	c.log.Debug("socketio: socket connected", logKeySocket, s.id, logKeyNamespace, nsp)
	if on := c.srv.opts.OnConnect; on != nil {
		c.call("OnConnect", func() { on(s) })
	}
}

func (c *conn) authorize(nsp string, auth json.RawMessage) (data any, err error) {
	authorize := c.srv.opts.Authorize
	if authorize == nil {
		if nsp != "/" {
			return nil, ErrInvalidNamespace
		}
		return nil, nil
	}
	if !c.call("Authorize", func() { data, err = authorize(c.handshake, nsp, auth) }) {
		return nil, errors.New("socketio: Authorize panicked")
	}
	return data, err
}

// refuse sends CONNECT_ERROR {"message", "data"} with the error's public face.
func (c *conn) refuse(nsp string, err error) {
	var body struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}
	var ce *ConnectError
	switch {
	case errors.As(err, &ce):
		body.Message, body.Data = ce.Message, ce.Data
	case errors.Is(err, ErrInvalidNamespace):
		body.Message = "Invalid namespace"
	default:
		body.Message = "Not authorized"
	}
	c.log.Debug("socketio: namespace refused", logKeyNamespace, nsp, logKeyErr, err)
	data, merr := json.Marshal(body)
	if merr != nil { // unencodable Data: keep the message
		body.Data = nil
		data, _ = json.Marshal(body)
	}
	_ = c.sendMessage(SocketPacket{Type: SocketConnectError, Namespace: nsp, Data: data})
}

// handleEvent runs the handler of a client event. Events for a namespace
// the client has not joined, or without a handler, are dropped.
func (c *conn) handleEvent(p SocketPacket) {
	s := c.sockets[p.Namespace]
	if s == nil || s.isClosed() {
		return
	}
	name, args, err := splitEvent(p.Data)
	if err != nil { // DecodeSocketPacket checked this already
		c.protocolError(err)
		return
	}
	h := s.handler(name)
	if h == nil {
		c.log.Debug("socketio: no handler", logKeyNamespace, s.nsp, logKeyEvent, name)
		return
	}
	ack := s.ackFunc(p)
	c.call("handler "+name, func() { h(args, ack) })
}

// handleAck delivers the client's answer to EmitWithAck. Unknown ids are
// dropped: the socket may have been replaced meanwhile.
func (c *conn) handleAck(p SocketPacket) {
	s := c.sockets[p.Namespace]
	if s == nil || !p.HasID {
		return
	}
	cb := s.takeAck(p.ID)
	if cb == nil {
		return
	}
	var args []json.RawMessage
	if err := json.Unmarshal(p.Data, &args); err != nil {
		c.protocolError(err)
		return
	}
	c.call("ack callback", func() { cb(args, nil) })
}
