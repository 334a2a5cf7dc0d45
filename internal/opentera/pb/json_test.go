package pb

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// pythonClientJSON is what the main server sends on a participant websocket
// for a TeraEvent carrying a JoinSessionEvent, a LeaveSessionEvent and a
// JoinSessionReplyEvent: Python protobuf's
// json_format.MessageToJson(TeraMessage, including_default_value_fields=True)
// (the older name of always_print_fields_with_no_presence), verbatim.
const pythonClientJSON = `{
  "message": {
    "@type": "type.googleapis.com/opentera.protobuf.TeraEvent",
    "header": {
      "version": 1,
      "time": 1700000000.5,
      "topic": "websocket.participant.p1.events"
    },
    "events": [
      {
        "@type": "type.googleapis.com/opentera.protobuf.JoinSessionEvent",
        "sessionUrl": "https://h/s?key=k",
        "sessionCreatorName": "Dr X",
        "sessionUuid": "s-1",
        "sessionParticipants": [
          "p1"
        ],
        "sessionParameters": "{}",
        "serviceUuid": "svc",
        "sessionUsers": [],
        "sessionDevices": [],
        "joinMsg": ""
      },
      {
        "@type": "type.googleapis.com/opentera.protobuf.LeaveSessionEvent",
        "sessionUuid": "s-1",
        "leavingParticipants": [
          "p1"
        ],
        "serviceUuid": "",
        "leavingUsers": [],
        "leavingDevices": []
      },
      {
        "@type": "type.googleapis.com/opentera.protobuf.JoinSessionReplyEvent",
        "sessionUuid": "s-1",
        "participantUuid": "p1",
        "joinReply": "REPLY_ACCEPTED",
        "userUuid": "",
        "deviceUuid": "",
        "replyMsg": ""
      }
    ]
  }
}`

func clientTeraEvent(t *testing.T) *TeraEvent {
	t.Helper()
	te, err := NewTeraEvent("websocket.participant.p1.events", goldenNow,
		&JoinSessionEvent{
			SessionUrl:          "https://h/s?key=k",
			SessionCreatorName:  "Dr X",
			SessionUuid:         "s-1",
			SessionParticipants: []string{"p1"},
			SessionParameters:   "{}",
			ServiceUuid:         "svc",
		},
		&LeaveSessionEvent{SessionUuid: "s-1", LeavingParticipants: []string{"p1"}},
		&JoinSessionReplyEvent{SessionUuid: "s-1", ParticipantUuid: "p1", JoinReply: JoinSessionReplyEvent_REPLY_ACCEPTED},
	)
	if err != nil {
		t.Fatal(err)
	}
	return te
}

func decodeGeneric(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return v
}

// TestClientJSONMatchesPython checks MarshalClientJSON against the JSON the
// Python main server produces: same keys (camelCase, default values
// included), same values.
func TestClientJSONMatchesPython(t *testing.T) {
	got, err := MarshalClientJSON(clientTeraEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	if g, w := decodeGeneric(t, got), decodeGeneric(t, []byte(pythonClientJSON)); !reflect.DeepEqual(g, w) {
		t.Fatalf("JSON differs from Python's\n got %s\nwant %s", got, pythonClientJSON)
	}
}

// TestClientJSONFields reads the JSON the way the participant web page does.
func TestClientJSONFields(t *testing.T) {
	got, err := MarshalClientJSON(clientTeraEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	msg := decodeGeneric(t, got)["message"].(map[string]any)
	events := msg["events"].([]any)
	join := events[0].(map[string]any)
	leave := events[1].(map[string]any)
	reply := events[2].(map[string]any)

	tests := []struct {
		name string
		got  any
		want any
	}{
		{"message.@type", msg["@type"], "type.googleapis.com/opentera.protobuf.TeraEvent"},
		{"header.topic", msg["header"].(map[string]any)["topic"], "websocket.participant.p1.events"},
		{"join @type", join["@type"], "type.googleapis.com/opentera.protobuf.JoinSessionEvent"},
		{"sessionUrl", join["sessionUrl"], "https://h/s?key=k"},
		{"sessionParticipants", join["sessionParticipants"], []any{"p1"}},
		{"sessionDevices (empty, still present)", join["sessionDevices"], []any{}},
		{"joinMsg (empty, still present)", join["joinMsg"], ""},
		{"leave @type", leave["@type"], "type.googleapis.com/opentera.protobuf.LeaveSessionEvent"},
		{"leavingParticipants", leave["leavingParticipants"], []any{"p1"}},
		{"joinReply", reply["joinReply"], "REPLY_ACCEPTED"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	for _, ev := range events {
		for k := range ev.(map[string]any) {
			if strings.Contains(k, "_") {
				t.Errorf("snake_case key %q in client JSON", k)
			}
		}
	}
}

// TestDecodePythonClientJSON parses the Python JSON back into messages.
func TestDecodePythonClientJSON(t *testing.T) {
	var tm TeraMessage
	if err := protojson.Unmarshal([]byte(pythonClientJSON), &tm); err != nil {
		t.Fatal(err)
	}
	want, err := anypb.New(clientTeraEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	var got, wantTE TeraEvent
	if err := tm.GetMessage().UnmarshalTo(&got); err != nil {
		t.Fatal(err)
	}
	if err := want.UnmarshalTo(&wantTE); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, &wantTE) {
		t.Fatalf("got %v\nwant %v", &got, &wantTE)
	}
}

// TestJoinSessionEventJSONNames pins the proto3-JSON name of every field.
func TestJoinSessionEventJSONNames(t *testing.T) {
	want := map[string]string{
		"session_url":          "sessionUrl",
		"session_creator_name": "sessionCreatorName",
		"session_uuid":         "sessionUuid",
		"session_participants": "sessionParticipants",
		"session_users":        "sessionUsers",
		"session_devices":      "sessionDevices",
		"join_msg":             "joinMsg",
		"session_parameters":   "sessionParameters",
		"service_uuid":         "serviceUuid",
	}
	fields := (&JoinSessionEvent{}).ProtoReflect().Descriptor().Fields()
	if fields.Len() != len(want) {
		t.Fatalf("JoinSessionEvent has %d fields, want %d", fields.Len(), len(want))
	}
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		if got := f.JSONName(); got != want[string(f.Name())] {
			t.Errorf("%s: JSON name %q, want %q", f.Name(), got, want[string(f.Name())])
		}
	}
}
