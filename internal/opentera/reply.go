package opentera

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Reply is session_manage's reply as OpenTera's service writes it: the
// session in the main server's database-model shape (TeraSession.to_json)
// with what the service adds while it runs (spec §3.3-3.7).
type Reply struct {
	Status    string `json:"status"`
	ErrorText string `json:"error_text,omitempty"`
	Session   object `json:"session,omitempty"`
}

// rowSource gives the main server's JSON of a session (nil: none known).
type rowSource interface {
	row(ctx context.Context, id int64) map[string]json.RawMessage
}

// render turns a Manager reply into OpenTera's. A running session has the
// shape of OpenTera's session_info (member lists as uuids, events, key,
// links); a stopped one the database's JSON, as OpenTera's stop answers.
func (s *Service) render(ctx context.Context, r *session.Reply) *Reply {
	out := &Reply{Status: r.Status, ErrorText: r.ErrorText}
	v := r.Session
	if v == nil {
		return out
	}
	var row map[string]json.RawMessage
	if s.rows != nil {
		row = s.rows.row(ctx, v.ID)
	}
	running := v.Key != ""
	out.Session = dbObject(v, row, running)
	if running {
		out.Session = append(out.Session, runtimeFields(v)...)
	}
	return out
}

// dbObject is TeraSession.to_json(): the columns in the order Python's
// dir() lists them, the member lists, the creator's name and uuid, the
// counts, then any other column the main server sent. row (may be nil)
// is the main server's latest JSON of the session; the Manager's view
// wins for what rehabrtc changes (status, duration, members while running).
func dbObject(v *session.View, row map[string]json.RawMessage, running bool) object {
	o := object{
		{"id_creator_device", v.CreatorDevice},
		{"id_creator_participant", v.CreatorPart},
		{"id_creator_service", v.CreatorService},
		{"id_creator_user", v.CreatorUser},
		{"id_session", v.ID},
		{"id_session_type", v.TypeID},
		{"session_comments", rowOr(row, "session_comments", nil)},
		{"session_duration", v.Duration},
		{"session_name", v.Name},
		{"session_parameters", rowOr(row, "session_parameters", v.Parameters)},
		{"session_start_datetime", rowOr(row, "session_start_datetime", isoformat(v.StartTime))},
		{"session_status", v.Status},
		{"session_uuid", v.UUID},
	}
	lists := []struct {
		key  string
		kind session.Kind
		ids  []string
	}{
		{"session_participants", session.KindParticipant, v.Participants},
		{"session_users", session.KindUser, v.Users},
		{"session_devices", session.KindDevice, v.Devices},
	}
	for _, l := range lists {
		switch {
		case running:
			o = append(o, field{l.key, nonNil(l.ids)}) // OpenTera's service replaces them by uuids
		case row[l.key] != nil:
			o = append(o, field{l.key, row[l.key]})
		default:
			o = append(o, field{l.key, memberObjects(l.kind, l.ids)})
		}
	}
	o = append(o, creatorFields(v, row)...)
	o = append(o, field{"session_assets_count", rowOr(row, "session_assets_count", 0)},
		field{"session_tests_count", rowOr(row, "session_tests_count", 0)})
	return append(o, otherColumns(o, row)...)
}

// creatorFields are session_creator_<kind> (name) and _uuid, present only
// for the creator's kind, as to_json writes them. Without a row, what
// rehabrtc knows: the uuid, and the name if a main server once told it
// ("" otherwise, so the keys stay OpenTera's).
func creatorFields(v *session.View, row map[string]json.RawMessage) object {
	var o object
	for _, k := range []string{"user", "device", "participant", "service"} {
		name, uuid := "session_creator_"+k, "session_creator_"+k+"_uuid"
		if row[uuid] != nil {
			o = append(o, field{name, rowOr(row, name, "")}, field{uuid, row[uuid]})
		}
	}
	if o != nil || row != nil || v.CreatorUUID == "" {
		return o
	}
	kind := creatorKind(v)
	if kind == "" {
		return nil
	}
	return object{{"session_creator_" + kind, v.CreatorName}, {"session_creator_" + kind + "_uuid", v.CreatorUUID}}
}

// creatorKind is the kind of the creator a view names by id.
func creatorKind(v *session.View) string {
	switch {
	case v.CreatorUser != nil:
		return "user"
	case v.CreatorPart != nil:
		return "participant"
	case v.CreatorDevice != nil:
		return "device"
	case v.CreatorService != nil:
		return "service"
	}
	return ""
}

// otherColumns passes on, sorted, what the main server sent that o does
// not have (a newer OpenTera's columns), except what runtimeFields writes.
func otherColumns(o object, row map[string]json.RawMessage) object {
	var extra object
	for _, k := range slices.Sorted(maps.Keys(row)) {
		if !o.has(k) && k != "session_events" {
			extra = append(extra, field{k, row[k]})
		}
	}
	return extra
}

// runtimeFields are what OpenTera's service adds to a running session
// (session_events, session_key, session_creator_uuid, session_url_*),
// then rehabrtc's own: personal links, port and connected peers.
func runtimeFields(v *session.View) object {
	events := make([]object, 0, len(v.Events))
	for _, e := range v.Events {
		events = append(events, eventObject(e))
	}
	var creator any // null when unknown, as OpenTera's
	if v.CreatorUUID != "" {
		creator = v.CreatorUUID
	}
	o := object{
		{"session_events", events},
		{"session_key", v.Key},
		{"session_creator_uuid", creator},
		{"session_url_users", v.URLUsers},
		{"session_url_participants", v.URLParticipants},
		{"session_url_devices", v.URLDevices},
		{"session_invitations", v.Invitations},
		{"session_port", v.Port},
	}
	if len(v.Peers) > 0 {
		o = append(o, field{"session_peers", v.Peers})
	}
	return o
}

// eventObject is TeraSessionEvent.to_json().
func eventObject(e session.Event) object {
	var text any
	if e.Text != "" {
		text = e.Text
	}
	return object{
		{"id_session", e.Session},
		{"id_session_event", e.ID},
		{"id_session_event_type", e.Type},
		{"session_event_context", e.Context},
		{"session_event_datetime", isoformat(e.Time)},
		{"session_event_text", text},
	}
}

// memberObjects are the database's member entries for uuids known without
// a main server: {"<kind>_uuid": …} (ids and names are the main server's).
func memberObjects(kind session.Kind, ids []string) []object {
	out := make([]object, 0, len(ids))
	for _, u := range ids {
		out = append(out, object{{string(kind) + "_uuid", u}})
	}
	return out
}

func rowOr(row map[string]json.RawMessage, key string, def any) any {
	if v, ok := row[key]; ok {
		return v
	}
	return def
}

// isoformat writes t as the main server's datetimes (Python's isoformat()
// of an aware datetime): local time with its offset, microseconds only
// when not zero.
func isoformat(t time.Time) string {
	t = t.Local().Truncate(time.Microsecond)
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05-07:00")
	}
	return t.Format("2006-01-02T15:04:05.000000-07:00")
}

// field and object write a JSON object with its keys in a chosen order.
type field struct {
	k string
	v any
}

type object []field

func (o object) has(k string) bool {
	return slices.ContainsFunc(o, func(f field) bool { return f.k == k })
}

func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
