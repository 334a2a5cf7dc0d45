package session

import (
	"encoding/json"
	"strconv"
	"time"
)

// Kind is the kind of an invitee, as OpenTera names them.
type Kind string

// The three kinds of invitee. They are also the roles inside a session.
const (
	KindUser        Kind = "user"
	KindParticipant Kind = "participant"
	KindDevice      Kind = "device"
)

// Kinds lists every kind, in OpenTera's order.
var Kinds = [...]Kind{KindUser, KindParticipant, KindDevice}

// Valid reports whether k is one of the three kinds.
func (k Kind) Valid() bool {
	return k == KindUser || k == KindParticipant || k == KindDevice
}

// label is the prefix OpenTera writes in session event texts.
func (k Kind) label() string {
	switch k {
	case KindUser:
		return "User"
	case KindParticipant:
		return "Participant"
	default:
		return "Device"
	}
}

// Status is OpenTera's session_status.
type Status int

// OpenTera's TeraSessionStatus values.
const (
	StatusNotStarted Status = 0
	StatusInProgress Status = 1
	StatusCompleted  Status = 2
	StatusCancelled  Status = 3
	StatusTerminated Status = 4
)

// String names a status in words, for people (the CLI, logs).
func (s Status) String() string {
	switch s {
	case StatusNotStarted:
		return "not started"
	case StatusInProgress:
		return "in progress"
	case StatusCompleted:
		return "completed"
	case StatusCancelled:
		return "cancelled"
	case StatusTerminated:
		return "terminated"
	}
	return "status " + strconv.Itoa(int(s))
}

// EventType is OpenTera's id_session_event_type.
type EventType int

// The session event types this service writes.
const (
	EventStart       EventType = 3
	EventStop        EventType = 4
	EventJoin        EventType = 12
	EventLeave       EventType = 13
	EventJoinRefused EventType = 14
)

// Event is one entry of a session's history.
type Event struct {
	ID      int64     `json:"id_session_event"`
	Session int64     `json:"id_session"`
	Type    EventType `json:"id_session_event_type"`
	Time    time.Time `json:"session_event_datetime"`
	Text    string    `json:"session_event_text,omitempty"`
	Context string    `json:"session_event_context"`
}

// Members holds the uuids invited to a session, per kind.
type Members struct {
	Users        []string `json:"session_users"`
	Participants []string `json:"session_participants"`
	Devices      []string `json:"session_devices"`
}

// list returns the member list of one kind, for reading or writing.
func (m *Members) list(k Kind) *[]string {
	switch k {
	case KindUser:
		return &m.Users
	case KindParticipant:
		return &m.Participants
	default:
		return &m.Devices
	}
}

// Has reports whether uuid is a member of kind k.
func (m *Members) Has(k Kind, uuid string) bool {
	for _, u := range *m.list(k) {
		if u == uuid {
			return true
		}
	}
	return false
}

// Creator identifies who started a session. The ids are OpenTera's database
// ids; the uuids name the creator for presence and invite_reply.
type Creator struct {
	UserID        *int64 `json:"id_creator_user"`
	ParticipantID *int64 `json:"id_creator_participant"`
	DeviceID      *int64 `json:"id_creator_device"`
	ServiceID     *int64 `json:"id_creator_service"`
	UUID          string `json:"session_creator_uuid"`
	Kind          Kind   `json:"session_creator_kind,omitempty"`
	Name          string `json:"session_creator_name,omitempty"` // display name, when a backend tells it
}

// Token is one access key of a running session. UUID is empty for the
// kind-level keys of session_url_users/_participants/_devices, which admit
// any uuid currently invited in that kind.
type Token struct {
	Kind Kind   `json:"kind"`
	UUID string `json:"uuid,omitempty"`
	Key  string `json:"key"`
}

// Record is everything kept about one session. It is persisted whole by the
// Store, so a restart rebuilds running sessions from it.
type Record struct {
	ID         int64           `json:"id_session"`
	UUID       string          `json:"session_uuid"`
	Name       string          `json:"session_name"`
	TypeID     int64           `json:"id_session_type"`
	ServiceID  int64           `json:"id_service"`
	Creator    Creator         `json:"creator"`
	StartTime  time.Time       `json:"session_start_datetime"`
	Duration   int64           `json:"session_duration"` // seconds, accumulated over restarts
	Status     Status          `json:"session_status"`
	Parameters json.RawMessage `json:"session_parameters,omitempty"`
	// TypeConfig is the session type's configuration as OpenTera holds it
	// (its session_type_config), read when the session is created; its
	// media_mode is the type's media path. Empty without OpenTera.
	TypeConfig json.RawMessage `json:"session_type_config,omitempty"`
	Members    Members         `json:"members"`
	Events     []Event         `json:"session_events"`
	// Invitees holds the display names and languages of members (and the
	// creator), by uuid: personal data, purged after the retention.
	Invitees map[string]Invitee `json:"invitees,omitempty"`
	// Forgotten: the names of this stopped session were purged.
	Forgotten bool `json:"personal_data_forgotten,omitempty"`
	// MediaOnSFU: this running session's media went through the server
	// (its mode is auto and it had moved there) with three or more people
	// in it when last recorded, so that after a restart its pages come
	// back on the server at once instead of meshing first and switching
	// again. Cleared when fewer than three remain and when it stops.
	MediaOnSFU bool `json:"media_on_sfu,omitempty"`

	// Runtime, meaningful while Running.
	Running   bool      `json:"running"`
	Port      int       `json:"port,omitempty"`
	LastStart time.Time `json:"last_start"`
	Tokens    []Token   `json:"tokens,omitempty"`
}

// addEvent appends an event with the next id of this session.
func (r *Record) addEvent(t EventType, at time.Time, text, context string) {
	id := int64(1)
	if n := len(r.Events); n > 0 {
		id = r.Events[n-1].ID + 1
	}
	r.Events = append(r.Events, Event{ID: id, Session: r.ID, Type: t, Time: at, Text: text, Context: context})
}

// clone returns a deep copy, so callers outside the Manager never share
// its state.
func (r *Record) clone() *Record {
	c := *r
	c.Parameters = append(json.RawMessage(nil), r.Parameters...)
	c.TypeConfig = append(json.RawMessage(nil), r.TypeConfig...)
	c.Members = Members{
		Users:        append([]string{}, r.Members.Users...),
		Participants: append([]string{}, r.Members.Participants...),
		Devices:      append([]string{}, r.Members.Devices...),
	}
	c.Events = append([]Event{}, r.Events...)
	c.Tokens = append([]Token(nil), r.Tokens...)
	if r.Invitees != nil {
		c.Invitees = make(map[string]Invitee, len(r.Invitees))
		for u, inv := range r.Invitees {
			c.Invitees[u] = inv
		}
	}
	return &c
}
