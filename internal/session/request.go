package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Action is a session_manage action.
type Action string

// The session_manage actions.
const (
	ActionStart       Action = "start"
	ActionStop        Action = "stop"
	ActionInvite      Action = "invite"
	ActionRemove      Action = "remove"
	ActionInviteReply Action = "invite_reply"
)

// MaxMembers bounds each member list of a request and of a session.
const MaxMembers = 256

// Reply codes of invite_reply (OpenTera's JoinSessionReplyEvent).
const (
	ReplyAccepted = 1
	ReplyDenied   = 2
	ReplyBusy     = 3
	ReplyTimeout  = 4
)

// Request is a validated session_manage request.
type Request struct {
	Action      Action
	SessionID   int64
	SessionUUID string
	TypeID      int64
	ServiceID   int64
	Name        string
	Creator     Creator
	// Lists holds the member lists of the request, by kind; a nil entry
	// means "omitted": no change (OpenTera's main server would have filled
	// it with every current member, a trap we do not reproduce).
	Lists      map[Kind][]string
	Parameters json.RawMessage
	Reply      *InviteReply
	// Invitees are the display names and languages given for members of
	// the request (and the creator), by uuid; personal data.
	Invitees map[string]Invitee
}

// InviteReply is the parameters of an invite_reply.
type InviteReply struct {
	Code int
	Msg  string
	Kind Kind
	UUID string
}

// wireRequest is session_manage as it arrives. OpenTera's main server adds
// fields of its own, so unknown fields are ignored, but every field read is
// type-checked.
type wireRequest struct {
	Action        *string         `json:"action"`
	SessionID     *int64          `json:"id_session"`
	SessionUUID   *string         `json:"session_uuid"`
	TypeID        *int64          `json:"id_session_type"`
	ServiceID     *int64          `json:"id_service"`
	Name          *string         `json:"session_name"`
	CreatorUser   *int64          `json:"id_creator_user"`
	CreatorPart   *int64          `json:"id_creator_participant"`
	CreatorDevice *int64          `json:"id_creator_device"`
	CreatorSvc    *int64          `json:"id_creator_service"`
	CUserUUID     *string         `json:"session_creator_user_uuid"`
	CPartUUID     *string         `json:"session_creator_participant_uuid"`
	CDeviceUUID   *string         `json:"session_creator_device_uuid"`
	CSvcUUID      *string         `json:"session_creator_service_uuid"`
	Users         *[]string       `json:"session_users"`
	Participants  *[]string       `json:"session_participants"`
	Devices       *[]string       `json:"session_devices"`
	Parameters    json.RawMessage `json:"parameters"`
	CreatorName   *string         `json:"session_creator_name"`
	Invitees      *[]wireInvitee  `json:"session_invitees"`
}

// ParseManage decodes and validates a body of the form
// {"session_manage": {...}}. Errors are *Error with CodeBadRequest and a
// text that names the offending field.
func ParseManage(data []byte) (*Request, error) {
	var outer struct {
		Manage json.RawMessage `json:"session_manage"`
	}
	if err := decodeStrict(data, &outer); err != nil {
		return nil, errorf(CodeBadRequest, "malformed JSON: %s", jsonProblem(err))
	}
	if len(outer.Manage) == 0 || bytes.Equal(outer.Manage, []byte("null")) {
		return nil, errorf(CodeBadRequest, "missing session_manage")
	}
	if err := checkFields(outer.Manage); err != nil {
		return nil, err
	}
	var w wireRequest
	if err := json.Unmarshal(outer.Manage, &w); err != nil {
		return nil, errorf(CodeBadRequest, "session_manage: %s", jsonProblem(err))
	}
	return w.validate()
}

// decodeStrict decodes one JSON value and rejects trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// jsonProblem turns encoding/json errors into short texts naming the field.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s: must be %s, not %s", te.Field, jsonType(te.Type.Kind().String()), te.Value)
		}
		return fmt.Sprintf("expected an object, not %s", te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	return err.Error()
}

func jsonType(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"):
		return "an integer"
	case goKind == "string":
		return "a string"
	case goKind == "slice":
		return "a list"
	default:
		return "a " + goKind
	}
}

func (w *wireRequest) validate() (*Request, error) {
	if w.Action == nil || *w.Action == "" {
		return nil, errorf(CodeBadRequest, "missing action")
	}
	r := &Request{Action: Action(*w.Action), Parameters: w.Parameters}
	switch r.Action {
	case ActionStart, ActionStop, ActionInvite, ActionRemove, ActionInviteReply:
	default:
		return nil, errorf(CodeBadRequest, "unknown action %q (want start, stop, invite, remove or invite_reply)", truncate(*w.Action, 32))
	}
	if err := w.ids(r); err != nil {
		return nil, err
	}
	if err := w.lists(r); err != nil {
		return nil, err
	}
	if err := w.creator(r); err != nil {
		return nil, err
	}
	if err := w.names(r); err != nil {
		return nil, err
	}
	if len(r.Parameters) > 0 && !json.Valid(r.Parameters) {
		return nil, errorf(CodeBadRequest, "parameters: not valid JSON")
	}
	if bytes.Equal(r.Parameters, []byte("null")) {
		r.Parameters = nil
	}
	if r.Action == ActionInviteReply {
		reply, err := parseInviteReply(r.Parameters)
		if err != nil {
			return nil, err
		}
		r.Reply = reply
	}
	return r, nil
}

func (w *wireRequest) ids(r *Request) error {
	if w.SessionID != nil {
		if *w.SessionID < 0 {
			return errorf(CodeBadRequest, "id_session: must not be negative")
		}
		r.SessionID = *w.SessionID
	}
	if w.SessionUUID != nil && *w.SessionUUID != "" {
		u, ok := NormalizeUUID(*w.SessionUUID)
		if !ok {
			return errorf(CodeBadRequest, "session_uuid: not a UUID")
		}
		r.SessionUUID = u
	}
	if r.Action != ActionStart && r.SessionID == 0 && r.SessionUUID == "" {
		return errorf(CodeBadRequest, "id_session: required for %s", r.Action)
	}
	if w.TypeID != nil {
		r.TypeID = *w.TypeID
	}
	if w.ServiceID != nil {
		r.ServiceID = *w.ServiceID
	}
	if w.Name != nil {
		name, err := cleanText("session_name", *w.Name, MaxTitleLen)
		if err != nil {
			return err
		}
		r.Name = name
	}
	return nil
}

// names reads the personal data a start or an invitation may carry: the
// creator's display name and the invitees' names and languages.
func (w *wireRequest) names(r *Request) error {
	if w.CreatorName != nil {
		name, err := cleanText("session_creator_name", *w.CreatorName, MaxNameLen)
		if err != nil {
			return err
		}
		r.Creator.Name = name
	}
	if w.Invitees == nil {
		return nil
	}
	if r.Action != ActionStart && r.Action != ActionInvite {
		return errorf(CodeBadRequest, "session_invitees: only for start and invite")
	}
	inv, err := parseInvitees(*w.Invitees)
	if err != nil {
		return err
	}
	r.Invitees = inv
	return nil
}

func (w *wireRequest) lists(r *Request) error {
	r.Lists = map[Kind][]string{}
	for _, l := range []struct {
		kind  Kind
		field string
		in    *[]string
	}{
		{KindUser, "session_users", w.Users},
		{KindParticipant, "session_participants", w.Participants},
		{KindDevice, "session_devices", w.Devices},
	} {
		if l.in == nil {
			continue // omitted: no change
		}
		clean, err := cleanUUIDs(l.field, *l.in)
		if err != nil {
			return err
		}
		r.Lists[l.kind] = clean
	}
	return nil
}

// cleanUUIDs validates, normalises and deduplicates a member list.
func cleanUUIDs(field string, in []string) ([]string, error) {
	if len(in) > MaxMembers {
		return nil, errorf(CodeBadRequest, "%s: at most %d members", field, MaxMembers)
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for i, s := range in {
		u, ok := NormalizeUUID(s)
		if !ok {
			return nil, errorf(CodeBadRequest, "%s[%d]: not a UUID", field, i)
		}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out, nil
}

func (w *wireRequest) creator(r *Request) error {
	c := &r.Creator
	c.UserID, c.ParticipantID, c.DeviceID, c.ServiceID = w.CreatorUser, w.CreatorPart, w.CreatorDevice, w.CreatorSvc
	// OpenTera's priority order: user, participant, device, service.
	for _, cand := range []struct {
		kind  Kind
		field string
		v     *string
	}{
		{KindUser, "session_creator_user_uuid", w.CUserUUID},
		{KindParticipant, "session_creator_participant_uuid", w.CPartUUID},
		{KindDevice, "session_creator_device_uuid", w.CDeviceUUID},
		{"service", "session_creator_service_uuid", w.CSvcUUID},
	} {
		if cand.v == nil || *cand.v == "" {
			continue
		}
		u, ok := NormalizeUUID(*cand.v)
		if !ok {
			return errorf(CodeBadRequest, "%s: not a UUID", cand.field)
		}
		if c.UUID == "" {
			c.UUID, c.Kind = u, cand.kind
		}
	}
	return nil
}

// parseInviteReply reads parameters of invite_reply: reply_code (1..4 or
// accept/reject/deny/busy/timeout, as OpenTera's main server maps them),
// reply_msg and exactly one of user_uuid, participant_uuid, device_uuid.
func parseInviteReply(params json.RawMessage) (*InviteReply, error) {
	var p struct {
		Code        json.RawMessage `json:"reply_code"`
		Msg         *string         `json:"reply_msg"`
		User        *string         `json:"user_uuid"`
		Participant *string         `json:"participant_uuid"`
		Device      *string         `json:"device_uuid"`
	}
	if len(params) == 0 {
		return nil, errorf(CodeBadRequest, "parameters.reply_code: required for invite_reply")
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, errorf(CodeBadRequest, "parameters: %s", jsonProblem(err))
	}
	code, err := replyCode(p.Code)
	if err != nil {
		return nil, err
	}
	reply := &InviteReply{Code: code}
	if p.Msg != nil {
		reply.Msg = truncate(*p.Msg, 500)
	}
	for _, c := range []struct {
		kind Kind
		v    *string
	}{{KindUser, p.User}, {KindParticipant, p.Participant}, {KindDevice, p.Device}} {
		if c.v == nil || *c.v == "" {
			continue
		}
		if reply.UUID != "" {
			return nil, errorf(CodeBadRequest, "parameters: give only one of user_uuid, participant_uuid, device_uuid")
		}
		u, ok := NormalizeUUID(*c.v)
		if !ok {
			return nil, errorf(CodeBadRequest, "parameters.%s_uuid: not a UUID", c.kind)
		}
		reply.Kind, reply.UUID = c.kind, u
	}
	if reply.UUID == "" {
		return nil, errorf(CodeBadRequest, "parameters: one of user_uuid, participant_uuid, device_uuid is required")
	}
	return reply, nil
}

func replyCode(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, errorf(CodeBadRequest, "parameters.reply_code: required for invite_reply")
	}
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		if n < ReplyAccepted || n > ReplyTimeout {
			return 0, errorf(CodeBadRequest, "parameters.reply_code: must be 1 to 4")
		}
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, errorf(CodeBadRequest, "parameters.reply_code: must be 1 to 4 or accept, reject, deny, busy, timeout")
	}
	switch strings.ToLower(s) {
	case "accept":
		return ReplyAccepted, nil
	case "reject", "deny":
		return ReplyDenied, nil
	case "busy":
		return ReplyBusy, nil
	case "timeout":
		return ReplyTimeout, nil
	}
	return 0, errorf(CodeBadRequest, "parameters.reply_code: must be 1 to 4 or accept, reject, deny, busy, timeout")
}

// NormalizeUUID checks the canonical 8-4-4-4-12 hex form and lowercases it.
func NormalizeUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return "", false
			}
		}
	}
	return string(b), true
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}
