package opentera

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// dbSession is a session as the main server's to_json() writes it; only
// the fields read.
type dbSession struct {
	ID            int64           `json:"id_session"`
	UUID          string          `json:"session_uuid"`
	Name          string          `json:"session_name"`
	TypeID        int64           `json:"id_session_type"`
	CreatorUser   *int64          `json:"id_creator_user"`
	CreatorPart   *int64          `json:"id_creator_participant"`
	CreatorDevice *int64          `json:"id_creator_device"`
	CreatorSvc    *int64          `json:"id_creator_service"`
	StartTime     string          `json:"session_start_datetime"`
	Duration      int64           `json:"session_duration"`
	Status        int             `json:"session_status"`
	Parameters    json.RawMessage `json:"session_parameters"`
	Users         []dbMember      `json:"session_users"`
	Participants  []dbMember      `json:"session_participants"`
	Devices       []dbMember      `json:"session_devices"`
	Events        []dbEvent       `json:"session_events"`

	CUserName, CPartName, CDeviceName, CSvcName string `json:"-"`
	CUserUUID, CPartUUID, CDeviceUUID, CSvcUUID string `json:"-"`
}

// UnmarshalJSON also reads the session_creator_<kind>[_uuid] fields.
func (d *dbSession) UnmarshalJSON(b []byte) error {
	type plain dbSession
	var c struct {
		plain
		CUserName   string `json:"session_creator_user"`
		CUserUUID   string `json:"session_creator_user_uuid"`
		CPartName   string `json:"session_creator_participant"`
		CPartUUID   string `json:"session_creator_participant_uuid"`
		CDeviceName string `json:"session_creator_device"`
		CDeviceUUID string `json:"session_creator_device_uuid"`
		CSvcName    string `json:"session_creator_service"`
		CSvcUUID    string `json:"session_creator_service_uuid"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	*d = dbSession(c.plain)
	d.CUserName, d.CPartName, d.CDeviceName, d.CSvcName = c.CUserName, c.CPartName, c.CDeviceName, c.CSvcName
	d.CUserUUID, d.CPartUUID, d.CDeviceUUID, d.CSvcUUID = c.CUserUUID, c.CPartUUID, c.CDeviceUUID, c.CSvcUUID
	return nil
}

// dbMember is one entry of session_users/_participants/_devices: an object
// with a <kind>_uuid field in the database's JSON, or a plain uuid.
// dbMember is one member as the database lists it: a uuid, or an object
// with the uuid and the display name (user_name, participant_name,
// device_name).
type dbMember struct{ UUID, Name string }

func (m *dbMember) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &m.UUID)
	}
	var o struct {
		User        string `json:"user_uuid"`
		Participant string `json:"participant_uuid"`
		Device      string `json:"device_uuid"`
		UserName    string `json:"user_name"`
		PartName    string `json:"participant_name"`
		DeviceName  string `json:"device_name"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	m.UUID = o.User + o.Participant + o.Device
	m.Name = session.DisplayName(o.UserName + o.PartName + o.DeviceName)
	return nil
}

// dbEvent is a session event as the database writes it.
type dbEvent struct {
	ID      int64  `json:"id_session_event"`
	Session int64  `json:"id_session"`
	Type    int    `json:"id_session_event_type"`
	Time    string `json:"session_event_datetime"`
	Text    string `json:"session_event_text,omitempty"`
	Context string `json:"session_event_context"`
}

// decodeLast decodes an answer that is either one object or a list of them
// (the main server answers [session.to_json()]); like OpenTera, the last
// element of a list wins. ok is false for an empty list.
func decodeLast[T any](raw json.RawMessage) (v T, ok bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var list []T
		if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
			return v, false, err
		}
		return list[len(list)-1], true, nil
	}
	err = json.Unmarshal(raw, &v)
	return v, err == nil, err
}

// record converts a database session into a record that is not running.
func (d *dbSession) record() *session.Record {
	r := &session.Record{
		ID: d.ID, UUID: d.UUID, Name: d.Name, TypeID: d.TypeID,
		Duration: d.Duration, Status: session.Status(d.Status),
		Parameters: readParameters(d.Parameters),
		Members:    session.Members{Users: uuids(d.Users), Participants: uuids(d.Participants), Devices: uuids(d.Devices)},
		Events:     []session.Event{},
	}
	r.StartTime, _ = parseTime(d.StartTime)
	r.Creator = d.creator()
	d.names(r)
	for _, e := range d.Events {
		r.Events = append(r.Events, e.event())
	}
	return r
}

// names adds to r the display names the main server lists with its
// members, where r has none: OpenTera's names are the default, a name a
// clinician gave through this service stays.
func (d *dbSession) names(r *session.Record) {
	for _, ms := range [][]dbMember{d.Users, d.Participants, d.Devices} {
		for _, m := range ms {
			u, ok := session.NormalizeUUID(m.UUID)
			if !ok || m.Name == "" {
				continue
			}
			if _, have := r.Invitees[u]; have {
				continue
			}
			if r.Invitees == nil {
				r.Invitees = map[string]session.Invitee{}
			}
			r.Invitees[u] = session.Invitee{Name: m.Name}
		}
	}
}

// creator is the session's creator: ids, the uuid in OpenTera's order
// (user, participant, device, service) and the display name that
// send_join_message picks (the same order wins).
func (d *dbSession) creator() session.Creator {
	c := session.Creator{UserID: d.CreatorUser, ParticipantID: d.CreatorPart, DeviceID: d.CreatorDevice, ServiceID: d.CreatorSvc}
	for _, cand := range []struct {
		kind       session.Kind
		uuid, name string
	}{
		{session.KindUser, d.CUserUUID, d.CUserName},
		{session.KindParticipant, d.CPartUUID, d.CPartName},
		{session.KindDevice, d.CDeviceUUID, d.CDeviceName},
		{"service", d.CSvcUUID, d.CSvcName},
	} {
		if cand.uuid != "" && c.UUID == "" {
			c.UUID, c.Kind = cand.uuid, cand.kind
		}
		if cand.name != "" && c.Name == "" {
			c.Name = cand.name
		}
	}
	if u, ok := session.NormalizeUUID(c.UUID); ok {
		c.UUID = u
	}
	return c
}

func (e dbEvent) event() session.Event {
	t, _ := parseTime(e.Time)
	return session.Event{ID: e.ID, Session: e.Session, Type: session.EventType(e.Type), Time: t, Text: e.Text, Context: e.Context}
}

func uuids(ms []dbMember) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if u, ok := session.NormalizeUUID(m.UUID); ok {
			out = append(out, u)
		}
	}
	return out
}

// readParameters turns session_parameters back into JSON: the database
// keeps a string, which to_json parses when it is JSON.
func readParameters(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return append(json.RawMessage(nil), raw...)
}

// writeParameters renders parameters for the database's string column: a
// JSON string is sent as its text, anything else as compact JSON text, and
// nothing as null. (OpenTera sends a dict, which the String column cannot
// store; the main server's to_json parses the text back into an object.)
func writeParameters(raw json.RawMessage) *string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return &s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return nil
	}
	s = buf.String()
	return &s
}

// eventTimeLayout is Python's isoformat() with microseconds and offset,
// which the main server's fromisoformat reads.
const eventTimeLayout = "2006-01-02T15:04:05.000000-07:00"

// formatTime writes t in local time with its offset: the same wall clock as
// OpenTera's naive str(datetime.now()), but unambiguous.
func formatTime(t time.Time) string { return t.Local().Format(eventTimeLayout) }

// parseTime reads the database's datetimes: isoformat() with or without
// offset, "T" or space; naive values are local time, as Python writes them.
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
