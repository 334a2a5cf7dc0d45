package hub

import (
	"errors"

	"github.com/coder/websocket"
)

// Close codes of docs/protocol.md, for callers and Go clients.
const (
	CloseUnauthorized  websocket.StatusCode = 4001
	CloseRemoved       websocket.StatusCode = 4002
	CloseSessionEnded  websocket.StatusCode = 4003
	CloseServerRestart websocket.StatusCode = 4004
	CloseReplaced      websocket.StatusCode = 4005
	CloseTooSlow       websocket.StatusCode = 4008
	CloseProtocol      websocket.StatusCode = 4009
	CloseHeartbeat     websocket.StatusCode = 4010
	CloseRateLimited   websocket.StatusCode = 4029
	CloseTryAgainLater websocket.StatusCode = 1013 // RFC 6455's registry: try again later
)

// ErrClosed is returned by [Hub.Serve] when the hub was already closed.
var ErrClosed = errors.New("hub: closed")

// clientError is a refusal with a public face (house style convention 7): Code and
// Message are sent to the client as {"type":"error",…} and never change for a
// given situation; internal detail only goes to the logs. Close is the close
// code that follows, or 0 when the connection stays open.
type clientError struct {
	Code    string
	Message string
	Close   websocket.StatusCode
	frame   []byte // the encoded error message, built once
}

func (e *clientError) Error() string { return e.Code + ": " + e.Message }

func newError(code, msg string, close websocket.StatusCode) *clientError {
	e := &clientError{Code: code, Message: msg, Close: close}
	e.frame = appendError(nil, code, msg)
	return e
}

// The errors a client can receive. Their texts are part of docs/protocol.md.
// They are read-only after package initialisation.
var (
	errNotUTF8      = newError("bad-message", "message is not valid UTF-8", 0)
	errNotObject    = newError("bad-message", "message is not a JSON object", 0)
	errTooDeep      = newError("bad-message", "message is nested too deeply", 0)
	errNoType       = newError("bad-message", "message has no type", 0)
	errFieldType    = newError("bad-message", "a field has the wrong type", 0)
	errUnknownType  = newError("unknown-type", "unknown message type", 0)
	errNoTo         = newError("missing-field", "to is required", 0)
	errNoTopic      = newError("missing-field", "topic is required", 0)
	errNoKey        = newError("missing-field", "key is required", 0)
	errUnknownPeer  = newError("unknown-peer", "no such peer in this session", 0)
	errUnknownTopic = newError("unknown-topic", "unknown topic", 0)
	errForbidden    = newError("forbidden", "your role may not send this topic", 0)
	errJoined       = newError("already-joined", "already joined", 0)
	errNotJoined    = newError("protocol", "join first", CloseProtocol)
	errJoinTimeout  = newError("protocol", "no join received in time", CloseProtocol)
	errUnauthorized = newError("unauthorized", "invalid key", CloseUnauthorized)
	errSessionEnded = newError("session-ended", "the session is not running", CloseSessionEnded)
	errRateLimited  = newError("rate-limited", "too many messages", CloseRateLimited)
	errBusy         = newError("busy", "too many connections waiting to join, try again later", CloseTryAgainLater)
)

// Notices sent just before the hub closes a connection on purpose.
var (
	noticeRemoved        = []byte(`{"type":"removed"}`)
	noticeSessionEnded   = []byte(`{"type":"session-ended"}`)
	noticeServerShutdown = []byte(`{"type":"server-shutdown"}`)
	noticeReplaced       = []byte(`{"type":"replaced"}`)
)

// ending is how and why the hub ends one connection: the last frame sent
// (nil for none), the close code and the short close reason.
type ending struct {
	notice []byte
	code   websocket.StatusCode
	reason string
	fault  bool // counted in Counters.Errors and returned by Serve
	client bool // the client left or the connection broke: Serve reports the read error
}

func endWithError(e *clientError) ending {
	return ending{notice: e.frame, code: e.Close, reason: e.Code, fault: true}
}

// endFor maps a close reason of the whole hub to what each client is told.
// Refusing a new connection after Close uses the same mapping, except that a
// stopped session answers with the session-ended error the protocol lists.
func endFor(r CloseReason, refusing bool) ending {
	switch {
	case r == ServerShutdown:
		return ending{notice: noticeServerShutdown, code: CloseServerRestart, reason: "server shutdown"}
	case refusing:
		return ending{notice: errSessionEnded.frame, code: CloseSessionEnded, reason: "session ended"}
	default:
		return ending{notice: noticeSessionEnded, code: CloseSessionEnded, reason: "session ended"}
	}
}

var (
	endRemoved   = ending{notice: noticeRemoved, code: CloseRemoved, reason: "removed"}
	endReplaced  = ending{notice: noticeReplaced, code: CloseReplaced, reason: "replaced"}
	endTooSlow   = ending{code: CloseTooSlow, reason: "too slow", fault: true}
	endHeartbeat = ending{code: CloseHeartbeat, reason: "heartbeat timeout", fault: true}
	endBinary    = ending{code: websocket.StatusUnsupportedData, reason: "binary frame", fault: true}
	endGoingAway = ending{code: websocket.StatusGoingAway, reason: "going away"}
	endTooBig    = ending{code: websocket.StatusMessageTooBig, reason: "message too big", fault: true}
	endReadDone  = ending{code: websocket.StatusNormalClosure, reason: "client left", client: true}
)

// err is what Serve returns for an ending: nil unless it was a fault. It is
// meant for the caller's logs; websocket.CloseStatus reads its close code.
func (e *ending) err() error {
	switch {
	case e == nil || !e.fault:
		return nil
	case e.code != 0:
		return websocket.CloseError{Code: e.code, Reason: e.reason}
	}
	return errors.New("hub: " + e.reason)
}
