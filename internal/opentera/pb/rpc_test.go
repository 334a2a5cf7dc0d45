package pb

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

func TestNewRPCCallGolden(t *testing.T) {
	m := NewRPCCall("session_manage", 3, "RedisRPCClient.abc", "{}")
	m.Timestamp = 1.5 // the only field that depends on the clock
	got, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, goldenRPCSessionManage) {
		t.Fatalf("got  %x\nwant %x", got, goldenRPCSessionManage)
	}
}

func TestNewRPCCallTimestamp(t *testing.T) {
	before := UnixSeconds(time.Now())
	m := NewRPCCall("m", 0, "r")
	after := UnixSeconds(time.Now())
	if m.GetTimestamp() < before || m.GetTimestamp() > after {
		t.Fatalf("timestamp %v not in [%v, %v]", m.GetTimestamp(), before, after)
	}
	if m.GetArgs() == nil || len(m.GetArgs()) != 0 {
		t.Fatalf("args = %v", m.GetArgs())
	}
}

func TestNewRPCCallArgs(t *testing.T) {
	preset := &Value{ArgValue: &Value_StringValue{StringValue: "pre"}}
	tests := []struct {
		name string
		arg  any
		want *Value
	}{
		{"bool", true, &Value{ArgValue: &Value_BoolValue{BoolValue: true}}},
		{"false", false, &Value{ArgValue: &Value_BoolValue{BoolValue: false}}},
		{"float64", 2.5, &Value{ArgValue: &Value_DoubleValue{DoubleValue: 2.5}}},
		{"float32", float32(1.5), &Value{ArgValue: &Value_FloatValue{FloatValue: 1.5}}},
		{"int", 7, &Value{ArgValue: &Value_IntValue{IntValue: 7}}},
		{"int zero", 0, &Value{ArgValue: &Value_IntValue{IntValue: 0}}},
		{"int64", int64(math.MinInt64), &Value{ArgValue: &Value_IntValue{IntValue: math.MinInt64}}},
		{"int32", int32(-3), &Value{ArgValue: &Value_IntValue{IntValue: -3}}},
		{"uint64", uint64(math.MaxUint64), &Value{ArgValue: &Value_UintValue{UintValue: math.MaxUint64}}},
		{"uint8", uint8(9), &Value{ArgValue: &Value_UintValue{UintValue: 9}}},
		{"string", "s", &Value{ArgValue: &Value_StringValue{StringValue: "s"}}},
		{"empty string", "", &Value{ArgValue: &Value_StringValue{StringValue: ""}}},
		{"bytes", []byte{1, 2}, &Value{ArgValue: &Value_BytesValue{BytesValue: []byte{1, 2}}}},
		{"*Value", preset, preset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewRPCCall("m", 1, "r", tt.arg)
			if len(m.GetArgs()) != 1 || !proto.Equal(m.GetArgs()[0], tt.want) {
				t.Fatalf("args = %v, want [%v]", m.GetArgs(), tt.want)
			}
		})
	}
}

func TestNewRPCCallFields(t *testing.T) {
	m := NewRPCCall("online_users", 41, "RedisRPCClient.x", "a", 2, false)
	if m.GetMethod() != "online_users" || m.GetId() != 41 || m.GetReplyTo() != "RedisRPCClient.x" || len(m.GetArgs()) != 3 {
		t.Fatalf("RPCMessage = %v", m)
	}
}

func TestNewRPCCallPanicsOnUnsupported(t *testing.T) {
	for _, arg := range []any{nil, struct{}{}, []string{"a"}, map[string]any{}, (*Value)(nil)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewRPCCall(%#v) did not panic", arg)
				}
			}()
			NewRPCCall("m", 0, "r", "ok", arg)
		}()
		if _, err := NewValue(arg); err == nil {
			t.Errorf("NewValue(%#v) succeeded", arg)
		}
	}
}

func TestArgAccessors(t *testing.T) {
	m := &RPCMessage{Args: []*Value{
		{ArgValue: &Value_StringValue{StringValue: "s"}},
		{ArgValue: &Value_IntValue{IntValue: -5}},
		{ArgValue: &Value_UintValue{UintValue: 6}},
		{ArgValue: &Value_UintValue{UintValue: math.MaxUint64}},
		{ArgValue: &Value_DoubleValue{DoubleValue: 1}},
		{},
		nil,
	}}
	strTests := []struct {
		i       int
		want    string
		wantErr error
	}{
		{0, "s", nil},
		{1, "", ErrArgType},
		{5, "", ErrArgUnset},
		{6, "", ErrArgUnset},
		{7, "", ErrNoArg},
		{-1, "", ErrNoArg},
	}
	for _, tt := range strTests {
		got, err := ArgString(m, tt.i)
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("ArgString(%d) = %q, %v; want %q, %v", tt.i, got, err, tt.want, tt.wantErr)
		}
	}
	intTests := []struct {
		i       int
		want    int64
		wantErr error
	}{
		{1, -5, nil},
		{2, 6, nil},
		{3, 0, ErrArgType}, // overflows int64
		{4, 0, ErrArgType}, // double, not an int
		{0, 0, ErrArgType},
		{5, 0, ErrArgUnset},
		{9, 0, ErrNoArg},
	}
	for _, tt := range intTests {
		got, err := ArgInt(m, tt.i)
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("ArgInt(%d) = %d, %v; want %d, %v", tt.i, got, err, tt.want, tt.wantErr)
		}
	}
	if _, err := ArgString(nil, 0); !errors.Is(err, ErrNoArg) {
		t.Errorf("ArgString(nil) err = %v", err)
	}
	if v, err := ArgValue(m, 4); err != nil || v != 1.0 {
		t.Errorf("ArgValue(4) = %v, %v", v, err)
	}
}

func TestRPCReplyMarshal(t *testing.T) {
	req := &RPCMessage{Method: "session_manage", Id: 3}
	ok, err := NewRPCReply(req, "service.VideoRehabService.rpc", map[string]any{"status": "started"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		reply *RPCReply
		want  string
	}{
		{"OK", ok, `{"method":"session_manage","id":3,"pattern":"service.VideoRehabService.rpc","status":"OK","return_value":{"status":"started"}}`},
		{"Error", NewRPCErrorReply(req, "service.VideoRehabService.rpc"), `{"method":"session_manage","id":3,"pattern":"service.VideoRehabService.rpc","status":"Error","return_value":null}`},
		{"raw", &RPCReply{Method: "m", ID: 1, Pattern: "p", Status: ReplyStatusOK, ReturnValue: json.RawMessage(`[1, 2]`)}, `{"method":"m","id":1,"pattern":"p","status":"OK","return_value":[1,2]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.reply)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := NewRPCReply(req, "p", func() {}); err == nil {
		t.Error("NewRPCReply with an unmarshalable result succeeded")
	}
}

// TestRPCReplyUnmarshalPython decodes replies verbatim as Python's
// json.dumps writes them (", " and ": " separators).
func TestRPCReplyUnmarshalPython(t *testing.T) {
	tests := []struct {
		in     string
		want   RPCReply
		rawVal string
	}{
		{
			in:     `{"method": "session_manage", "id": 3, "pattern": "service.VideoRehabService.rpc", "status": "OK", "return_value": {"status": "started", "session": {"id_session": 12, "session_participants_uuids": ["p1"]}}}`,
			want:   RPCReply{Method: "session_manage", ID: 3, Pattern: "service.VideoRehabService.rpc", Status: "OK"},
			rawVal: `{"status":"started","session":{"id_session":12,"session_participants_uuids":["p1"]}}`,
		},
		{
			in:     `{"method": "session_manage", "id": 4, "pattern": "service.VideoRehabService.rpc", "status": "Error", "return_value": null}`,
			want:   RPCReply{Method: "session_manage", ID: 4, Pattern: "service.VideoRehabService.rpc", Status: "Error"},
			rawVal: `null`,
		},
	}
	for _, tt := range tests {
		var got RPCReply
		if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
			t.Fatal(err)
		}
		raw := got.ReturnValue
		got.ReturnValue = nil
		if got.Method != tt.want.Method || got.ID != tt.want.ID || got.Pattern != tt.want.Pattern || got.Status != tt.want.Status {
			t.Errorf("got %+v, want %+v", got, tt.want)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			t.Fatal(err)
		}
		if compact.String() != tt.rawVal {
			t.Errorf("return_value = %s, want %s", compact.String(), tt.rawVal)
		}
	}
}

func TestRPCReplyIDRoundTrip(t *testing.T) {
	req := NewRPCCall("m", 12345, "r")
	r := NewRPCErrorReply(req, "p")
	if r.ID != 12345 || r.Pattern != "p" || r.Method != "m" {
		t.Fatalf("reply = %+v", r)
	}
}
