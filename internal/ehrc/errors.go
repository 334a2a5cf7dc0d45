package ehrc

import (
	"errors"
	"net/http"

	"github.com/rehabrtc/rehabrtc/internal/hub"
)

// Error is a refusal with a public face (house style 7): Code and Message
// are what the client sees, on Socket.IO as an "error" event and an ack
// argument {"code","message"}, on the native protocol as
// {"type":"error","code","message"}. Internal detail only goes to the logs.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// refusal is e as the hub sends it to native clients.
func (e *Error) refusal() *hub.Refusal { return &hub.Refusal{Code: e.Code, Message: e.Message} }

// The refusals of the consultation flow (docs/ehrc.md lists them). They are
// read-only after package initialisation.
var (
	errNoPayload     = &Error{"bad-message", "the payload must be a JSON object"}
	errTooBig        = &Error{"bad-message", "the payload is over 64 KiB"}
	errUnknownEvent  = &Error{"unknown-type", "unknown event"}
	errNotDoctor     = &Error{"forbidden", "only the doctor of this namespace may do this (connect with the doctor token, then send doctor-joined)"}
	errNoToken       = &Error{"forbidden", "claiming the doctor role needs the doctor token"}
	errOtherNS       = &Error{"forbidden", "namespace-id is not the namespace of this connection"}
	errNotYou        = &Error{"forbidden", "client-id is not the id of this connection"}
	errDoctorCreates = &Error{"forbidden", "the doctor does not create rooms"}
	errInRoom        = &Error{"forbidden", "this connection is already in another room"}
	errOtherTicket   = &Error{"forbidden", "your key is for another room"}
	errRoomTaken     = &Error{"forbidden", "this room already has a patient"}
	errNoRoom        = &Error{"forbidden", "create a room first"}
	errUnknownRoom   = &Error{"unknown-room", "no such room in this namespace (get one from create-room)"}
	errUnknownPeer   = &Error{"unknown-peer", "no such peer in your room"}
	errTooManyRooms  = &Error{"unavailable", "too many rooms in this namespace"}
	errOfficeFull    = &Error{"unavailable", "too many connections to this namespace"}
	errAddressFull   = &Error{"unavailable", "too many connections to this namespace from your address"}
	errDoctorsFull   = &Error{"unavailable", "too many doctor connections to this namespace"}
	errDoctorHere    = &Error{"forbidden", "the doctor is connected with the doctor token; a connection without it cannot take over"}
	errNoRecording   = &Error{"unavailable", "recording consultations is not enabled on this server"}
	errRecordFailed  = &Error{"unavailable", "the consultation could not be recorded"}
	errGone          = &Error{"namespace-removed", "this namespace was removed"}
)

// missing returns the refusal for a required field.
func missing(field string) *Error {
	return &Error{"missing-field", field + " is required"}
}

// notString returns the refusal for a field of the wrong type.
func notString(field string) *Error {
	return &Error{"bad-message", field + " must be a string"}
}

// publicError maps any error to its public face.
func publicError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{"internal", "internal error"}
}

// httpError is a REST refusal: status and a message, answered in EHRC's
// {"status":…,"msg":…} shape with the same HTTP status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return http.StatusText(e.status) + ": " + e.msg }

// The REST refusals that do not depend on the request.
var (
	errShuttingDown      = &httpError{http.StatusServiceUnavailable, "the server is shutting down"}
	errTooManyNamespaces = &httpError{http.StatusServiceUnavailable, "too many namespaces"}
	errRoomRate          = &httpError{http.StatusTooManyRequests, "too many rooms created from your address; try again in a few seconds"}
	errNotSaved          = &httpError{http.StatusServiceUnavailable, "the namespace could not be saved; try again"}
	errOrigin            = &httpError{http.StatusForbidden, "this origin is not allowed (RehabRTC.ehrc.allowed_origins)"}
	errUnauthorized      = &httpError{http.StatusUnauthorized, "missing or wrong API key (Authorization: Bearer <key>)"}
	errNoNamespace       = &httpError{http.StatusNotFound, "No namespace with such an ID"}
)
