package hub

import (
	"testing"
)

// pair joins a user and a participant and drains the peer-joined.
func pair(t *testing.T, e *env) (user, part *client) {
	t.Helper()
	user, _ = e.join(t, keyUser, "u1", "Doc")
	part, _ = e.join(t, keyParticipant, "p1", "Pat")
	user.expect("peer-joined")
	return user, part
}

func TestSignal(t *testing.T) {
	e := newEnv(t, Config{})
	a, b := pair(t, e)
	// data is relayed byte for byte: spacing, escapes and key order kept.
	const data = `{ "sdp" : {"type":"offer","sdp":"v=0\r\n\u00e9"}, "n": 1.50e3 }`
	for _, tt := range []struct {
		name     string
		from, to *client
	}{{"a to b", a, b}, {"b to a", b, a}} {
		t.Run(tt.name, func(t *testing.T) {
			tt.from.sendRaw(`{"type":"signal","to":"` + tt.to.id + `","data":` + data + `}`)
			got := string(tt.to.readRaw())
			want := `{"type":"signal","from":"` + tt.from.id + `","data":` + data + `}`
			if got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
	t.Run("no data is null", func(t *testing.T) {
		a.sendRaw(`{"type":"signal","to":"` + b.id + `"}`)
		if got, want := string(b.readRaw()), `{"type":"signal","from":"`+a.id+`","data":null}`; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}

func TestRelayErrors(t *testing.T) {
	e := newEnv(t, Config{})
	a, b := pair(t, e)
	for name, tt := range map[string]struct {
		msg, code string
	}{
		"signal unknown peer":  {`{"type":"signal","to":"nobody","data":{}}`, "unknown-peer"},
		"signal no to":         {`{"type":"signal","data":{}}`, "missing-field"},
		"signal empty to":      {`{"type":"signal","to":"","data":{}}`, "missing-field"},
		"message unknown peer": {`{"type":"message","to":"nobody","topic":"chat"}`, "unknown-peer"},
		"message no topic":     {`{"type":"message","data":{}}`, "missing-field"},
		"unknown topic":        {`{"type":"message","topic":"gossip"}`, "unknown-topic"},
		"bare x- topic":        {`{"type":"message","topic":"x-"}`, "unknown-topic"},
		"unlisted control":     {`{"type":"message","topic":"control.reboot"}`, "unknown-topic"},
		"control from participant": {
			`{"type":"message","to":"` + a.id + `","topic":"control.mute","data":{"audio":false}}`, "forbidden"},
		"unknown type":  {`{"type":"offer"}`, "unknown-type"},
		"empty type":    {`{"type":""}`, "unknown-type"},
		"no type":       {`{"to":"x"}`, "bad-message"},
		"null type":     {`{"type":null}`, "bad-message"},
		"type number":   {`{"type":1}`, "bad-message"},
		"to number":     {`{"type":"signal","to":5}`, "bad-message"},
		"topic object":  {`{"type":"message","topic":{}}`, "bad-message"},
		"array":         {`[{"type":"signal"}]`, "bad-message"},
		"string":        {`"signal"`, "bad-message"},
		"number":        {`42`, "bad-message"},
		"empty":         {``, "bad-message"},
		"truncated":     {`{"type":"signal","to":"`, "bad-message"},
		"trailing data": {`{"type":"signal"} {}`, "bad-message"},
		"bad data":      {`{"type":"signal","to":"x","data":{'a':1}}`, "bad-message"},
		"invalid utf-8": {"{\"type\":\"message\",\"topic\":\"chat\",\"data\":\"\xff\"}", "bad-message"},
	} {
		t.Run(name, func(t *testing.T) {
			b.sendRaw(tt.msg)
			b.expectError(tt.code)
			b.roundTrip() // still open, and nothing else was sent to b
		})
	}
	// Nothing above reached a: its next message is this one.
	b.send(map[string]any{"type": "message", "to": a.id, "topic": "chat", "data": "after"})
	if m := a.expect("message"); m["data"] != "after" {
		t.Fatalf("a got %v, want the chat sent after the refused messages", m)
	}
}

func TestMessage(t *testing.T) {
	e := newEnv(t, Config{})
	u, _ := e.join(t, keyUser, "u1", "Doc")
	p1, _ := e.join(t, keyParticipant, "p1", "Pat")
	u.expect("peer-joined")
	d, _ := e.join(t, keyDevice, "d1", "Cam")
	u.expect("peer-joined")
	p1.expect("peer-joined")
	all := []*client{u, p1, d}

	for name, tt := range map[string]struct {
		from  *client
		to    *client // nil: broadcast
		topic string
	}{
		"chat broadcast":          {p1, nil, "chat"},
		"status broadcast":        {d, nil, "status"},
		"x- topic from device":    {d, nil, "x-imu"},
		"odd x- topic":            {p1, nil, "x-\"quoted\"\n\u2028"},
		"directed chat":           {p1, u, "chat"},
		"control from user":       {u, p1, "control.mute"},
		"control broadcast":       {u, nil, "control.primary-view"},
		"every control topic (1)": {u, d, "control.camera"},
		"every control topic (2)": {u, d, "control.timer"},
		"every control topic (3)": {u, d, "control.counter"},
		"every control topic (4)": {u, d, "control.config"},
	} {
		t.Run(name, func(t *testing.T) {
			msg := map[string]any{"type": "message", "topic": tt.topic, "data": map[string]any{"n": name}}
			if tt.to != nil {
				msg["to"] = tt.to.id
			}
			tt.from.send(msg)
			for _, c := range all {
				if c == tt.from || tt.to != nil && c != tt.to {
					continue
				}
				m := c.expect("message")
				if m["from"] != tt.from.id || m["topic"] != tt.topic || m["data"].(map[string]any)["n"] != name {
					t.Fatalf("got %v", m)
				}
			}
			for _, c := range all {
				c.roundTrip() // nobody got anything else (sender included)
			}
		})
	}
}

func TestHubsIsolated(t *testing.T) {
	e1, e2 := newEnv(t, Config{}), newEnv(t, Config{})
	a1, b1 := pair(t, e1)
	a2, b2 := pair(t, e2)
	// An id from the other session is unknown here.
	a1.send(map[string]any{"type": "signal", "to": b2.id, "data": 1})
	a1.expectError("unknown-peer")
	a1.send(map[string]any{"type": "message", "topic": "chat", "data": "s1"})
	if m := b1.expect("message"); m["data"] != "s1" {
		t.Fatalf("b1 got %v", m)
	}
	for _, c := range []*client{a2, b2} {
		c.roundTrip() // their next message is their own, not s1
	}
}
