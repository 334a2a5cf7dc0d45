package session

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"
)

// URLs builds the public session links:
// {scheme}://{host}:{port}/webrtc/{session port}/{users|participants|devices}?key={key}.
type URLs struct {
	Scheme string
	Host   string
	Port   int
}

// Session returns the link of one kind of page with one key.
func (u URLs) Session(port int, k Kind, key string) string {
	return fmt.Sprintf("%s://%s/webrtc/%d/%ss?key=%s", u.Scheme, net.JoinHostPort(u.Host, strconv.Itoa(u.Port)), port, k, key)
}

// Invitation is one invitee's personal link.
type Invitation struct {
	Kind Kind   `json:"kind"`
	UUID string `json:"uuid"`
	URL  string `json:"session_url"`
}

// View is a session as the API and the RPC show it: OpenTera's session_info
// shape, plus session_invitations, session_port and session_peers.
type View struct {
	ID              int64           `json:"id_session"`
	UUID            string          `json:"session_uuid"`
	Name            string          `json:"session_name"`
	TypeID          int64           `json:"id_session_type"`
	ServiceID       int64           `json:"id_service"`
	CreatorUser     *int64          `json:"id_creator_user"`
	CreatorPart     *int64          `json:"id_creator_participant"`
	CreatorDevice   *int64          `json:"id_creator_device"`
	CreatorService  *int64          `json:"id_creator_service"`
	CreatorUUID     string          `json:"session_creator_uuid"`
	StartTime       time.Time       `json:"session_start_datetime"`
	Duration        int64           `json:"session_duration"`
	Status          Status          `json:"session_status"`
	Parameters      json.RawMessage `json:"session_parameters"`
	Users           []string        `json:"session_users"`
	Participants    []string        `json:"session_participants"`
	Devices         []string        `json:"session_devices"`
	Events          []Event         `json:"session_events"`
	Key             string          `json:"session_key,omitempty"`
	URLUsers        string          `json:"session_url_users,omitempty"`
	URLParticipants string          `json:"session_url_participants,omitempty"`
	URLDevices      string          `json:"session_url_devices,omitempty"`
	Invitations     []Invitation    `json:"session_invitations,omitempty"`
	Port            int             `json:"session_port,omitempty"`
	Peers           []Peer          `json:"session_peers,omitempty"`
	// Personal data (docs/security.md): the creator's display name (given
	// at start, or told by OpenTera's main server) and the invitees' names
	// and languages by uuid. Only API-key holders and OpenTera see a View.
	CreatorName string             `json:"session_creator_name,omitempty"`
	Invitees    map[string]Invitee `json:"session_invitees,omitempty"`

	// For adapters, not part of the JSON: whether the endpoint answers
	// (invitations may go out).
	Ready bool `json:"-"`
}

// peers asks l's endpoint who is connected (nil when not running). It may
// ask a child process: never call it holding mu.
func (m *Manager) peers(l *live) []Peer {
	if l == nil || l.ep == nil {
		return nil
	}
	return l.ep.Peers()
}

// view renders rec; l is its live state, nil when not running, and peers
// who is connected to it. It does no I/O.
func (m *Manager) view(rec *Record, l *live, peers []Peer) *View {
	c := rec.clone()
	v := &View{
		ID: c.ID, UUID: c.UUID, Name: c.Name, TypeID: c.TypeID, ServiceID: c.ServiceID,
		CreatorUser: c.Creator.UserID, CreatorPart: c.Creator.ParticipantID,
		CreatorDevice: c.Creator.DeviceID, CreatorService: c.Creator.ServiceID,
		CreatorUUID: c.Creator.UUID, StartTime: c.StartTime, Duration: c.Duration,
		Status: c.Status, Parameters: c.Parameters,
		Users: c.Members.Users, Participants: c.Members.Participants, Devices: c.Members.Devices,
		Events: c.Events, CreatorName: c.Creator.Name, Invitees: c.Invitees,
	}
	if l != nil {
		v.Ready = l.ready.Load()
	}
	if len(v.Parameters) == 0 {
		v.Parameters = json.RawMessage("{}")
	}
	if !c.Running {
		return v
	}
	u := m.cfg.URLs
	v.Port = c.Port
	v.Key = keyFor(c.Tokens, KindUser, "")
	v.URLUsers = u.Session(c.Port, KindUser, v.Key)
	v.URLParticipants = u.Session(c.Port, KindParticipant, keyFor(c.Tokens, KindParticipant, ""))
	v.URLDevices = u.Session(c.Port, KindDevice, keyFor(c.Tokens, KindDevice, ""))
	v.Invitations = []Invitation{}
	for _, k := range Kinds {
		for _, id := range *c.Members.list(k) {
			v.Invitations = append(v.Invitations, Invitation{Kind: k, UUID: id, URL: u.Session(c.Port, k, keyFor(c.Tokens, k, id))})
		}
	}
	v.Peers = slices.Clone(peers)
	return v
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
