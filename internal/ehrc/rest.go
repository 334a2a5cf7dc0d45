package ehrc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/apikey"
	"github.com/rehabrtc/rehabrtc/internal/hub"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/socketio"
)

// The EHRC answers (spec §1.2), kept byte for byte, typo included.
const (
	msgAdded       = "Namespace added successfully."
	msgExists      = "Namespeace already exists."
	msgRemoved     = "Namespace removed successfully"
	msgAvailable   = "Doctor is available"
	msgUnavailable = "Doctor is not available"
	textRoomOK     = "Everything Cool !"
	textNoRoom     = "No Room with such an ID"
)

// removeTimeout bounds how long remove-namespace waits for the native
// connections of the namespace to close.
const removeTimeout = 5 * time.Second

// rest adapts a handler that returns its error: an *httpError is answered
// as {"status":…,"msg":…} with that HTTP status; anything else is a 500
// whose detail only goes to the log. Browsers from an origin that is not
// allowed are refused before the handler runs.
func (s *Service) rest(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.checkOrigin(w, r)
		if err == nil {
			err = h(w, r)
		}
		if err == nil {
			return
		}
		var he *httpError
		if !errors.As(err, &he) {
			s.log.Error("request failed", logKeyPath, r.URL.Path, logKeyErr, err)
			he = &httpError{http.StatusInternalServerError, "internal error"}
		}
		writeJSON(w, he.status, restBody{Status: he.status, Msg: he.msg})
	})
}

// restBody is EHRC's answer shape, fields in EHRC's order.
type restBody struct {
	Status       int    `json:"status"`
	Msg          string `json:"msg"`
	Availability *bool  `json:"availability,omitempty"`
	DoctorToken  string `json:"doctor-token,omitempty"` // rehabrtc's addition
}

// writeJSON answers v as Express's res.json does: JSON.stringify's bytes
// (struct fields in EHRC's key order, no HTML escaping, no trailing
// newline).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // plain structs: cannot fail
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// checkOrigin refuses a browser request from an origin that is neither
// this server's nor allowed, and lets an allowed one read the answer.
func (s *Service) checkOrigin(w http.ResponseWriter, r *http.Request) error {
	origin := r.Header.Get("Origin")
	switch {
	case origin == "" || socketio.SameOrigin(origin, r.Host):
		return nil
	case !s.originListed(origin):
		return errOrigin
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
	return nil
}

// originListed reports whether origin is one of the allowed app origins.
func (s *Service) originListed(origin string) bool {
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// preflight answers a CORS preflight of a REST route: allowed origins may
// send GET with Authorization (a backend in a browser, or a test page).
func (s *Service) preflight(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD, OPTIONS")
	if err := s.checkOrigin(w, r); err != nil {
		he := err.(*httpError)
		writeJSON(w, he.status, restBody{Status: he.status, Msg: he.msg})
		return
	}
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		w.Header().Set("Access-Control-Allow-Methods", "GET")
		w.Header().Set("Access-Control-Allow-Headers", "authorization")
		w.Header().Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

// trustedBackend reports whether compatibility mode lets this request
// manage namespaces without the API key: it comes from a trusted backend
// address.
func (s *Service) trustedBackend(r *http.Request) bool {
	c := s.cfg.Compat
	if !c.Enabled || len(c.TrustedBackends) == 0 {
		return false
	}
	addr, err := netip.ParseAddr(s.cfg.ClientAddress(r))
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range c.TrustedBackends {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}

// namespaceIDPattern: a URL path segment and a Socket.IO namespace as is.
var namespaceIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~@-]{0,63}$`)

// param returns the one value of a required query parameter.
func param(r *http.Request, name string) (string, error) {
	vs := r.URL.Query()[name]
	switch {
	case len(vs) == 0 || vs[0] == "":
		return "", &httpError{http.StatusBadRequest, name + " is required"}
	case len(vs) > 1:
		return "", &httpError{http.StatusBadRequest, name + " is given more than once"}
	}
	return vs[0], nil
}

// namespaceID reads and checks namespaceId. "undefined" and "null" are
// what a JavaScript client sends for a variable it forgot to set.
func namespaceID(r *http.Request) (string, error) {
	id, err := param(r, "namespaceId")
	switch {
	case err != nil:
		return "", err
	case id == "undefined" || id == "null":
		return "", &httpError{http.StatusBadRequest, fmt.Sprintf("namespaceId is %q: the client did not set it", id)}
	case !namespaceIDPattern.MatchString(id):
		return "", &httpError{http.StatusBadRequest, "namespaceId must be 1 to 64 letters, digits or ._~@- and start with a letter or digit"}
	}
	return id, nil
}

// apiKey checks the bearer credential with internal/apikey (constant
// time; an address that sent too many wrong keys is refused with 429 and
// Retry-After): ok when it is an API key or, with ns, that namespace's
// doctor token. A wrong credential counts against the address.
func (s *Service) apiKey(w http.ResponseWriter, r *http.Request, ns *namespace) (ok bool, err error) {
	if retry, blocked := s.cfg.Keys.Waiting(r); blocked {
		w.Header().Set("Retry-After", apikey.RetryAfter(retry))
		return false, &httpError{http.StatusTooManyRequests, "too many wrong keys from this address: retry after " + apikey.RetryAfter(retry) + " s"}
	}
	tok := apikey.Bearer(r)
	switch {
	case s.cfg.Keys.Match(tok):
		s.cfg.Keys.Succeeded(r)
		return true, nil
	case ns != nil && ns.checkToken(tok):
		return true, nil
	case tok != "":
		s.cfg.Keys.Failed(r)
	}
	return false, nil
}

// createNamespace registers a doctor's namespace (API key, or a trusted
// backend in compatibility mode) and returns its doctor token, once. A
// trusted backend without a key is EHRC's unchanged backend: it gets
// EHRC's body exactly, without the token it would not know about.
func (s *Service) createNamespace(w http.ResponseWriter, r *http.Request) error {
	keyed, err := s.apiKey(w, r, nil)
	if err != nil {
		return err
	}
	if !keyed && !s.trustedBackend(r) {
		return errUnauthorized
	}
	id, err := namespaceID(r)
	if err != nil {
		return err
	}
	token := session.NewKey()
	ns, added, err := s.reg.addNamespace(id, sha256.Sum256([]byte(token)), newUUID())
	switch {
	case err != nil:
		return err
	case !added:
		writeJSON(w, http.StatusOK, restBody{Status: 200, Msg: msgExists})
		return nil
	}
	if err := s.saveNamespace(r.Context(), ns); err != nil {
		s.reg.removeNamespace(ns) // nobody can be connected yet: no office
		return err
	}
	s.log.Info("namespace created", logKeyNamespace, id, "with_key", keyed)
	body := restBody{Status: 200, Msg: msgAdded}
	if keyed {
		body.DoctorToken = token
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// removeNamespace unregisters a namespace (API key or its doctor token) and
// disconnects everyone in it.
func (s *Service) removeNamespace(w http.ResponseWriter, r *http.Request) error {
	id, err := namespaceID(r)
	if err != nil {
		return err
	}
	ns := s.reg.lookup(id)
	ok, err := s.apiKey(w, r, ns)
	if err != nil {
		return err
	}
	if !ok && !s.trustedBackend(r) {
		return errUnauthorized
	}
	if ns == nil {
		return errNoNamespace
	}
	o, ok := s.reg.removeNamespace(ns)
	if !ok {
		return errNoNamespace // removed meanwhile
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), removeTimeout)
	defer cancel()
	if o != nil {
		o.close(ctx, hub.SessionEnded)
	}
	s.deleteSaved(ctx, id)
	s.log.Info("namespace removed", logKeyNamespace, id)
	writeJSON(w, http.StatusOK, restBody{Status: 200, Msg: msgRemoved})
	return nil
}

// checkAvailability says whether the namespace's doctor is connected now.
func (s *Service) checkAvailability(w http.ResponseWriter, r *http.Request) error {
	id, err := namespaceID(r)
	if err != nil {
		return err
	}
	msg, ok := msgUnavailable, s.available(id)
	if ok {
		msg = msgAvailable
	}
	writeJSON(w, http.StatusOK, restBody{Status: 200, Msg: msg, Availability: &ok})
	return nil
}

// available reports whether namespace id's doctor is connected now. An
// unknown namespace has no doctor.
func (s *Service) available(id string) bool {
	g := s.reg
	g.mu.Lock()
	var o *office
	if ns := g.nss[id]; ns != nil {
		o = ns.office
	}
	g.mu.Unlock()
	return o != nil && o.available()
}

// createRoom hands out a new room id, at a bounded rate per client.
func (s *Service) createRoom(w http.ResponseWriter, r *http.Request) error {
	if ok, wait := s.rooms.allow(socketio.LimitKey(s.cfg.ClientAddress(r))); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		return errRoomRate
	}
	id := newUUID()
	if err := s.reg.reserve(id); err != nil {
		return err
	}
	s.forgetRooms(s.reg.takeExpired()...)
	writeJSON(w, http.StatusOK, struct {
		RoomID string `json:"room-id"`
	}{id})
	return nil
}

// joinRoom says whether a room exists (EHRC's text answers).
func (s *Service) joinRoom(w http.ResponseWriter, r *http.Request) error {
	raw, err := param(r, "roomId")
	if err != nil {
		return err
	}
	if id, ok := session.NormalizeUUID(raw); ok && s.reg.exists(id) {
		writeText(w, http.StatusOK, textRoomOK)
		return nil
	}
	writeText(w, http.StatusBadRequest, textNoRoom)
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
