package ehrc

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/rehabrtc/rehabrtc/internal/socketio"
)

// Socket.IO clients connect to the namespace "/<namespaceId>" and speak
// EHRC's events; the office treats them exactly like native peers.

// sioAuth is what Authorize learned about a socket (its Socket.Data).
type sioAuth struct {
	ns     *namespace
	doctor bool   // presented the doctor token
	compat bool   // no token, from an app origin in compatibility mode
	addr   string // the client's address
}

// authorize admits a socket into a registered namespace. The CONNECT auth
// payload may carry {"token": "<doctor token>"}; without it the socket is
// a patient's, or in compatibility mode, from an allowed app origin,
// possibly the doctor's.
func (s *Service) authorize(r *http.Request, nsp string, auth json.RawMessage) (any, error) {
	ns := s.reg.lookup(strings.TrimPrefix(nsp, "/"))
	if ns == nil {
		return nil, socketio.ErrInvalidNamespace // what socket.io says for an unknown namespace
	}
	var a struct {
		Token *string `json:"token"`
	}
	if len(auth) > 0 && json.Unmarshal(auth, &a) != nil {
		return nil, &socketio.ConnectError{Message: `auth must be {"token": "<doctor token>"} or nothing`}
	}
	if a.Token != nil && !ns.checkToken(*a.Token) {
		return nil, &socketio.ConnectError{Message: "invalid doctor token"}
	}
	compat := a.Token == nil && s.cfg.Compat.Enabled && s.originListed(pageOrigin(r))
	return sioAuth{ns: ns, doctor: a.Token != nil, compat: compat, addr: socketio.LimitKey(s.cfg.ClientAddress(r))}, nil
}

// onConnect makes the socket a member of its namespace's office.
func (s *Service) onConnect(sock *socketio.Socket) {
	a, _ := sock.Data().(sioAuth)
	o, err := s.acquireNS(a.ns)
	if err != nil {
		sioRefuse(sock, errGone)
		return
	}
	m := &member{id: sock.ID(), link: sioLink{sock}, doctor: a.doctor, compat: a.compat, addr: a.addr}
	if err := o.join(m); err != nil {
		s.release(o)
		sioRefuse(sock, publicError(err))
		return
	}
	for _, ev := range clientEvents() {
		sock.On(ev, sioHandler(o, sock, ev))
	}
	o.offerICE(sock)
	sock.OnDisconnect(func(string) {
		o.leave(m.id)
		s.release(o)
	})
}

// sioRefuse tells a socket why it cannot stay, then disconnects it.
func sioRefuse(sock *socketio.Socket, e *Error) {
	_ = sock.Emit("error", errorEvent(e, "connect"))
	sock.Disconnect()
}

// sioHandler runs one event. EHRC sends no acknowledgements; a client that
// asks for one gets null, or the refusal {"code","message"}. A refusal is
// also emitted as an "error" event, for clients that do not ask.
func sioHandler(o *office, sock *socketio.Socket, event string) socketio.Handler {
	return func(args []json.RawMessage, ack socketio.AckFunc) {
		var raw json.RawMessage
		if len(args) > 0 {
			raw = args[0]
		}
		err := o.handle(sock.ID(), event, raw)
		if err == nil {
			_ = ack(nil)
			return
		}
		e := publicError(err)
		_ = ack(e)
		_ = sock.Emit("error", errorEvent(e, event))
	}
}

// sioLink reaches a socket. Payloads go out unchanged, as EHRC sends them.
type sioLink struct{ s *socketio.Socket }

func (l sioLink) send(event, _ string, data json.RawMessage) { _ = l.s.Emit(event, data) }

func (l sioLink) end(replaced bool) {
	notice := "removed"
	if replaced {
		notice = "replaced"
	}
	_ = l.s.Emit(notice, struct{}{})
	l.s.Disconnect()
}

// pageOrigin is the origin of the page that made a browser request: its
// Origin header, or for a same-origin GET (which browsers send without
// one, as socket.io-client's first poll) the origin of its Referer.
func pageOrigin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return o
	}
	u, err := url.Parse(r.Referer())
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
