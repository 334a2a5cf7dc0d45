package ehrc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/hub"
	"github.com/rehabrtc/rehabrtc/internal/session"
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
// whose detail only goes to the log.
func (s *Service) rest(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpError
		if !errors.As(err, &he) {
			s.log.Error("request failed", logKeyPath, r.URL.Path, logKeyErr, err)
			he = &httpError{http.StatusInternalServerError, "internal error"}
		}
		writeJSON(w, he.status, map[string]any{"status": he.status, "msg": he.msg})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
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

// bearer returns the Authorization: Bearer credential, or "".
func bearer(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok
}

// apiKeyOK checks the bearer credential against the API keys in constant time.
func (s *Service) apiKeyOK(r *http.Request) bool {
	tok := bearer(r)
	match := 0
	for _, k := range s.cfg.APIKeys {
		match |= subtle.ConstantTimeCompare([]byte(k), []byte(tok))
	}
	return tok != "" && match == 1
}

// createNamespace registers a doctor's namespace (API key only) and
// returns its doctor token, once.
func (s *Service) createNamespace(w http.ResponseWriter, r *http.Request) error {
	if !s.apiKeyOK(r) {
		return errUnauthorized
	}
	id, err := namespaceID(r)
	if err != nil {
		return err
	}
	token := session.NewKey()
	added, err := s.reg.addNamespace(id, token, newUUID())
	switch {
	case err != nil:
		return err
	case !added:
		writeJSON(w, http.StatusOK, map[string]any{"status": 200, "msg": msgExists})
		return nil
	}
	s.log.Info("namespace created", logKeyNamespace, id)
	writeJSON(w, http.StatusOK, map[string]any{"status": 200, "msg": msgAdded, "doctor-token": token})
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
	if !s.apiKeyOK(r) && (ns == nil || !ns.checkToken(bearer(r))) {
		return errUnauthorized
	}
	if ns == nil {
		return errNoNamespace
	}
	o, ok := s.reg.removeNamespace(ns)
	if !ok {
		return errNoNamespace // removed meanwhile
	}
	if o != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), removeTimeout)
		defer cancel()
		o.close(ctx, hub.SessionEnded)
	}
	s.log.Info("namespace removed", logKeyNamespace, id)
	writeJSON(w, http.StatusOK, map[string]any{"status": 200, "msg": msgRemoved})
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
	writeJSON(w, http.StatusOK, map[string]any{"status": 200, "msg": msg, "availability": ok})
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

// createRoom hands out a new room id.
func (s *Service) createRoom(w http.ResponseWriter, _ *http.Request) error {
	id := newUUID()
	if err := s.reg.reserve(id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"room-id": id})
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
