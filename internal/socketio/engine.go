package socketio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"unicode/utf8"
)

// EngineType is the type of an Engine.IO packet, sent as one ASCII digit.
type EngineType byte

// Engine.IO v4 packet types.
const (
	EngineOpen    EngineType = 0 // server → client, handshake data
	EngineClose   EngineType = 1 // either side: close the session
	EnginePing    EngineType = 2 // server → client heartbeat, or client "probe" on upgrade
	EnginePong    EngineType = 3 // answer to a ping
	EngineMessage EngineType = 4 // carries one Socket.IO packet
	EngineUpgrade EngineType = 5 // client → server: switch to the probed transport
	EngineNoop    EngineType = 6 // server → client: ends a pending poll during an upgrade
)

// recordSeparator joins packets in an HTTP long-polling payload. The protocol
// assumes it never appears in text data; JSON encoders escape it (\u001e).
const recordSeparator = 0x1e

// EnginePacket is one Engine.IO packet. Binary is true only for a message
// packet whose data arrived as binary (a binary WebSocket frame, or a
// base64 "b…" item of a polling payload).
type EnginePacket struct {
	Type   EngineType
	Data   []byte
	Binary bool
}

var (
	errEmptyPacket   = errors.New("socketio: empty engine packet")
	errEngineType    = errors.New("socketio: unknown engine packet type")
	errNotUTF8       = errors.New("socketio: text packet is not valid UTF-8")
	errBinaryControl = errors.New("socketio: binary data is only allowed in message packets")
	errSeparator     = errors.New("socketio: text packet contains the record separator")
)

// EncodeEnginePacket encodes p as one WebSocket frame: a text frame holds
// "<type digit><data>", a binary frame holds the raw data of a message packet.
func EncodeEnginePacket(p EnginePacket) ([]byte, error) {
	if p.Type > EngineNoop {
		return nil, errEngineType
	}
	if p.Binary {
		if p.Type != EngineMessage {
			return nil, errBinaryControl
		}
		return bytes.Clone(p.Data), nil
	}
	if !utf8.Valid(p.Data) {
		return nil, errNotUTF8
	}
	return appendText(make([]byte, 0, 1+len(p.Data)), p), nil
}

// appendText appends the text form of p without validation.
func appendText(dst []byte, p EnginePacket) []byte {
	return append(append(dst, '0'+byte(p.Type)), p.Data...)
}

// DecodeEnginePacket decodes one WebSocket frame. binary tells whether the
// frame was a binary frame, which Engine.IO v4 maps to a message packet.
// The returned Data aliases frame.
func DecodeEnginePacket(frame []byte, binary bool) (EnginePacket, error) {
	if binary {
		return EnginePacket{Type: EngineMessage, Data: frame, Binary: true}, nil
	}
	if len(frame) == 0 {
		return EnginePacket{}, errEmptyPacket
	}
	if frame[0] < '0' || frame[0] > '0'+byte(EngineNoop) {
		return EnginePacket{}, fmt.Errorf("%w %q", errEngineType, frame[0])
	}
	if !utf8.Valid(frame[1:]) {
		return EnginePacket{}, errNotUTF8
	}
	return EnginePacket{Type: EngineType(frame[0] - '0'), Data: frame[1:]}, nil
}

// EncodePayload encodes packets as an HTTP long-polling body: the packets'
// text forms joined by the record separator, binary data as "b<base64>".
func EncodePayload(packets []EnginePacket) ([]byte, error) {
	var out []byte
	for i, p := range packets {
		if i > 0 {
			out = append(out, recordSeparator)
		}
		if p.Binary {
			if p.Type != EngineMessage {
				return nil, errBinaryControl
			}
			out = append(out, 'b')
			out = base64.StdEncoding.AppendEncode(out, p.Data)
			continue
		}
		if p.Type > EngineNoop {
			return nil, errEngineType
		}
		if bytes.IndexByte(p.Data, recordSeparator) >= 0 {
			return nil, errSeparator
		}
		if !utf8.Valid(p.Data) {
			return nil, errNotUTF8
		}
		out = appendText(out, p)
	}
	return out, nil
}

// DecodePayload decodes an HTTP long-polling body. An empty body or an empty
// item between separators is an error. Text Data aliases body.
func DecodePayload(body []byte) ([]EnginePacket, error) {
	var packets []EnginePacket
	for p, err := range payloadPackets(body) {
		if err != nil {
			return nil, err
		}
		packets = append(packets, p)
	}
	return packets, nil
}

// payloadPackets yields the packets of a polling body one by one, so the
// server can validate and deliver a large payload without building a slice.
// It stops after the first error.
func payloadPackets(body []byte) iter.Seq2[EnginePacket, error] {
	return func(yield func(EnginePacket, error) bool) {
		if len(body) == 0 {
			yield(EnginePacket{}, errEmptyPacket)
			return
		}
		for item := range bytes.SplitSeq(body, []byte{recordSeparator}) {
			p, err := decodePayloadItem(item)
			if !yield(p, err) || err != nil {
				return
			}
		}
	}
}

func decodePayloadItem(item []byte) (EnginePacket, error) {
	if len(item) > 0 && item[0] == 'b' {
		data, err := base64.StdEncoding.AppendDecode(nil, item[1:])
		if err != nil {
			return EnginePacket{}, fmt.Errorf("socketio: bad base64 in payload: %w", err)
		}
		return EnginePacket{Type: EngineMessage, Data: data, Binary: true}, nil
	}
	return DecodeEnginePacket(item, false)
}
