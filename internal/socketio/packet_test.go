package socketio

import (
	"bytes"
	"errors"
	"testing"
)

// Byte strings below come from the Socket.IO v5 protocol document
// (socket.io docs/socket.io-protocol/v5-current.md) and its test suite,
// without the leading Engine.IO "4".

var socketPacketTests = []struct {
	name       string
	wire       string
	p          SocketPacket
	decodeOnly bool // the encoder writes another, equivalent form
}{
	{name: "connect main", wire: "0", p: SocketPacket{Type: SocketConnect, Namespace: "/"}},
	{name: "connect with auth", wire: `0{"token":"123"}`,
		p: SocketPacket{Type: SocketConnect, Namespace: "/", Data: []byte(`{"token":"123"}`)}},
	{name: "connect reply", wire: `0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}`,
		p: SocketPacket{Type: SocketConnect, Namespace: "/admin", Data: []byte(`{"sid":"oSO0OpakMV_3jnilAAAA"}`)}},
	{name: "connect custom", wire: "0/custom,", p: SocketPacket{Type: SocketConnect, Namespace: "/custom"}},
	{name: "connect without comma", wire: "0/random", decodeOnly: true,
		p: SocketPacket{Type: SocketConnect, Namespace: "/random"}},
	{name: "connect error", wire: `4{"message":"Not authorized"}`,
		p: SocketPacket{Type: SocketConnectError, Namespace: "/", Data: []byte(`{"message":"Not authorized"}`)}},
	{name: "connect error namespace", wire: `4/random,{"message":"Invalid namespace"}`,
		p: SocketPacket{Type: SocketConnectError, Namespace: "/random", Data: []byte(`{"message":"Invalid namespace"}`)}},
	{name: "event", wire: `2["foo"]`, p: SocketPacket{Type: SocketEvent, Namespace: "/", Data: []byte(`["foo"]`)}},
	{name: "event namespace", wire: `2/admin,["bar"]`,
		p: SocketPacket{Type: SocketEvent, Namespace: "/admin", Data: []byte(`["bar"]`)}},
	{name: "event args", wire: `2["message",1,"2",{"3":[true]}]`,
		p: SocketPacket{Type: SocketEvent, Namespace: "/", Data: []byte(`["message",1,"2",{"3":[true]}]`)}},
	{name: "event with ack", wire: `212["foo"]`,
		p: SocketPacket{Type: SocketEvent, Namespace: "/", HasID: true, ID: 12, Data: []byte(`["foo"]`)}},
	{name: "event ack id 0", wire: `2/admin,0["tellme"]`,
		p: SocketPacket{Type: SocketEvent, Namespace: "/admin", HasID: true, ID: 0, Data: []byte(`["tellme"]`)}},
	{name: "ack", wire: `3/admin,13["bar"]`,
		p: SocketPacket{Type: SocketAck, Namespace: "/admin", HasID: true, ID: 13, Data: []byte(`["bar"]`)}},
	{name: "empty ack", wire: `312[]`, p: SocketPacket{Type: SocketAck, Namespace: "/", HasID: true, ID: 12, Data: []byte(`[]`)}},
	{name: "disconnect", wire: "1", p: SocketPacket{Type: SocketDisconnect, Namespace: "/"}},
	{name: "disconnect namespace", wire: "1/admin,", p: SocketPacket{Type: SocketDisconnect, Namespace: "/admin"}},
}

func TestDecodeSocketPacket(t *testing.T) {
	for _, tt := range socketPacketTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeSocketPacket([]byte(tt.wire))
			if err != nil {
				t.Fatal(err)
			}
			if !equalPackets(got, tt.p) {
				t.Fatalf("got %+v, want %+v", got, tt.p)
			}
		})
	}
}

func TestEncodeSocketPacket(t *testing.T) {
	for _, tt := range socketPacketTests {
		if tt.decodeOnly {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeSocketPacket(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.wire {
				t.Fatalf("got %q, want %q", got, tt.wire)
			}
		})
	}
}

func TestDecodeSocketPacketInvalid(t *testing.T) {
	tests := []struct {
		name, wire string
		err        error
	}{
		{"empty", "", errSocketType},
		{"unknown type", "7", errSocketType},
		{"not a digit", "abc", errSocketType},
		{"binary event", `51-["baz",{"_placeholder":true,"num":0}]`, ErrBinaryUnsupported},
		{"binary event namespace", `52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, ErrBinaryUnsupported},
		{"binary ack", `61-15["bar",{"_placeholder":true,"num":0}]`, ErrBinaryUnsupported},
		{"event without data", "2", errPayload},
		{"event empty array", "2[]", errPayload},
		{"event numeric name", "2[1]", errPayload},
		{"event object", `2{"a":1}`, errPayload},
		{"event reserved name", `2["connect"]`, errPayload},
		{"event reserved disconnect", `2["disconnect"]`, errPayload},
		{"event bad json", `2["foo"`, errPayload},
		{"event leading space", ` 2["foo"]`, errSocketType},
		{"event space before data", `2 ["foo"]`, errPayload},
		{"connect array", "0[]", errPayload},
		{"connect string", `0"x"`, errPayload},
		{"connect with id", "01{}", errAckID},
		{"disconnect with data", "1{}", errPayload},
		{"ack without id", `3["x"]`, errAckID},
		{"ack object", `31{}`, errPayload},
		{"ack without data", `31`, errPayload},
		{"id overflow", `299999999999999999999["x"]`, errAckID},
		{"id beyond 2^53", `29007199254740992["x"]`, errAckID},
		{"namespace too long", "0/" + string(bytes.Repeat([]byte("a"), maxNamespaceLen)) + ",", errNamespace},
		{"namespace not utf-8", "0/\xff,", errNamespace},
		{"connect error empty", "4", errPayload},
		{"connect error array", "4[]", errPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeSocketPacket([]byte(tt.wire))
			if !errors.Is(err, tt.err) {
				t.Fatalf("DecodeSocketPacket(%q) = %+v, %v; want %v", tt.wire, got, err, tt.err)
			}
		})
	}
}

func TestEncodeSocketPacketInvalid(t *testing.T) {
	tests := []struct {
		name string
		p    SocketPacket
		err  error
	}{
		{"binary", SocketPacket{Type: SocketBinaryEvent}, ErrBinaryUnsupported},
		{"unknown type", SocketPacket{Type: 9}, errSocketType},
		{"namespace comma", SocketPacket{Type: SocketConnect, Namespace: "/a,b"}, errNamespace},
		{"namespace no slash", SocketPacket{Type: SocketConnect, Namespace: "admin"}, errNamespace},
		{"id on connect", SocketPacket{Type: SocketConnect, HasID: true}, errAckID},
		{"ack without id", SocketPacket{Type: SocketAck, Data: []byte("[]")}, errAckID},
		{"bad data", SocketPacket{Type: SocketEvent, Data: []byte(`["x"`)}, errPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := EncodeSocketPacket(tt.p); !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func equalPackets(a, b SocketPacket) bool {
	return a.Type == b.Type && a.Namespace == b.Namespace && a.HasID == b.HasID && a.ID == b.ID &&
		bytes.Equal(a.Data, b.Data)
}

func FuzzDecodeSocketPacket(f *testing.F) {
	for _, tt := range socketPacketTests {
		f.Add([]byte(tt.wire))
	}
	f.Add([]byte(`51-["baz",{"_placeholder":true,"num":0}]`))
	f.Add([]byte(`2/a,9007199254740991["x",null,{"y":[1e300]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeSocketPacket(b)
		if err != nil {
			return
		}
		// What decodes must encode, and decode again to the same packet.
		enc, err := EncodeSocketPacket(p)
		if err != nil {
			t.Fatalf("EncodeSocketPacket(%+v): %v", p, err)
		}
		again, err := DecodeSocketPacket(enc)
		if err != nil {
			t.Fatalf("DecodeSocketPacket(%q): %v", enc, err)
		}
		if !equalPackets(p, again) {
			t.Fatalf("round trip: %+v, want %+v", again, p)
		}
	})
}
