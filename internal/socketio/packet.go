package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"unicode/utf8"
)

// SocketType is the type of a Socket.IO packet, sent as one ASCII digit.
type SocketType byte

// Socket.IO v5 packet types.
const (
	SocketConnect      SocketType = 0
	SocketDisconnect   SocketType = 1
	SocketEvent        SocketType = 2
	SocketAck          SocketType = 3
	SocketConnectError SocketType = 4
	SocketBinaryEvent  SocketType = 5 // not supported: rejected by the codec
	SocketBinaryAck    SocketType = 6 // not supported: rejected by the codec
)

// Limits that keep a decoded packet cheap to hold and safe to echo back.
const (
	// maxNamespaceLen bounds a namespace name; real ones are short ids.
	maxNamespaceLen = 256
	// maxAckID is JavaScript's Number.MAX_SAFE_INTEGER: larger ids would not
	// survive a round trip through the JS client.
	maxAckID = 1<<53 - 1
)

// SocketPacket is one Socket.IO packet.
//
// Namespace is "/" for the main namespace. ID is the acknowledgement id,
// meaningful only when HasID is set (client ids start at 0). Data is the
// JSON payload, nil when absent.
type SocketPacket struct {
	Type      SocketType
	Namespace string
	HasID     bool
	ID        uint64
	Data      json.RawMessage
}

// ErrBinaryUnsupported reports a BINARY_EVENT or BINARY_ACK packet: this
// implementation carries JSON payloads without binary attachments only.
var ErrBinaryUnsupported = errors.New("socketio: binary packets are not supported (send JSON without binary data)")

var (
	errSocketType = errors.New("socketio: unknown socket packet type")
	errNamespace  = errors.New("socketio: invalid namespace")
	errAckID      = errors.New("socketio: invalid acknowledgement id")
	errPayload    = errors.New("socketio: invalid payload for packet type")
)

// reservedEvents may not be used as event names: the JavaScript client
// gives them a meaning of their own and rejects a packet that carries one.
var reservedEvents = []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}

// EncodeSocketPacket encodes p in the default socket.io-parser format:
// <type>[<namespace>,][<ack id>][<JSON payload>].
func EncodeSocketPacket(p SocketPacket) ([]byte, error) {
	if p.Type == SocketBinaryEvent || p.Type == SocketBinaryAck {
		return nil, ErrBinaryUnsupported
	}
	if p.Type > SocketBinaryAck {
		return nil, errSocketType
	}
	if p.Namespace != "" && !validNamespace(p.Namespace) {
		return nil, errNamespace
	}
	if p.HasID && (p.ID > maxAckID || !takesAckID(p.Type)) || p.Type == SocketAck && !p.HasID {
		return nil, errAckID
	}
	if err := checkPayload(p.Type, p.Data); err != nil {
		return nil, err
	}
	return appendSocketPacket(nil, p), nil
}

// appendSocketPacket appends the wire form of p without validation; the
// server uses it for packets it built itself.
func appendSocketPacket(dst []byte, p SocketPacket) []byte {
	dst = append(dst, '0'+byte(p.Type))
	if p.Namespace != "" && p.Namespace != "/" {
		dst = append(append(dst, p.Namespace...), ',')
	}
	if p.HasID {
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}

// DecodeSocketPacket decodes one Socket.IO packet (the data of an Engine.IO
// message packet). It checks the payload shape for the packet type the way
// socket.io-parser does. The returned Data aliases b.
func DecodeSocketPacket(b []byte) (SocketPacket, error) {
	if len(b) == 0 || b[0] < '0' || b[0] > '0'+byte(SocketBinaryAck) {
		return SocketPacket{}, errSocketType
	}
	p := SocketPacket{Type: SocketType(b[0] - '0'), Namespace: "/"}
	if p.Type == SocketBinaryEvent || p.Type == SocketBinaryAck {
		return SocketPacket{}, ErrBinaryUnsupported
	}
	rest := b[1:]
	if len(rest) > 0 && rest[0] == '/' {
		// The namespace runs to the first comma, or to the end of the packet.
		nsp, after, _ := bytes.Cut(rest, []byte{','})
		if !validNamespace(string(nsp)) {
			return SocketPacket{}, errNamespace
		}
		p.Namespace, rest = string(nsp), after
	}
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits > 0 {
		id, err := strconv.ParseUint(string(rest[:digits]), 10, 64)
		if err != nil || id > maxAckID || !takesAckID(p.Type) {
			return SocketPacket{}, errAckID
		}
		p.HasID, p.ID, rest = true, id, rest[digits:]
	}
	if p.Type == SocketAck && !p.HasID {
		return SocketPacket{}, errAckID
	}
	if len(rest) > 0 {
		p.Data = rest
	}
	if err := checkPayload(p.Type, p.Data); err != nil {
		return SocketPacket{}, err
	}
	return p, nil
}

func takesAckID(t SocketType) bool { return t == SocketEvent || t == SocketAck }

// validNamespace reports whether nsp can be written between the type digit
// and the comma: it starts with "/", has no comma and is short UTF-8.
func validNamespace(nsp string) bool {
	return len(nsp) > 0 && nsp[0] == '/' && len(nsp) <= maxNamespaceLen &&
		!bytes.ContainsRune([]byte(nsp), ',') && utf8.ValidString(nsp)
}

// checkPayload enforces the payload shape of each packet type:
// CONNECT an optional object, DISCONNECT nothing, EVENT a non-empty array
// starting with a non-reserved event name, ACK an array, CONNECT_ERROR an
// object or a string. Leading whitespace is refused: JSON.stringify never
// writes it, and the checks look at the first byte.
func checkPayload(t SocketType, data json.RawMessage) error {
	if len(data) == 0 {
		if t == SocketConnect || t == SocketDisconnect {
			return nil
		}
		return errPayload
	}
	if t == SocketDisconnect || !json.Valid(data) {
		return errPayload
	}
	var ok bool
	switch t {
	case SocketConnect:
		ok = data[0] == '{'
	case SocketConnectError:
		ok = data[0] == '{' || data[0] == '"'
	case SocketAck:
		ok = data[0] == '['
	case SocketEvent:
		_, _, err := splitEvent(data)
		ok = data[0] == '[' && err == nil
	}
	if !ok {
		return errPayload
	}
	return nil
}

// splitEvent splits an EVENT payload into its name and arguments.
func splitEvent(data json.RawMessage) (string, []json.RawMessage, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil || len(items) == 0 {
		return "", nil, errPayload
	}
	var name string
	if items[0][0] != '"' || json.Unmarshal(items[0], &name) != nil || slices.Contains(reservedEvents, name) {
		return "", nil, errPayload
	}
	return name, items[1:], nil
}
