package opentera

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

func TestParseTime(t *testing.T) {
	want := time.Date(2025, 1, 21, 14, 3, 4, 123456000, time.UTC)
	for _, s := range []string{
		"2025-01-21T14:03:04.123456+00:00",
		"2025-01-21T16:03:04.123456+02:00",
		"2025-01-21 14:03:04.123456+00:00",
		"2025-01-21T14:03:04.123456Z",
		want.In(time.Local).Format("2006-01-02T15:04:05.000000"), // naive: local time
		want.In(time.Local).Format("2006-01-02 15:04:05.000000"),
	} {
		if got, ok := parseTime(s); !ok || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v", s, got, ok)
		}
	}
	if _, ok := parseTime("yesterday"); ok {
		t.Error("parseTime accepted garbage")
	}
	if got, _ := parseTime(formatTime(want)); !got.Equal(want) {
		t.Errorf("formatTime does not round-trip: %s", formatTime(want))
	}
}

func TestParameters(t *testing.T) {
	for _, tc := range []struct {
		in    string
		write string // "" = null
		read  string
	}{
		{`{"a": 1}`, `{"a":1}`, `{"a": 1}`},
		{`"{\"a\":1}"`, `{"a":1}`, `{"a":1}`},
		{`"plain text"`, `plain text`, `"plain text"`},
		{`null`, ``, ``},
		{``, ``, ``},
	} {
		w := writeParameters(json.RawMessage(tc.in))
		if (w == nil) != (tc.write == "") || (w != nil && *w != tc.write) {
			t.Errorf("writeParameters(%s) = %v", tc.in, w)
		}
		if got := string(readParameters(json.RawMessage(tc.in))); got != tc.read {
			t.Errorf("readParameters(%s) = %s, want %s", tc.in, got, tc.read)
		}
	}
}

func TestDBSessionRecord(t *testing.T) {
	raw := `[{"id_session": 4, "session_uuid": "5e551000-0000-4000-8000-000000000004", "session_name": "Knee [2025.4]",
	  "id_session_type": 2, "id_creator_user": 1, "id_creator_participant": null, "id_creator_device": null, "id_creator_service": 3,
	  "session_start_datetime": "2025-01-21T14:03:04.123456+00:00", "session_duration": 600, "session_status": 2,
	  "session_parameters": {"x": true}, "session_creator_user": "Dr T", "session_creator_user_uuid": "AAAAAAAA-0000-4000-8000-000000000001",
	  "session_creator_service": "Télé-réadaptation vidéo", "session_creator_service_uuid": "00000000-0000-4000-8000-00000000a5e1",
	  "session_users": [{"id_user": 1, "user_uuid": "aaaaaaaa-0000-4000-8000-000000000001", "user_name": "Dr T"}],
	  "session_participants": [{"id_participant": 1, "participant_uuid": "bbbbbbbb-0000-4000-8000-000000000001", "participant_name": "Mme\u202e Gagnon\u0007"}],
	  "session_devices": [],
	  "session_events": [{"id_session_event": 9, "id_session": 4, "id_session_event_type": 3,
	    "session_event_datetime": "2025-01-21T14:03:04.123456+00:00", "session_event_context": "VideoRehabService"}]}]`
	db, ok, err := decodeLast[dbSession](json.RawMessage(raw))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	r := db.record()
	if r.ID != 4 || r.Name != "Knee [2025.4]" || r.Duration != 600 || r.Status != session.StatusCompleted || r.Running ||
		string(r.Parameters) != `{"x": true}` || len(r.Events) != 1 || r.Events[0].ID != 9 {
		t.Fatalf("record %+v", r)
	}
	c := r.Creator
	if c.UUID != "aaaaaaaa-0000-4000-8000-000000000001" || c.Kind != session.KindUser || c.Name != "Dr T" || *c.ServiceID != 3 {
		t.Fatalf("creator %+v", c)
	}
	if r.Members.Users[0] != "aaaaaaaa-0000-4000-8000-000000000001" || len(r.Members.Participants) != 1 || len(r.Members.Devices) != 0 {
		t.Fatalf("members %+v", r.Members)
	}
	// The main server's names become the invitees' names, made fit to show.
	if r.Invitees["aaaaaaaa-0000-4000-8000-000000000001"].Name != "Dr T" || r.Invitees["bbbbbbbb-0000-4000-8000-000000000001"].Name != "Mme Gagnon" {
		t.Fatalf("invitees %+v", r.Invitees)
	}
	if _, ok, _ := decodeLast[dbSession](json.RawMessage(`[]`)); ok {
		t.Fatal("an empty list decoded as a session")
	}
}

func TestSalvage(t *testing.T) {
	full, _ := proto.Marshal(pb.NewRPCCall("session_manage", 7, "RedisRPCClient.r", "{}"))
	for cut := range len(full) {
		m := salvage(full[:cut])
		if m.Method != "" && m.Method != "session_manage" || m.ReplyTo != "" && m.ReplyTo != "RedisRPCClient.r" {
			t.Fatalf("cut %d: %+v", cut, m)
		}
	}
	if m := salvage(full); m.ReplyTo != "RedisRPCClient.r" || m.Id != 7 {
		t.Fatalf("whole message: %+v", m)
	}
}

func FuzzSalvage(f *testing.F) {
	full, _ := proto.Marshal(pb.NewRPCCall("session_manage", 7, "RedisRPCClient.r", "{}"))
	f.Add(full)
	f.Add([]byte{0x12, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := salvage(b)
		if len(m.ReplyTo) > len(b) || len(m.Method) > len(b) {
			t.Fatalf("salvaged more than the input: %+v", m)
		}
	})
}

// presenceOf must ignore what it does not know, without panicking.
func FuzzPresence(f *testing.F) {
	ev, _ := pb.WrapTeraEvent(UserManagerEvents, &pb.UserEvent{UserUuid: "aaaaaaaa-0000-4000-8000-000000000001", Type: pb.UserEvent_USER_CONNECTED}, time.Now())
	f.Add(ev)
	f.Fuzz(func(t *testing.T, b []byte) {
		var te pb.TeraEvent
		if proto.Unmarshal(b, &te) != nil {
			return
		}
		for _, a := range te.GetEvents() {
			if id, what := presenceOf(a); what != presenceOther && !id.Kind.Valid() {
				t.Fatalf("presence of unknown kind %+v", id)
			}
		}
	})
}

// TestKeepNames: re-reading a stopped session from the main server keeps
// the names and languages given through this service, and drops those of
// people the main server no longer lists.
func TestKeepNames(t *testing.T) {
	const a, b, gone = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000001", "cccccccc-0000-4000-8000-000000000001"
	rec := &session.Record{Members: session.Members{Users: []string{a}, Participants: []string{b}},
		Invitees: map[string]session.Invitee{a: {Name: "Dr T (main server)"}}}
	local := &session.Record{Creator: session.Creator{Name: "Dr T"},
		Invitees: map[string]session.Invitee{b: {Name: "Mme Gagnon", Lang: "fr"}, gone: {Name: "Removed"}}}
	keepNames(rec, local)
	want := map[string]session.Invitee{a: {Name: "Dr T (main server)"}, b: {Name: "Mme Gagnon", Lang: "fr"}}
	if len(rec.Invitees) != len(want) || rec.Invitees[a] != want[a] || rec.Invitees[b] != want[b] || rec.Creator.Name != "Dr T" {
		t.Fatalf("invitees %+v, creator %q", rec.Invitees, rec.Creator.Name)
	}
}
