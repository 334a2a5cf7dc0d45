package opentera

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Store is the session.Store of a service attached to OpenTera: the main
// server's database owns the records (ids, uuids, names, members, events,
// status and duration), and a local store keeps the whole record, runtime
// state included (port, keys, running), so a restart brings running
// sessions back. Every write goes to the main server first, then locally.
type Store struct {
	b     *Backend
	local session.Store
	log   *slog.Logger
	rows  rowCache // the main server's latest JSON of each session, for replies
}

var _ session.Store = (*Store)(nil)

// NewStore mirrors records to b and keeps them in local.
func NewStore(b *Backend, local session.Store, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{b: b, local: local, log: log, rows: rowCache{m: map[int64]map[string]json.RawMessage{}}}
}

// sessionBody is {"session": {...}}, the body of POST /api/service/sessions.
type sessionBody[T any] struct {
	Session T `json:"session"`
}

// membersUpdate is manage_invite_to_session's update, in its field order
// (with session_devices_uuids spelt right: OpenTera's typo lost devices).
type membersUpdate struct {
	ID           int64    `json:"id_session"`
	Participants []string `json:"session_participants_uuids"`
	Users        []string `json:"session_users_uuids"`
	Devices      []string `json:"session_devices_uuids"`
}

// statusUpdate is manage_stop_session's update.
type statusUpdate struct {
	ID       int64 `json:"id_session"`
	Status   int   `json:"session_status"`
	Duration int64 `json:"session_duration"`
}

// createBody is the session OpenTera's manage_start_session creates, in its
// field order. session_parameters is a JSON text (see writeParameters).
type createBody struct {
	ID            int64    `json:"id_session"`
	TypeID        int64    `json:"id_session_type"`
	Participants  []string `json:"session_participants_uuids"`
	Users         []string `json:"session_users_uuids"`
	Devices       []string `json:"session_devices_uuids"`
	Parameters    *string  `json:"session_parameters"`
	Name          string   `json:"session_name,omitempty"`
	CreatorUser   *int64   `json:"id_creator_user,omitempty"`
	CreatorPart   *int64   `json:"id_creator_participant,omitempty"`
	CreatorDevice *int64   `json:"id_creator_device,omitempty"`
	CreatorSvc    *int64   `json:"id_creator_service,omitempty"`
}

// Create creates the session in the main server's database (POST
// /api/service/sessions with id_session 0) and takes its id, uuid, name,
// start time and creator name.
func (s *Store) Create(ctx context.Context, r *session.Record) error {
	body := createBody{
		TypeID:       r.TypeID,
		Participants: nonNil(r.Members.Participants), Users: nonNil(r.Members.Users), Devices: nonNil(r.Members.Devices),
		Parameters: writeParameters(r.Parameters), Name: r.Name,
		CreatorUser: r.Creator.UserID, CreatorPart: r.Creator.ParticipantID,
		CreatorDevice: r.Creator.DeviceID, CreatorSvc: r.Creator.ServiceID,
	}
	db, err := s.postSession(ctx, body)
	if err != nil {
		return err
	}
	if db.ID <= 0 {
		return fmt.Errorf("main server: created session has id %d", db.ID)
	}
	r.ID, r.UUID, r.Name = db.ID, db.UUID, db.Name
	r.TypeConfig = s.typeConfig(ctx, r.TypeID)
	if t, ok := parseTime(db.StartTime); ok {
		r.StartTime = t
	}
	c := db.creator()
	r.Creator.Name = cmp.Or(c.Name, r.Creator.Name)
	db.names(r)
	if r.Creator.UUID == "" {
		r.Creator.UUID, r.Creator.Kind = c.UUID, c.Kind
	}
	return s.local.Put(ctx, r)
}

// typeConfig is the session type's configuration (its media_mode picks
// the session's media path); without it the configured default applies.
func (s *Store) typeConfig(ctx context.Context, typeID int64) json.RawMessage {
	c, err := s.b.SessionTypeConfig(ctx, typeID)
	if err != nil {
		s.log.Warn("main server: no session type configuration; the default media mode applies", "type", typeID, "err", err)
	}
	return c
}

// Get returns a running session from the local store; any other is read
// again from the main server (another client may have changed it), falling
// back to the local copy when the main server cannot be reached.
func (s *Store) Get(ctx context.Context, id int64) (*session.Record, error) {
	local, err := s.local.Get(ctx, id)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		return nil, err
	}
	if local != nil && local.Running {
		return local, nil
	}
	db, err := s.getSession(ctx, id)
	if err != nil {
		if local != nil && !errors.Is(err, session.ErrNotFound) {
			s.log.Warn("main server unreachable; using the local copy of the session", "session", id, "err", err)
			return local, nil
		}
		return nil, err
	}
	rec := db.record()
	if local != nil {
		rec.ServiceID, rec.LastStart = local.ServiceID, local.LastStart
		rec.TypeConfig = local.TypeConfig
		keepNames(rec, local)
		if rec.Creator.UUID == "" {
			rec.Creator.UUID, rec.Creator.Kind = local.Creator.UUID, local.Creator.Kind
		}
	}
	if err := s.local.Put(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// List returns the sessions this service has handled (local store).
func (s *Store) List(ctx context.Context) ([]*session.Record, error) { return s.local.List(ctx) }

// Put mirrors what changed since the last write to the main server (new
// events, added members, status and duration), then stores r locally.
// Records are append-only in their events, so the new ones are those past
// the last stored count.
func (s *Store) Put(ctx context.Context, r *session.Record) error {
	prev, err := s.local.Get(ctx, r.ID)
	if errors.Is(err, session.ErrNotFound) {
		prev, err = &session.Record{}, nil
	}
	if err != nil {
		return err
	}
	if err := s.postEvents(ctx, r, prev); err != nil {
		return err
	}
	if err := s.postMembers(ctx, r, prev); err != nil {
		return err
	}
	if err := s.postStatus(ctx, r, prev); err != nil {
		return err
	}
	return s.local.Put(ctx, r)
}

// eventBody is post_session_event's body, in its field order.
type eventBody struct {
	Event newEvent `json:"session_event"`
}

type newEvent struct {
	ID      int64  `json:"id_session_event"` // 0: create
	Session int64  `json:"id_session"`
	Type    int    `json:"id_session_event_type"`
	Time    string `json:"session_event_datetime"`
	Context string `json:"session_event_context"`
	Text    string `json:"session_event_text,omitempty"`
}

func (s *Store) postEvents(ctx context.Context, r, prev *session.Record) error {
	from := len(prev.Events)
	if len(r.Events) < from {
		return nil // not an append: nothing new to tell
	}
	for i := from; i < len(r.Events); i++ {
		ev := r.Events[i]
		body := eventBody{newEvent{Session: r.ID, Type: int(ev.Type), Time: formatTime(ev.Time), Context: ev.Context, Text: ev.Text}}
		var raw json.RawMessage
		if err := s.b.call(ctx, http.MethodPost, pathEvents, nil, body, &raw); err != nil {
			return err
		}
		if got, ok, _ := decodeLast[dbEvent](raw); ok && got.ID > 0 {
			r.Events[i].ID = got.ID // show the database's event ids
		}
	}
	return nil
}

// postMembers tells the main server about added members. It sends every
// participant the database already lists too: the main server removes the
// participants missing from the list, and removed people must stay in the
// session's history (OpenTera's intent, which its own code missed).
func (s *Store) postMembers(ctx context.Context, r, prev *session.Record) error {
	if !addedMembers(r.Members, prev.Members) || prev.ID == 0 {
		return nil
	}
	db, err := s.getSession(ctx, r.ID)
	if err != nil {
		return err
	}
	parts := slices.Clone(r.Members.Participants)
	for _, u := range uuids(db.Participants) {
		if !slices.Contains(parts, u) {
			parts = append(parts, u)
		}
	}
	body := sessionBody[membersUpdate]{membersUpdate{
		ID: r.ID, Participants: nonNil(parts), Users: nonNil(r.Members.Users), Devices: nonNil(r.Members.Devices),
	}}
	return s.postRow(ctx, body)
}

// postStatus writes status and accumulated duration when they changed,
// except the first start of a created session (the main server created it
// in progress already).
func (s *Store) postStatus(ctx context.Context, r, prev *session.Record) error {
	if r.Status == prev.Status && r.Duration == prev.Duration {
		return nil
	}
	if prev.Status == session.StatusNotStarted && r.Status == session.StatusInProgress && r.Duration == prev.Duration {
		return nil
	}
	body := sessionBody[statusUpdate]{statusUpdate{ID: r.ID, Status: int(r.Status), Duration: r.Duration}}
	return s.postRow(ctx, body)
}

// postRow updates a session in the main server and keeps its answer.
func (s *Store) postRow(ctx context.Context, body any) error {
	var raw json.RawMessage
	if err := s.b.call(ctx, http.MethodPost, pathSessions, nil, body, &raw); err != nil {
		return err
	}
	s.rows.keep(raw)
	return nil
}

// row returns the main server's latest JSON of session id, read again
// when not known (after a restart); nil when it cannot be had.
func (s *Store) row(ctx context.Context, id int64) map[string]json.RawMessage {
	if r := s.rows.get(id); r != nil {
		return r
	}
	if _, err := s.getSession(ctx, id); err != nil {
		s.log.Warn("main server: cannot read the session for the reply", "session", id, "err", err)
		return nil
	}
	return s.rows.get(id)
}

// maxRows bounds the rows kept: replies need the sessions in use, and a
// forgotten row is read again.
const maxRows = 1024

// rowCache holds the main server's latest JSON of recent sessions.
type rowCache struct {
	mu sync.Mutex
	m  map[int64]map[string]json.RawMessage
}

// keep remembers the session of an answer ({…} or [{…}]), if it is one.
func (c *rowCache) keep(raw json.RawMessage) {
	row, ok, err := decodeLast[map[string]json.RawMessage](raw)
	if err != nil || !ok {
		return
	}
	var id int64
	if json.Unmarshal(row["id_session"], &id) != nil || id <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, known := c.m[id]; !known && len(c.m) >= maxRows {
		for k := range c.m { // any one: it is read again if needed
			delete(c.m, k)
			break
		}
	}
	c.m[id] = row
}

func (c *rowCache) get(id int64) map[string]json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (s *Store) postSession(ctx context.Context, body createBody) (*dbSession, error) {
	var raw json.RawMessage
	if err := s.b.call(ctx, http.MethodPost, pathSessions, nil, sessionBody[createBody]{body}, &raw); err != nil {
		return nil, err
	}
	s.rows.keep(raw)
	db, ok, err := decodeLast[dbSession](raw)
	if err != nil || !ok {
		return nil, fmt.Errorf("main server: POST %s: no session in the answer (%v)", pathSessions, err)
	}
	return &db, nil
}

// getSession reads one session with its events. Unknown and inaccessible
// sessions (the main server answers 403 for both) wrap ErrNotFound.
func (s *Store) getSession(ctx context.Context, id int64) (*dbSession, error) {
	q := url.Values{"id_session": {strconv.FormatInt(id, 10)}, "with_events": {"True"}}
	var raw json.RawMessage
	err := s.b.call(ctx, http.MethodGet, pathSessions, q, nil, &raw)
	var be *BackendError
	if errors.As(err, &be) && (be.Status == http.StatusForbidden || be.Status == http.StatusNotFound) {
		return nil, fmt.Errorf("session %d: %w (%v)", id, session.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	s.rows.keep(raw)
	db, ok, err := decodeLast[dbSession](raw)
	if err != nil {
		return nil, fmt.Errorf("main server: GET %s: %w", pathSessions, err)
	}
	if !ok || db.ID != id {
		return nil, fmt.Errorf("session %d: %w", id, session.ErrNotFound)
	}
	return &db, nil
}

func addedMembers(now, before session.Members) bool {
	for _, k := range session.Kinds {
		for _, u := range listOf(now, k) {
			if !slices.Contains(listOf(before, k), u) {
				return true
			}
		}
	}
	return false
}

func listOf(ms session.Members, k session.Kind) []string {
	switch k {
	case session.KindUser:
		return ms.Users
	case session.KindParticipant:
		return ms.Participants
	}
	return ms.Devices
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// keepNames keeps what the local copy knows of the session's people: a
// name given through this service wins over the main server's, and the
// main server knows no language. Names of people the main server no
// longer lists are not kept.
func keepNames(rec, local *session.Record) {
	if rec.Creator.Name == "" {
		rec.Creator.Name = local.Creator.Name
	}
	for u, inv := range local.Invitees {
		member := u == rec.Creator.UUID
		for _, k := range session.Kinds {
			member = member || rec.Members.Has(k, u)
		}
		if !member {
			continue
		}
		if rec.Invitees == nil {
			rec.Invitees = map[string]session.Invitee{}
		}
		rec.Invitees[u] = inv
	}
}
