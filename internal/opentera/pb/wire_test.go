package pb

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// wire concatenates hand-written protobuf wire bytes. An int is one byte (a
// tag, a length or a small varint), a string or []byte is appended as is.
// Tags are (field number << 3 | wire type): wire type 0 varint, 1 fixed64,
// 2 length-delimited, 5 fixed32.
func wire(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch x := p.(type) {
		case int:
			if x < 0 || x > 0xff {
				panic(fmt.Sprintf("wire: %d is not a byte", x))
			}
			b = append(b, byte(x))
		case string:
			b = append(b, x...)
		case []byte:
			b = append(b, x...)
		default:
			panic(fmt.Sprintf("wire: unsupported %T", p))
		}
	}
	return b
}

// Little-endian IEEE 754 encodings, written out by hand.
var (
	dbl1p5 = []byte{0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f} // 1.5
	dbl2p5 = []byte{0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x40} // 2.5
	dblNow = []byte{0x00, 0x00, 0x20, 0x40, 0xfc, 0x54, 0xd9, 0x41} // 1700000000.5
	flt1p5 = []byte{0x00, 0x00, 0xc0, 0x3f}                         // 1.5
)

// goldenNow is 1700000000.5 seconds after the epoch.
var goldenNow = time.Unix(1700000000, 500_000_000)

const (
	urlJoin        = "type.googleapis.com/opentera.protobuf.JoinSessionEvent" // 54 bytes
	urlParticipant = "type.googleapis.com/opentera.protobuf.ParticipantEvent" // 54 bytes
	urlStop        = "type.googleapis.com/opentera.protobuf.StopSessionEvent" // 54 bytes
	urlUser        = "type.googleapis.com/opentera.protobuf.UserEvent"        // 47 bytes
)

// goldenRPCSessionManage is RPCMessage{method:"session_manage",
// reply_to:"RedisRPCClient.abc", id:3, timestamp:1.5, args:[{string_value:"{}"}]}.
var goldenRPCSessionManage = wire(
	0x0a, 14, "session_manage", // 1 method
	0x12, 18, "RedisRPCClient.abc", // 2 reply_to
	0x18, 3, // 3 id
	0x21, dbl1p5, // 4 timestamp (fixed64)
	0x2a, 4, // 5 args[0]: Value
	/**/ 0x3a, 2, "{}", // 7 string_value
)

// goldenTeraEventJoin is what WrapTeraEvent("websocket.participant.p1.events",
// JoinSessionEvent{...}, goldenNow) must produce.
var goldenTeraEventJoin = wire(
	0x0a, 44, // 1 header
	/**/ 0x08, 1, // 1 version
	/**/ 0x11, dblNow, // 2 time
	/**/ 0x1a, 31, "websocket.participant.p1.events", // 3 topic
	0x12, 85, // 2 events[0]: Any
	/**/ 0x0a, 54, urlJoin, // 1 type_url
	/**/ 0x12, 27, // 2 value: JoinSessionEvent
	/**/ /**/ 0x0a, 11, "https://h/s", // 1 session_url
	/**/ /**/ 0x1a, 3, "s-1", // 3 session_uuid
	/**/ /**/ 0x22, 2, "p1", // 4 session_participants
	/**/ /**/ 0x4a, 3, "svc", // 9 service_uuid
)

func goldenJoin() *JoinSessionEvent {
	return &JoinSessionEvent{
		SessionUrl:          "https://h/s",
		SessionUuid:         "s-1",
		SessionParticipants: []string{"p1"},
		ServiceUuid:         "svc",
	}
}

// goldenModuleParticipant is what WrapModuleMessage("serviceVideoRehabService",
// "module.TeraServer.UserManagerModule.messages",
// ParticipantEvent{participant_uuid:"p1", type:PARTICIPANT_JOINED_SESSION},
// goldenNow) must produce. seq = 0 is not on the wire (proto3).
var goldenModuleParticipant = wire(
	0x0a, 83, // 1 head
	/**/ 0x08, 1, // 1 version
	/**/ 0x11, dblNow, // 2 time
	/**/ 0x22, 24, "serviceVideoRehabService", // 4 source
	/**/ 0x2a, 44, "module.TeraServer.UserManagerModule.messages", // 5 dest
	0x12, 64, // 2 data[0]: Any
	/**/ 0x0a, 54, urlParticipant, // 1 type_url
	/**/ 0x12, 6, // 2 value: ParticipantEvent
	/**/ /**/ 0x0a, 2, "p1", // 1 participant_uuid
	/**/ /**/ 0x10, 5, // 2 type = PARTICIPANT_JOINED_SESSION
)

func anyOf(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := NewAny(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestWireGolden pins the encoding of every message, with every field set, to
// bytes written by hand from the field table of the spec (§4.4). A wrong
// field number, wire type or scalar type changes the bytes.
func TestWireGolden(t *testing.T) {
	stop := &StopSessionEvent{SessionUuid: "s"}
	anyStop := wire(0x0a, 54, urlStop, 0x12, 3, 0x0a, 1, "s")

	tests := []struct {
		name string
		msg  proto.Message
		want []byte
	}{
		{
			name: "RPCMessage/session_manage",
			msg: &RPCMessage{
				Method:    "session_manage",
				ReplyTo:   "RedisRPCClient.abc",
				Id:        3,
				Timestamp: 1.5,
				Args:      []*Value{{ArgValue: &Value_StringValue{StringValue: "{}"}}},
			},
			want: goldenRPCSessionManage,
		},
		{
			name: "RPCMessage/every Value kind",
			msg: &RPCMessage{
				Method: "m",
				Args: []*Value{
					{ArgValue: &Value_DoubleValue{DoubleValue: 2.5}},
					{ArgValue: &Value_FloatValue{FloatValue: 1.5}},
					{ArgValue: &Value_IntValue{IntValue: -1}},
					{ArgValue: &Value_IntValue{IntValue: 0}},
					{ArgValue: &Value_UintValue{UintValue: 300}},
					{ArgValue: &Value_BoolValue{BoolValue: true}},
					{ArgValue: &Value_BytesValue{BytesValue: []byte{0x00, 0xff}}},
					{ArgValue: &Value_StringValue{StringValue: "é"}},
					{},
				},
			},
			want: wire(
				0x0a, 1, "m",
				0x2a, 9, 0x09, dbl2p5, // 1 double_value
				0x2a, 5, 0x15, flt1p5, // 2 float_value (fixed32)
				0x2a, 11, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // 3 int_value -1: int64, not sint64
				0x2a, 2, 0x18, 0x00, // a set oneof member is sent even when zero
				0x2a, 3, 0x20, 0xac, 0x02, // 4 uint_value 300
				0x2a, 2, 0x28, 0x01, // 5 bool_value
				0x2a, 4, 0x32, 2, 0x00, 0xff, // 6 bytes_value
				0x2a, 4, 0x3a, 2, 0xc3, 0xa9, // 7 string_value "é"
				0x2a, 0, // empty Value
			),
		},
		{
			name: "JoinSessionEvent",
			msg: &JoinSessionEvent{
				SessionUrl:          "https://h/s",
				SessionCreatorName:  "Dr X",
				SessionUuid:         "s-1",
				SessionParticipants: []string{"p1", "p2"},
				SessionUsers:        []string{"u1"},
				SessionDevices:      []string{"d1"},
				JoinMsg:             "hi",
				SessionParameters:   "{}",
				ServiceUuid:         "svc",
			},
			want: wire(
				0x0a, 11, "https://h/s",
				0x12, 4, "Dr X",
				0x1a, 3, "s-1",
				0x22, 2, "p1", 0x22, 2, "p2",
				0x2a, 2, "u1",
				0x32, 2, "d1",
				0x3a, 2, "hi",
				0x42, 2, "{}",
				0x4a, 3, "svc",
			),
		},
		{
			name: "JoinSessionReplyEvent",
			msg: &JoinSessionReplyEvent{
				SessionUuid:     "s",
				UserUuid:        "u",
				ParticipantUuid: "p",
				DeviceUuid:      "d",
				JoinReply:       JoinSessionReplyEvent_REPLY_BUSY,
				ReplyMsg:        "busy",
			},
			want: wire(0x0a, 1, "s", 0x12, 1, "u", 0x1a, 1, "p", 0x22, 1, "d", 0x28, 3, 0x32, 4, "busy"),
		},
		{
			name: "LeaveSessionEvent",
			msg: &LeaveSessionEvent{
				SessionUuid:         "s",
				ServiceUuid:         "svc",
				LeavingParticipants: []string{"p1"},
				LeavingUsers:        []string{"u1"},
				LeavingDevices:      []string{"d1"},
			},
			want: wire(0x0a, 1, "s", 0x12, 3, "svc", 0x1a, 2, "p1", 0x22, 2, "u1", 0x2a, 2, "d1"),
		},
		{
			name: "StopSessionEvent",
			msg:  &StopSessionEvent{SessionUuid: "s", ServiceUuid: "svc"},
			want: wire(0x0a, 1, "s", 0x12, 3, "svc"),
		},
		{
			name: "UserEvent",
			msg:  &UserEvent{UserUuid: "u1", Type: UserEvent_USER_LEFT_SESSION, UserFullname: "Ann"},
			want: wire(0x0a, 2, "u1", 0x10, 7, 0x1a, 3, "Ann"),
		},
		{
			name: "ParticipantEvent",
			msg: &ParticipantEvent{
				ParticipantUuid:        "p1",
				Type:                   ParticipantEvent_PARTICIPANT_JOINED_SESSION,
				ParticipantName:        "Bob",
				ParticipantProjectName: "Prj",
				ParticipantSiteName:    "Site",
			},
			want: wire(0x0a, 2, "p1", 0x10, 5, 0x1a, 3, "Bob", 0x22, 3, "Prj", 0x2a, 4, "Site"),
		},
		{
			name: "DeviceEvent",
			msg:  &DeviceEvent{DeviceUuid: "d1", Type: DeviceEvent_DEVICE_STATUS_CHANGED, DeviceName: "Cam", DeviceStatus: "ok"},
			want: wire(0x0a, 2, "d1", 0x10, 7, 0x1a, 3, "Cam", 0x22, 2, "ok"),
		},
		{
			name: "ServerCommand/disconnect",
			msg:  &ServerCommand{Type: ServerCommand_CMD_CLIENT_DISCONNECT},
			want: wire(0x08, 2),
		},
		{
			name: "ServerCommand/with data",
			msg:  &ServerCommand{Type: ServerCommand_CMD_CLIENT_DISCONNECT, Data: anyOf(t, stop)},
			want: wire(0x08, 2, 0x12, 61, anyStop),
		},
		{
			name: "LogEvent",
			msg:  &LogEvent{Level: LogEvent_LOGLEVEL_INFO, Timestamp: 1.5, Sender: "svc", Message: "hello"},
			want: wire(0x08, 5, 0x11, dbl1p5, 0x1a, 3, "svc", 0x22, 5, "hello"),
		},
		{
			name: "LoginEvent",
			msg: &LoginEvent{
				LogHeader:       &LogEvent{Level: LogEvent_LOGLEVEL_WARNING, Sender: "a"},
				LoginType:       LoginEvent_LOGIN_TYPE_PASSWORD,
				LoginStatus:     LoginEvent_LOGIN_STATUS_FAILED_WITH_WRONG_PASSWORD,
				ClientName:      "c",
				ClientVersion:   "v",
				ClientIp:        "ip",
				OsName:          "o",
				OsVersion:       "ov",
				UserUuid:        "u",
				ParticipantUuid: "p",
				DeviceUuid:      "d",
				ServiceUuid:     "s",
				ServerEndpoint:  "e",
			},
			want: wire(
				0x0a, 5, 0x08, 4, 0x1a, 1, "a", // 1 log_header
				0x10, 2, // 2 login_type
				0x18, 2, // 3 login_status
				0x22, 1, "c", // 4 client_name
				0x2a, 1, "v", // 5 client_version
				0x32, 2, "ip", // 6 client_ip
				0x3a, 1, "o", // 7 os_name
				0x42, 2, "ov", // 8 os_version
				0x4a, 1, "u", // 9 user_uuid
				0x52, 1, "p", // 10 participant_uuid
				0x5a, 1, "d", // 11 device_uuid
				0x62, 1, "s", // 12 service_uuid
				0x6a, 1, "e", // 13 server_endpoint
			),
		},
		{
			name: "TeraMessage",
			msg:  &TeraMessage{Message: anyOf(t, stop)},
			want: wire(0x0a, 61, anyStop),
		},
		{
			name: "TeraEvent/JoinSessionEvent",
			msg: &TeraEvent{
				Header: &TeraEvent_Header{Version: 1, Time: 1700000000.5, Topic: "websocket.participant.p1.events"},
				Events: []*anypb.Any{anyOf(t, goldenJoin())},
			},
			want: goldenTeraEventJoin,
		},
		{
			name: "TeraModuleMessage/ParticipantEvent",
			msg: &TeraModuleMessage{
				Head: &TeraModuleMessage_Header{
					Version: 1, Time: 1700000000.5, Seq: 0,
					Source: "serviceVideoRehabService",
					Dest:   "module.TeraServer.UserManagerModule.messages",
				},
				Data: []*anypb.Any{anyOf(t, &ParticipantEvent{
					ParticipantUuid: "p1",
					Type:            ParticipantEvent_PARTICIPANT_JOINED_SESSION,
				})},
			},
			want: goldenModuleParticipant,
		},
		{
			name: "TeraModuleMessage/seq",
			msg:  &TeraModuleMessage{Head: &TeraModuleMessage_Header{Seq: 9}},
			want: wire(0x0a, 2, 0x18, 9),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := proto.Marshal(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("encode mismatch\n got %s\nwant %s", hex.EncodeToString(got), hex.EncodeToString(tt.want))
			}
			back := tt.msg.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(tt.want, back); err != nil {
				t.Fatalf("decode golden: %v", err)
			}
			if !proto.Equal(back, tt.msg) {
				t.Fatalf("decode golden: got %v, want %v", back, tt.msg)
			}
		})
	}
}

func TestWrapTeraEventGolden(t *testing.T) {
	got, err := WrapTeraEvent("websocket.participant.p1.events", goldenJoin(), goldenNow)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, goldenTeraEventJoin) {
		t.Fatalf("got  %x\nwant %x", got, goldenTeraEventJoin)
	}
}

func TestWrapModuleMessageGolden(t *testing.T) {
	ev := &ParticipantEvent{ParticipantUuid: "p1", Type: ParticipantEvent_PARTICIPANT_JOINED_SESSION}
	got, err := WrapModuleMessage("serviceVideoRehabService", "module.TeraServer.UserManagerModule.messages", ev, goldenNow)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, goldenModuleParticipant) {
		t.Fatalf("got  %x\nwant %x", got, goldenModuleParticipant)
	}
}

func TestWrapNil(t *testing.T) {
	if _, err := WrapTeraEvent("t", nil, goldenNow); err == nil {
		t.Error("WrapTeraEvent(nil) succeeded")
	}
	if _, err := WrapModuleMessage("s", "d", nil, goldenNow); err == nil {
		t.Error("WrapModuleMessage(nil) succeeded")
	}
}

// TestDecodeUserManagerEvent decodes a TeraEvent as the main server's
// UserManagerModule publishes it on module.TeraServer.UserManagerModule.events,
// carrying a field this package does not know (as a newer OpenTera might).
func TestDecodeUserManagerEvent(t *testing.T) {
	in := wire(
		0x0a, 48, // header
		/**/ 0x08, 1,
		/**/ 0x11, dbl1p5,
		/**/ 0x1a, 35, "module.TeraServer.UserManagerModule",
		0x12, 62, // events[0]
		/**/ 0x0a, 47, urlUser,
		/**/ 0x12, 11, // UserEvent
		/**/ /**/ 0x0a, 2, "u1",
		/**/ /**/ 0x10, 1, // USER_CONNECTED
		/**/ /**/ 0x1a, 1, "A",
		/**/ /**/ 0x78, 0x01, // field 15, varint: unknown here, must be skipped
	)
	var te TeraEvent
	if err := proto.Unmarshal(in, &te); err != nil {
		t.Fatal(err)
	}
	if h := te.GetHeader(); h.GetVersion() != 1 || h.GetTime() != 1.5 || h.GetTopic() != "module.TeraServer.UserManagerModule" {
		t.Fatalf("header = %v", h)
	}
	if len(te.GetEvents()) != 1 {
		t.Fatalf("events = %v", te.GetEvents())
	}
	m, err := te.GetEvents()[0].UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	ue, ok := m.(*UserEvent)
	if !ok {
		t.Fatalf("unpacked %T, want *UserEvent", m)
	}
	if ue.GetUserUuid() != "u1" || ue.GetType() != UserEvent_USER_CONNECTED || ue.GetUserFullname() != "A" {
		t.Fatalf("UserEvent = %v", ue)
	}
	var pe ParticipantEvent
	if err := te.GetEvents()[0].UnmarshalTo(&pe); err == nil {
		t.Fatal("a UserEvent Any unpacked into a ParticipantEvent")
	}
}

func TestDecodeRPCSessionManage(t *testing.T) {
	var m RPCMessage
	if err := proto.Unmarshal(goldenRPCSessionManage, &m); err != nil {
		t.Fatal(err)
	}
	if m.GetMethod() != "session_manage" || m.GetReplyTo() != "RedisRPCClient.abc" || m.GetId() != 3 || m.GetTimestamp() != 1.5 {
		t.Fatalf("RPCMessage = %v", &m)
	}
	s, err := ArgString(&m, 0)
	if err != nil || s != "{}" {
		t.Fatalf("ArgString = %q, %v", s, err)
	}
}

func TestTypeURLs(t *testing.T) {
	tests := []struct {
		msg  proto.Message
		name string
	}{
		{&TeraModuleMessage{}, "TeraModuleMessage"},
		{&TeraModuleMessage_Header{}, "TeraModuleMessage.Header"},
		{&TeraEvent{}, "TeraEvent"},
		{&TeraEvent_Header{}, "TeraEvent.Header"},
		{&TeraMessage{}, "TeraMessage"},
		{&RPCMessage{}, "RPCMessage"},
		{&Value{}, "Value"},
		{&JoinSessionEvent{}, "JoinSessionEvent"},
		{&JoinSessionReplyEvent{}, "JoinSessionReplyEvent"},
		{&LeaveSessionEvent{}, "LeaveSessionEvent"},
		{&StopSessionEvent{}, "StopSessionEvent"},
		{&UserEvent{}, "UserEvent"},
		{&ParticipantEvent{}, "ParticipantEvent"},
		{&DeviceEvent{}, "DeviceEvent"},
		{&ServerCommand{}, "ServerCommand"},
		{&LogEvent{}, "LogEvent"},
		{&LoginEvent{}, "LoginEvent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAny(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			want := "type.googleapis.com/opentera.protobuf." + tt.name
			if a.GetTypeUrl() != want {
				t.Fatalf("type_url = %q, want %q", a.GetTypeUrl(), want)
			}
			if TypeURLPrefix+string(tt.msg.ProtoReflect().Descriptor().FullName()) != want {
				t.Fatalf("full name = %q", tt.msg.ProtoReflect().Descriptor().FullName())
			}
		})
	}
}

func TestUnixSeconds(t *testing.T) {
	tests := []struct {
		t    time.Time
		want float64
	}{
		{time.Unix(0, 0), 0},
		{goldenNow, 1700000000.5},
		// Truncated to microseconds, then s + us/1e6 as Python computes it.
		{time.Unix(1700000000, 123456789), 1700000000 + 123456/1e6},
		{time.Unix(1, 999), 1},
	}
	for _, tt := range tests {
		if got := UnixSeconds(tt.t); got != tt.want {
			t.Errorf("UnixSeconds(%v) = %v, want %v", tt.t, got, tt.want)
		}
	}
}
