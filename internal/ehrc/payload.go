package ehrc

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// maxPayload bounds one event payload, as the hub bounds a native frame.
const maxPayload = 64 << 10

// payload is the one argument of an EHRC event: a JSON object, relayed
// unchanged, whose few fields the server reads are checked here. Keys are
// exact and the last duplicate wins, as in JavaScript.
type payload struct {
	raw    json.RawMessage
	fields map[string]json.RawMessage
}

// parsePayload checks raw (nil when the event had no argument) and copies
// it, so the caller's buffer may be reused.
func parsePayload(raw json.RawMessage) (payload, error) {
	if len(raw) > maxPayload {
		return payload{}, errTooBig
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return payload{}, errNoPayload
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return payload{}, errNoPayload
	}
	return payload{raw: bytes.Clone(raw), fields: fields}, nil
}

// str returns a string field; "" when absent or null.
func (p payload) str(key string) (string, error) {
	v, ok := p.fields[key]
	if !ok || string(v) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", notString(key)
	}
	return s, nil
}

// need returns a string field that must be present and not empty.
func (p payload) need(key string) (string, error) {
	s, err := p.str(key)
	if err == nil && s == "" {
		err = missing(key)
	}
	return s, err
}

// sameAs checks an optional string field: absent, or want; else wrong.
func (p payload) sameAs(key, want string, wrong *Error) error {
	s, err := p.str(key)
	switch {
	case err != nil:
		return err
	case s != "" && s != want:
		return wrong
	}
	return nil
}

// truthy reports whether a field is truthy in JavaScript's sense, as EHRC
// tests `if (data.init)`.
func (p payload) truthy(key string) bool {
	v := p.fields[key]
	switch {
	case len(v) == 0:
		return false
	case v[0] == '"':
		return len(v) > 2
	case v[0] == '{' || v[0] == '[':
		return true
	case string(v) == "true":
		return true
	case string(v) == "false" || string(v) == "null":
		return false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return err == nil && f != 0
}

// object encodes a small server-made payload such as {"patientID": id}.
func object(kv ...string) json.RawMessage {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(m) // strings only: cannot fail
	return b
}
