package hub

import (
	"encoding/json"
	"errors"

	"github.com/coder/websocket"
)

// Policy replaces the session rules of docs/protocol.md with other room
// rules on the same machinery (admission, one reader, queued writes,
// heartbeat, close codes). The consultation flow of internal/ehrc is one.
//
// With a Policy the hub is private: welcome lists no peers and nobody is
// told peer-joined or peer-left; every message of a joined peer (signal,
// message and a later join included) goes to Handle, and the Policy decides
// who gets what through [Peer.Send].
//
// The hub calls the Policy from the peer's own Serve goroutine and never
// with a hub lock held, so a Policy may take its own lock and call Send,
// Remove and Replace under it. For a given peer, Joined comes first, then
// its messages in order, then Left once, after its last message.
type Policy interface {
	// Joined: the peer is admitted. Its welcome is queued but not sent
	// until Joined returns, so the client cannot act on it before the
	// Policy knows the peer; frames sent to it in Joined follow the welcome.
	Joined(p Peer)
	// Handle handles one message. data is the raw "data" value (nil when
	// absent), valid only during the call: copy what you keep. A *Refusal
	// is sent to the client as an error message; any other error is logged
	// and the client gets {"type":"error","code":"internal",…}. The
	// connection stays open either way.
	Handle(p Peer, typ string, data json.RawMessage) error
	// Left: the peer's connection has ended; nothing sent to it arrives.
	Left(p Peer)
}

// Refusal is an error with a public face that a Policy returns: the client
// receives {"type":"error","code":Code,"message":Message}.
type Refusal struct {
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

var errInternal = newError("internal", "internal error", 0)

// Peer is a joined connection as a [Policy] sees it. Two Peers are equal
// when they are the same connection.
type Peer struct{ p *peer }

// ID is the peer id of docs/protocol.md (new for every connection).
func (p Peer) ID() string { return p.p.info.ID }

// Info is the peer as admitted: id, name, uuid and role.
func (p Peer) Info() PeerInfo { return p.p.info }

// Addr is the client address the hub counted the connection under for
// its per-address cap: ServeHTTP's rule, or the one given to ServeRequest;
// "" when unknown (Serve, or a loopback request without a forwarded
// address).
func (p Peer) Addr() string { return p.p.addr }

// Send queues a frame, a JSON object the caller encoded. It never blocks;
// a peer whose queue overflows is disconnected with 4008, and frames sent
// to a connection that is ending are dropped.
func (p Peer) Send(frame []byte) {
	p.p.hub.cfg.Counters.MessagesRelayed.Add(1)
	if !p.p.enqueue(frame) {
		p.p.hub.evict([]*peer{p.p})
	}
}

// Remove closes the connection with {"type":"removed"} and 4002.
func (p Peer) Remove() { p.p.shutdown(endRemoved) }

// Replace closes the connection with {"type":"replaced"} and 4005.
func (p Peer) Replace() { p.p.shutdown(endReplaced) }

// Refuse closes the connection with r as an error message and close code
// code: a Policy that cannot take a peer it was handed in Joined (its room
// is full, or gone) says why, instead of the "removed" of [Peer.Remove].
func (p Peer) Refuse(r *Refusal, code websocket.StatusCode) {
	e := newError(r.Code, r.Message, code)
	p.p.shutdown(ending{notice: e.frame, code: code, reason: r.Code})
}

// handlePolicy hands a message of a joined peer to the Policy.
func (p *peer) handlePolicy(m inbound) *clientError {
	err := p.hub.cfg.Policy.Handle(Peer{p}, string(m.rawType), m.data)
	if err == nil {
		return nil
	}
	var r *Refusal
	if errors.As(err, &r) {
		return newError(r.Code, r.Message, 0)
	}
	p.log().Error("policy failed", logKeyErr, err)
	return errInternal
}
