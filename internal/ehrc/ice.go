package ehrc

import (
	"encoding/json"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/hub"
	"github.com/rehabrtc/rehabrtc/internal/socketio"
)

// ICEMinter mints a consultation member's ICE servers: TURN credentials
// naming (office, kind, id), which the TURN server accepts only while
// [Service.Admitted] says that member is still in its office. main wires
// it to the relay; this package knows nothing of TURN.
type ICEMinter interface {
	ICEServers(office int64, kind, id string) (json.RawMessage, time.Time)
	Policy() string
}

// The kinds a consultation credential names: a native doctor (its
// namespace's doctor UUID), a native patient (its room id), a Socket.IO
// connection (its socket id).
const (
	ICEKindDoctor  = string(hub.RoleUser)
	ICEKindPatient = string(hub.RoleParticipant)
	ICEKindSocket  = "socket"
)

// eventICEServers is the Socket.IO event that carries a connection's ICE
// servers: emitted once at connect, and answered (with an ack) whenever
// the app asks again, before the credentials expire. EHRC apps that keep
// their own ICE configuration ignore it.
const eventICEServers = "ice-servers"

// officeICE is the native hub's ICEProvider for one office.
type officeICE struct{ o *office }

func (i officeICE) ICEServers(id hub.Identity) (json.RawMessage, time.Time) {
	return i.o.svc.cfg.ICE.ICEServers(i.o.num, string(id.Role), id.UUID)
}

// sioICE is what a Socket.IO connection gets: its ICE servers and when
// they expire (unix seconds, 0 for never).
func (o *office) sioICE(sockID string) any {
	servers, exp := o.svc.cfg.ICE.ICEServers(o.num, ICEKindSocket, sockID)
	var unix int64
	if !exp.IsZero() {
		unix = exp.Unix()
	}
	return struct {
		ICEServers         json.RawMessage `json:"iceServers"`
		Expires            int64           `json:"expires,omitempty"`
		ICETransportPolicy string          `json:"iceTransportPolicy,omitempty"`
	}{servers, unix, o.svc.cfg.ICE.Policy()}
}

// offerICE hands a new Socket.IO connection its ICE servers, and answers
// its later asks.
func (o *office) offerICE(sock *socketio.Socket) {
	if o.svc.cfg.ICE == nil {
		return
	}
	_ = sock.Emit(eventICEServers, o.sioICE(sock.ID()))
	sock.On(eventICEServers, func(_ []json.RawMessage, ack socketio.AckFunc) {
		_ = ack(o.sioICE(sock.ID()))
	})
}

// Admitted reports whether the member a consultation credential names is
// connected to office right now; the TURN server asks it for each request
// and, a few times a second, for each live allocation. A member that left,
// or whose namespace was removed, is no longer admitted.
func (s *Service) Admitted(office int64, kind, id string) bool {
	g := s.reg
	g.mu.Lock()
	o := g.offices[office]
	g.mu.Unlock()
	return o != nil && o.admitted(kind, id)
}

func (o *office) admitted(kind, id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || id == "" {
		return false
	}
	if kind == ICEKindSocket {
		m := o.members[id]
		if m == nil {
			return false
		}
		_, sio := m.link.(sioLink)
		return sio
	}
	for _, m := range o.members {
		if _, native := m.link.(nativeLink); !native {
			continue
		}
		switch {
		case kind == ICEKindDoctor && m.doctor && id == o.ns.doctorUUID,
			kind == ICEKindPatient && !m.doctor && m.ticket == id:
			return true
		}
	}
	return false
}
