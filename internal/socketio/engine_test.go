package socketio

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// Byte strings below come from the Engine.IO v4 protocol document
// (socket.io docs/engine.io-protocol/v4-current.md) and its test suite.

func TestDecodeEnginePacket(t *testing.T) {
	tests := []struct {
		name   string
		frame  string
		binary bool
		want   EnginePacket
		err    bool
	}{
		{name: "probe ping", frame: "2probe", want: EnginePacket{Type: EnginePing, Data: []byte("probe")}},
		{name: "probe pong", frame: "3probe", want: EnginePacket{Type: EnginePong, Data: []byte("probe")}},
		{name: "message", frame: "4hello", want: EnginePacket{Type: EngineMessage, Data: []byte("hello")}},
		{name: "socket.io event", frame: `42["hello"]`, want: EnginePacket{Type: EngineMessage, Data: []byte(`2["hello"]`)}},
		{name: "ping", frame: "2", want: EnginePacket{Type: EnginePing, Data: []byte{}}},
		{name: "close", frame: "1", want: EnginePacket{Type: EngineClose, Data: []byte{}}},
		{name: "upgrade", frame: "5", want: EnginePacket{Type: EngineUpgrade, Data: []byte{}}},
		{name: "noop", frame: "6", want: EnginePacket{Type: EngineNoop, Data: []byte{}}},
		{name: "utf-8", frame: "4€", want: EnginePacket{Type: EngineMessage, Data: []byte("€")}},
		{name: "binary frame", frame: "\x01\x02\x03\x04", binary: true,
			want: EnginePacket{Type: EngineMessage, Data: []byte{1, 2, 3, 4}, Binary: true}},
		{name: "empty", frame: "", err: true},
		{name: "unknown type", frame: "7", err: true},
		{name: "not a digit", frame: "abc", err: true},
		{name: "invalid utf-8", frame: "4\xff", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEnginePacket([]byte(tt.frame), tt.binary)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if !tt.err && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEncodeEnginePacket(t *testing.T) {
	tests := []struct {
		name string
		in   EnginePacket
		want string
		err  bool
	}{
		{name: "probe", in: EnginePacket{Type: EnginePong, Data: []byte("probe")}, want: "3probe"},
		{name: "ping", in: EnginePacket{Type: EnginePing}, want: "2"},
		{name: "message", in: EnginePacket{Type: EngineMessage, Data: []byte("HelloWorld")}, want: "4HelloWorld"},
		{name: "binary", in: EnginePacket{Type: EngineMessage, Data: []byte{1, 2}, Binary: true}, want: "\x01\x02"},
		{name: "binary ping", in: EnginePacket{Type: EnginePing, Binary: true}, err: true},
		{name: "bad type", in: EnginePacket{Type: 9}, err: true},
		{name: "invalid utf-8", in: EnginePacket{Type: EngineMessage, Data: []byte{0xff}}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeEnginePacket(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

var payloadTests = []struct {
	name string
	body string
	want []EnginePacket
}{
	{name: "one packet", body: "4hello", want: []EnginePacket{{Type: EngineMessage, Data: []byte("hello")}}},
	{name: "spec example", body: "4hello\x1e2\x1e4world", want: []EnginePacket{
		{Type: EngineMessage, Data: []byte("hello")},
		{Type: EnginePing, Data: []byte{}},
		{Type: EngineMessage, Data: []byte("world")},
	}},
	{name: "binary", body: "4hello\x1ebAQIDBA==", want: []EnginePacket{
		{Type: EngineMessage, Data: []byte("hello")},
		{Type: EngineMessage, Data: []byte{1, 2, 3, 4}, Binary: true},
	}},
	{name: "socket.io events", body: "42[\"hello\"]\x1e42[\"world\"]", want: []EnginePacket{
		{Type: EngineMessage, Data: []byte(`2["hello"]`)},
		{Type: EngineMessage, Data: []byte(`2["world"]`)},
	}},
	{name: "test suite", body: "4test1\x1e4test2\x1e4test3", want: []EnginePacket{
		{Type: EngineMessage, Data: []byte("test1")},
		{Type: EngineMessage, Data: []byte("test2")},
		{Type: EngineMessage, Data: []byte("test3")},
	}},
}

func TestDecodePayload(t *testing.T) {
	for _, tt := range payloadTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePayload([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "abc", "4a\x1e", "\x1e4a", "4a\x1e\x1e4b", "bAQ!", "9x", "4\xff"} {
		t.Run("invalid "+bad, func(t *testing.T) {
			if got, err := DecodePayload([]byte(bad)); err == nil {
				t.Fatalf("DecodePayload(%q) = %+v, want error", bad, got)
			}
		})
	}
}

func TestEncodePayload(t *testing.T) {
	for _, tt := range payloadTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodePayload(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.body {
				t.Fatalf("got %q, want %q", got, tt.body)
			}
		})
	}
	t.Run("separator in data", func(t *testing.T) {
		_, err := EncodePayload([]EnginePacket{{Type: EngineMessage, Data: []byte("a\x1eb")}})
		if !errors.Is(err, errSeparator) {
			t.Fatalf("err = %v, want errSeparator", err)
		}
	})
}

func FuzzDecodePayload(f *testing.F) {
	for _, tt := range payloadTests {
		f.Add([]byte(tt.body))
	}
	f.Add([]byte("0{\"sid\":\"x\"}\x1e6\x1e1"))
	f.Add([]byte("b\x1eb="))
	f.Fuzz(func(t *testing.T, body []byte) {
		packets, err := DecodePayload(body)
		if err != nil {
			return
		}
		// What decodes must encode, and decode again to the same packets.
		enc, err := EncodePayload(packets)
		if err != nil {
			t.Fatalf("EncodePayload(%+v): %v", packets, err)
		}
		again, err := DecodePayload(enc)
		if err != nil {
			t.Fatalf("DecodePayload(%q): %v", enc, err)
		}
		if len(again) != len(packets) {
			t.Fatalf("round trip: %d packets, want %d", len(again), len(packets))
		}
		for i := range packets {
			a, b := packets[i], again[i]
			if a.Type != b.Type || a.Binary != b.Binary || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("packet %d: %+v after round trip, want %+v", i, b, a)
			}
		}
	})
}
