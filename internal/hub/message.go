package hub

import "unicode/utf8"

// msgType is the type of a client message.
type msgType uint8

const (
	typeUnknown msgType = iota
	typeJoin
	typeSignal
	typeMessage
)

// maxDepth bounds the nesting of a message. Real signaling data is a few
// levels deep; the bound keeps a hostile 64 KiB frame of brackets from
// growing the reader's stack.
const maxDepth = 64

// inbound is one decoded client message. Byte fields alias the decoded frame
// unless they held escapes; nil means absent or null.
type inbound struct {
	typ                       msgType
	rawType                   []byte // the type as sent, for a Policy
	to, topic, key, name, uid []byte
	resume                    []byte // a join's resume token
	data                      []byte // raw JSON value, exactly as sent
}

// decode parses one client frame. It is a pure function (fuzzed by
// FuzzDecode): it checks that b is valid UTF-8, a JSON object at most maxDepth
// deep, and that the fields of docs/protocol.md that it knows hold strings
// (or null, which counts as absent). Unknown fields are validated and
// skipped; with duplicate fields the last wins. It allocates only for fields
// written with escapes, so the relay path stays allocation-free.
func decode(b []byte) (inbound, *clientError) {
	var m inbound
	if !utf8.Valid(b) {
		return m, errNotUTF8
	}
	s := scanner{b: b}
	s.space()
	if !s.consume('{') {
		return m, errNotObject
	}
	var typ []byte
	hasType := false
	if err := s.members(func(key []byte, start int) *clientError {
		var err *clientError
		switch string(key) {
		case "type":
			typ, err = s.stringOrNull()
			hasType = typ != nil
		case "to":
			m.to, err = s.stringOrNull()
		case "topic":
			m.topic, err = s.stringOrNull()
		case "key":
			m.key, err = s.stringOrNull()
		case "name":
			m.name, err = s.stringOrNull()
		case "uuid":
			m.uid, err = s.stringOrNull()
		case "resume":
			m.resume, err = s.stringOrNull()
		case "data":
			err = s.value(1)
			m.data = b[start:s.i]
		default:
			err = s.value(1)
		}
		return err
	}); err != nil {
		return inbound{}, err
	}
	s.space()
	if s.i != len(b) {
		return inbound{}, errNotObject
	}
	if !hasType {
		return inbound{}, errNoType
	}
	m.typ, m.rawType = typeOf(typ), typ
	return m, nil
}

func typeOf(t []byte) msgType {
	switch string(t) {
	case "join":
		return typeJoin
	case "signal":
		return typeSignal
	case "message":
		return typeMessage
	}
	return typeUnknown
}
