package ehrc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/coder/websocket"

	"github.com/rehabrtc/rehabrtc/internal/hub"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/socketio"
)

// The native protocol is the hub's (docs/protocol.md) with the consultation
// rules as the hub's Policy: one private hub per office.

var errBadKey = errors.New("neither the doctor token nor a room of this namespace")

// admitter admits the native clients of one namespace: the doctor token
// makes the doctor ("user"), a room id from create-room a patient
// ("participant") of that room.
type admitter struct{ o *office }

func (a admitter) Admit(_ context.Context, key, _ string) (hub.Identity, error) {
	ns := a.o.ns
	if ns.checkToken(key) {
		return hub.Identity{Role: hub.RoleUser, UUID: ns.doctorUUID}, nil
	}
	if id, ok := session.NormalizeUUID(key); ok && a.o.svc.reg.usable(id, ns) {
		// Two connections with the same room are one patient: the hub
		// replaces the older (a reloaded page), and the room waits for it.
		return hub.Identity{Role: hub.RoleParticipant, UUID: id}, nil
	}
	return hub.Identity{}, errBadKey
}

// nativePolicy hands the hub's joined peers and their messages to the office.
type nativePolicy struct{ o *office }

func (np nativePolicy) Joined(p hub.Peer) {
	info := p.Info()
	// The address ServeRequest counted: the per-address member cap applies
	// to native clients as to Socket.IO ones.
	m := &member{id: p.ID(), link: nativeLink{p}, doctor: info.Role == hub.RoleUser, addr: p.Addr()}
	if info.Role == hub.RoleParticipant {
		m.ticket = info.UUID
	}
	if err := np.o.join(m); err != nil {
		np.o.log.Info("native client refused", logKeyErr, err)
		code := hub.CloseTryAgainLater // a full office: another time
		if errors.Is(err, errGone) {
			code = hub.CloseSessionEnded
		}
		p.Refuse(publicError(err).refusal(), code)
	}
}

func (np nativePolicy) Handle(p hub.Peer, typ string, data json.RawMessage) error {
	if data == nil || string(data) == "null" {
		data = json.RawMessage("{}") // data is optional in the native protocol
	}
	if err := np.o.handle(p.ID(), typ, data); err != nil {
		return publicError(err).refusal()
	}
	return nil
}

func (np nativePolicy) Left(p hub.Peer) { np.o.leave(p.ID()) }

// nativeLink reaches a native peer.
type nativeLink struct{ p hub.Peer }

func (l nativeLink) send(event, from string, data json.RawMessage) {
	if event == "error" { // a late refusal: the protocol's error shape
		l.p.Send(errorFrame(data))
		return
	}
	frame, err := json.Marshal(struct {
		Type string          `json:"type"`
		From string          `json:"from,omitempty"`
		Data json.RawMessage `json:"data"`
	}{event, from, data})
	if err == nil { // data was checked when it came in
		l.p.Send(frame)
	}
}

// errorFrame turns an error event {"code","message","event"} into
// {"type":"error","code","message","event"}.
func errorFrame(data json.RawMessage) []byte {
	var m map[string]any
	_ = json.Unmarshal(data, &m) // made by errorEvent
	if m == nil {
		m = map[string]any{}
	}
	m["type"] = "error"
	b, _ := json.Marshal(m)
	return b
}

func (l nativeLink) end(replaced bool) {
	if replaced {
		l.p.Replace()
	} else {
		l.p.Remove()
	}
}

// serveNative runs one native connection to namespace {namespace}.
func (s *Service) serveNative(w http.ResponseWriter, r *http.Request) error {
	o, err := s.acquire(r.PathValue("namespace"))
	if err != nil {
		return err
	}
	defer s.release(o)
	// rest checked the origin; the patterns say it again (exact origins).
	// ServeRequest, not ServeHTTP: the office must outlive the connection.
	opts := &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowedOrigins}
	addr := socketio.LimitKey(s.cfg.ClientAddress(r)) // the Socket.IO clients' rule
	if err := o.hub.ServeRequest(w, r, opts, addr); err != nil {
		o.log.Debug("native connection ended", logKeyErr, err)
	}
	return nil
}
