package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecode(t *testing.T) {
	type fields struct {
		typ                        msgType
		to, topic, key, name, uuid string
		data                       string
	}
	for name, tt := range map[string]struct {
		in      string
		want    fields
		wantErr *clientError
	}{
		"join": {in: `{"type":"join","key":"k","name":"Dr T","uuid":"u"}`,
			want: fields{typ: typeJoin, key: "k", name: "Dr T", uuid: "u"}},
		"signal": {in: ` {"type":"signal","to":"p2","data":{"sdp":{"type":"offer"}}} `,
			want: fields{typ: typeSignal, to: "p2", data: `{"sdp":{"type":"offer"}}`}},
		"message": {in: `{"data":[1,-2.5e3,true,false,null,"s"],"topic":"chat","type":"message"}`,
			want: fields{typ: typeMessage, topic: "chat", data: `[1,-2.5e3,true,false,null,"s"]`}},
		"escapes": {in: `{"type":"sig\u006eal","to":"a\"b\\c\/d\u00e9"}`,
			want: fields{typ: typeSignal, to: `a"b\c/dé`}},
		"escaped key": {in: `{"\u0074ype":"join"}`, want: fields{typ: typeJoin}},
		"lone surrogate": {in: `{"type":"join","name":"\ud800"}`,
			want: fields{typ: typeJoin, name: "\ufffd"}},
		"null fields":     {in: `{"type":"signal","to":null,"data":null}`, want: fields{typ: typeSignal, data: "null"}},
		"last one wins":   {in: `{"type":"join","type":"signal"}`, want: fields{typ: typeSignal}},
		"unknown fields":  {in: `{"type":"join","extra":{"a":[{}]},"n":0}`, want: fields{typ: typeJoin}},
		"case sensitive":  {in: `{"type":"join","TO":5}`, want: fields{typ: typeJoin}},
		"unknown type":    {in: `{"type":"Join"}`, want: fields{typ: typeUnknown}},
		"depth 64":        {in: `{"type":"x","data":` + nest(63) + `}`, want: fields{data: nest(63)}},
		"depth 65":        {in: `{"type":"x","data":` + nest(64) + `}`, wantErr: errTooDeep},
		"no type":         {in: `{}`, wantErr: errNoType},
		"type null":       {in: `{"type":null}`, wantErr: errNoType},
		"type number":     {in: `{"type":1}`, wantErr: errFieldType},
		"name array":      {in: `{"type":"join","name":["x"]}`, wantErr: errFieldType},
		"array":           {in: `[]`, wantErr: errNotObject},
		"null":            {in: `null`, wantErr: errNotObject},
		"empty":           {in: ``, wantErr: errNotObject},
		"two objects":     {in: `{"type":"join"}{}`, wantErr: errNotObject},
		"trailing comma":  {in: `{"type":"join",}`, wantErr: errNotObject},
		"single quotes":   {in: `{'type':'join'}`, wantErr: errNotObject},
		"leading zero":    {in: `{"type":"join","data":01}`, wantErr: errNotObject},
		"bare dot":        {in: `{"type":"join","data":1.}`, wantErr: errNotObject},
		"raw newline":     {in: "{\"type\":\"jo\nin\"}", wantErr: errNotObject},
		"bad escape":      {in: `{"type":"join","name":"\x"}`, wantErr: errNotObject},
		"short \\u":       {in: `{"type":"join","name":"\u12"}`, wantErr: errNotObject},
		"invalid utf-8":   {in: "{\"type\":\"join\",\"name\":\"\xc3\"}", wantErr: errNotUTF8},
		"unclosed object": {in: `{"type":"join","data":{"a":1}`, wantErr: errNotObject},
		"nan":             {in: `{"type":"join","data":NaN}`, wantErr: errNotObject},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := decode([]byte(tt.in))
			if err != tt.wantErr {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			got := fields{m.typ, string(m.to), string(m.topic), string(m.key), string(m.name), string(m.uid), string(m.data)}
			if err == nil && got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func nest(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// The relay path must not allocate beyond the outgoing frame.
func TestDecodeAllocs(t *testing.T) {
	in := []byte(`{"type":"message","to":"abcdefghijklmnop","topic":"x-imu","data":{"a":[1,2,{"b":"c"}]}}`)
	if n := testing.AllocsPerRun(100, func() {
		m, err := decode(in)
		if err != nil || topicPolicy(m.topic, RoleUser) != nil {
			t.Fatal("decode failed")
		}
	}); n != 0 {
		t.Fatalf("decode allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { messageFrame("abcdefghijklmnop", []byte("x-imu"), in) }); n != 1 {
		t.Fatalf("messageFrame allocates %v times, want 1", n)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "\x00\x1f\t\n\r", "é👩‍⚕️", "\u2028\u2029", "bad \xff\xfe utf8 \xc3", "<&>"} {
		b := appendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s", s, b)
		}
		if want := jsonRoundTrip(s); back != want {
			t.Fatalf("%q round-trips to %q, want %q", s, back, want)
		}
		if bytes.ContainsAny(b, "\u2028\u2029") {
			t.Fatalf("%q: raw U+2028/U+2029 in %s", s, b)
		}
	}
}

// jsonRoundTrip is what encoding/json makes of s: invalid bytes become U+FFFD.
func jsonRoundTrip(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// refDecode is an independent reference for decode, built on encoding/json.
func refDecode(b []byte) (inbound, error) {
	var m inbound
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if !utf8.Valid(b) || !json.Valid(b) || len(trimmed) == 0 || trimmed[0] != '{' || depth(b) > maxDepth {
		return m, errors.New("invalid")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return m, err
	}
	str := func(name string) ([]byte, error) {
		raw, ok := obj[name]
		if !ok || string(raw) == "null" {
			return nil, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	var errs [6]error
	var typ []byte
	typ, errs[0] = str("type")
	m.to, errs[1] = str("to")
	m.topic, errs[2] = str("topic")
	m.key, errs[3] = str("key")
	m.name, errs[4] = str("name")
	m.uid, errs[5] = str("uuid")
	if err := errors.Join(errs[:]...); err != nil {
		return m, err
	}
	if typ == nil {
		return m, errors.New("no type")
	}
	m.typ = typeOf(typ)
	if raw, ok := obj["data"]; ok {
		m.data = raw
	}
	return m, nil
}

// depth is the deepest bracket nesting of a valid JSON text.
func depth(b []byte) int {
	d, deepest, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","key":"k","name":"Dr T","uuid":"u"}`,
		`{"type":"signal","to":"p2","data":{"sdp":{"type":"offer","sdp":"v=0\r\n"}}}`,
		`{"type":"signal","to":"p2","data":{"candidate":"candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host","sdpMid":"0"}}`,
		`{"type":"message","topic":"control.mute","data":{"audio":false}}`,
		`{"type":"message","to":"x","topic":"x-\u00e9\"","data":[1,-2.5e+3,true,null]}`,
		`{"t\u0079pe":"join","type":"signal","to":null}`,
		`{"type":"join","name":"\ud800\udc00\ud800"}`,
		`{"type":1}`, `{"type":"join","to":[]}`, `[]`, `null`, `{}`, ``, `{"type":"join"}x`,
		`{"type":"x","data":` + nest(63) + `}`, `{"type":"x","data":` + nest(64) + `}`,
		"{\"type\":\"join\",\"name\":\"\xff\"}", `{"type":"join","data":-0.0e-0}`, `{"type":"join","data":01}`,
		`{"a":{"b":{"c":"\u`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		ref, refErr := refDecode(b)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("decode(%q): error %v, reference error %v", b, err, refErr)
		}
		if err != nil {
			if err.Code != "bad-message" {
				t.Fatalf("decode(%q): code %q", b, err.Code)
			}
			return
		}
		for _, f := range [][2][]byte{{m.to, ref.to}, {m.topic, ref.topic}, {m.key, ref.key},
			{m.name, ref.name}, {m.uid, ref.uid}, {m.data, ref.data}} {
			if !bytes.Equal(f[0], f[1]) || (f[0] == nil) != (f[1] == nil) {
				t.Fatalf("decode(%q) = %+v, reference %+v", b, m, ref)
			}
		}
		if m.typ != ref.typ {
			t.Fatalf("decode(%q): type %v, reference %v", b, m.typ, ref.typ)
		}
		checkFrames(t, m)
	})
}

// checkFrames checks that what the hub would send for m is valid JSON
// carrying m's fields.
func checkFrames(t *testing.T, m inbound) {
	var out struct {
		From, Topic string
		Data        json.RawMessage
	}
	for _, frame := range [][]byte{signalFrame("id", m.data), messageFrame("id", m.topic, m.data)} {
		if err := json.Unmarshal(frame, &out); err != nil {
			t.Fatalf("frame %q is invalid JSON: %v", frame, err)
		}
		if m.data != nil && !bytes.Equal(out.Data, m.data) {
			t.Fatalf("frame %q changed data %q", frame, m.data)
		}
	}
	if out.Topic != string(m.topic) {
		t.Fatalf("topic %q came back as %q", m.topic, out.Topic)
	}
	info := PeerInfo{ID: "id", Name: string(m.name), UUID: string(m.uid), Role: Role(m.key)}
	var back PeerInfo
	if err := json.Unmarshal(appendPeer(nil, info), &back); err != nil || back != info {
		t.Fatalf("peer %+v came back as %+v (%v)", info, back, err)
	}
}

// BenchmarkDecode compares the hub's decoder with encoding/json doing the
// same work (refDecode: case-sensitive fields, as the protocol wants), and
// the hub's encoder of a relayed signal with json.Marshal. The difference
// is why the hand-written codec stays (docs/performance.md).
func BenchmarkDecode(b *testing.B) {
	for name, in := range map[string]string{
		"candidate": `{"type":"signal","to":"Ab3dEf6hIj9lMn0p","data":{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.5 rport 46154 generation 0","sdpMid":"0","sdpMLineIndex":0}}`,
		"chat":      `{"type":"message","topic":"chat","data":{"text":"Bonjour, pouvez-vous lever le bras droit ?"}}`,
	} {
		frame := []byte(in)
		for codec, fn := range map[string]func([]byte) error{
			"hub": func(b []byte) error {
				if _, err := decode(b); err != nil {
					return err
				}
				return nil
			},
			"encoding-json": func(b []byte) error { _, err := refDecode(b); return err },
		} {
			b.Run(name+"/"+codec, func(b *testing.B) {
				b.SetBytes(int64(len(frame)))
				b.ReportAllocs()
				for b.Loop() {
					if err := fn(frame); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkEncodeSignal(b *testing.B) {
	data := []byte(`{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.5 rport 46154 generation 0","sdpMid":"0","sdpMLineIndex":0}`)
	b.Run("hub", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			signalFrame("Ab3dEf6hIj9lMn0p", data)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		type signal struct {
			Type string          `json:"type"`
			From string          `json:"from"`
			Data json.RawMessage `json:"data"`
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(signal{"signal", "Ab3dEf6hIj9lMn0p", data}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
