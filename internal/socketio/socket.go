package socketio

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Handler handles one client event. args are the event's arguments as raw
// JSON, which the handler may keep (nothing reuses them). ack answers the client's acknowledgement request; it is never nil,
// does nothing when the client asked for no acknowledgement, may be called
// later from any goroutine, and only once.
type Handler func(args []json.RawMessage, ack AckFunc)

// AckFunc answers an acknowledgement request with args, each encoded with
// encoding/json.
type AckFunc func(args ...any) error

// AckCallback receives the client's answer to EmitWithAck, or
// ErrDisconnected if the socket went away first.
type AckCallback func(args []json.RawMessage, err error)

// Errors returned by Socket methods.
var (
	ErrDisconnected  = errors.New("socketio: socket disconnected")
	ErrSlowClient    = errors.New("socketio: send queue full, client disconnected")
	ErrTooManyAcks   = errors.New("socketio: too many acknowledgements pending")
	ErrReservedEvent = errors.New("socketio: reserved or empty event name")
	errAckSent       = errors.New("socketio: acknowledgement already sent")
)

// Socket is a client's connection to one namespace.
type Socket struct {
	conn *conn
	id   string
	nsp  string
	data any

	mu           sync.Mutex
	closed       bool // no more packets go out
	dropped      bool // the loop has run the disconnect callbacks
	handlers     map[string]Handler
	onDisconnect func(reason string)
	nextAck      uint64
	acks         map[uint64]AckCallback
}

func newSocket(c *conn, nsp string, data any) *Socket {
	return &Socket{conn: c, id: randomID(), nsp: nsp, data: data,
		handlers: make(map[string]Handler), acks: make(map[uint64]AckCallback)}
}

// ID is the socket's public id (20 characters), the one the client sees as
// socket.id. It is not the Engine.IO session id.
func (s *Socket) ID() string { return s.id }

// Namespace is the namespace the socket joined, such as "/" or "/doc42".
func (s *Socket) Namespace() string { return s.nsp }

// Data is the value Options.Authorize returned for this socket.
func (s *Socket) Data() any { return s.data }

// On sets the handler of event, replacing any previous one. Events without
// a handler are dropped. Set handlers in Options.OnConnect so that no event
// arrives before its handler.
func (s *Socket) On(event string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dropped { // after the end there is nothing left to handle
		s.handlers[event] = h
	}
}

// OnDisconnect sets the function called once when the socket ends. reason
// is one of socket.io's: "client namespace disconnect", "server namespace
// disconnect", "transport close", "transport error", "ping timeout",
// "parse error", "server shutting down", or "slow client" or
// "callback panic".
func (s *Socket) OnDisconnect(fn func(reason string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onDisconnect = fn
}

// Emit sends event with args (each encoded with encoding/json) to the
// client. It never blocks: if the client's queue is full the client is
// disconnected and ErrSlowClient returned.
func (s *Socket) Emit(event string, args ...any) error {
	return s.emit(event, nil, args)
}

// EmitWithAck is Emit with an acknowledgement request: cb runs on the
// connection's goroutine with the client's answer, or with ErrDisconnected
// if the socket ends first. cb is not called when EmitWithAck returns an
// error. A client that never answers holds one of maxPendingAcks slots.
func (s *Socket) EmitWithAck(event string, cb AckCallback, args ...any) error {
	if cb == nil {
		return errors.New("socketio: nil ack callback")
	}
	return s.emit(event, cb, args)
}

func (s *Socket) emit(event string, cb AckCallback, args []any) error {
	if event == "" || slices.Contains(reservedEvents, event) {
		return ErrReservedEvent
	}
	data, err := encodeArray(event, args)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrDisconnected
	}
	p := SocketPacket{Type: SocketEvent, Namespace: s.nsp, Data: data}
	if cb != nil {
		if len(s.acks) >= maxPendingAcks {
			return ErrTooManyAcks
		}
		p.HasID, p.ID = true, s.nextAck
		s.nextAck++
	}
	if err := s.conn.sendMessage(p); err != nil {
		return err
	}
	if cb != nil {
		s.acks[p.ID] = cb
	}
	return nil
}

// Disconnect removes the socket from its namespace: the client gets a
// DISCONNECT packet (socket.io-client reports "io server disconnect" and
// does not reconnect) and OnDisconnect runs with "server namespace
// disconnect". The underlying connection stays up for other namespaces.
func (s *Socket) Disconnect() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	_ = s.conn.sendMessage(SocketPacket{Type: SocketDisconnect, Namespace: s.nsp})
	s.mu.Unlock()

	c := s.conn
	c.mu.Lock()
	c.removals = append(c.removals, s)
	c.poke()
	c.mu.Unlock()
}

func (s *Socket) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Socket) handler(event string) Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handlers[event]
}

// takeAck removes and returns the callback waiting for ack id.
func (s *Socket) takeAck(id uint64) AckCallback {
	s.mu.Lock()
	defer s.mu.Unlock()
	cb := s.acks[id]
	delete(s.acks, id)
	return cb
}

// drop closes the socket for good and hands the pending callbacks to the
// loop; first is false if it was already dropped.
func (s *Socket) drop() (acks map[uint64]AckCallback, onDisconnect func(string), first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return nil, nil, false
	}
	s.closed, s.dropped = true, true
	acks, onDisconnect = s.acks, s.onDisconnect
	s.acks, s.onDisconnect, s.handlers = nil, nil, nil
	return acks, onDisconnect, true
}

// ackFunc returns the AckFunc for an incoming event packet.
func (s *Socket) ackFunc(p SocketPacket) AckFunc {
	if !p.HasID {
		return func(...any) error { return nil }
	}
	var sent atomic.Bool
	return func(args ...any) error {
		data, err := encodeArray("", args)
		if err != nil {
			return err
		}
		if sent.Swap(true) {
			return errAckSent
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return ErrDisconnected
		}
		return s.conn.sendMessage(SocketPacket{Type: SocketAck, Namespace: s.nsp, HasID: true, ID: p.ID, Data: data})
	}
}

// encodeArray encodes [event, args...] (or [args...] when event is empty)
// as a JSON array.
func encodeArray(event string, args []any) (json.RawMessage, error) {
	out := []byte{'['}
	if event != "" {
		name, _ := json.Marshal(event) // a string always marshals
		out = append(out, name...)
	}
	for i, arg := range args {
		b, err := json.Marshal(arg)
		if err != nil {
			return nil, fmt.Errorf("socketio: argument %d: %w", i, err)
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	return append(out, ']'), nil
}
