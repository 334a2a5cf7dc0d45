package sfu

import "errors"

// Error is a refusal with a public face: Code is stable, Text is safe to
// show to a user. Internal detail, if any, is in Err and goes only to logs.
type Error struct {
	Code string
	Text string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Text + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Text
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches errors by code, so errors.Is(err, ErrTooManyTracks) holds for
// a wrapped copy with detail.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Public errors of the router.
var (
	ErrClosed        = &Error{Code: "sfu-closed", Text: "the media server of this session has stopped"}
	ErrUnknownPeer   = &Error{Code: "sfu-unknown-peer", Text: "this peer is not in the session's media"}
	ErrBadMessage    = &Error{Code: "sfu-bad-message", Text: "malformed media signaling message"}
	ErrNegotiation   = &Error{Code: "sfu-negotiation", Text: "the media connection could not be negotiated"}
	ErrTooManyTracks = &Error{Code: "sfu-too-many-tracks", Text: "too many tracks published by one peer"}
	ErrBitrate       = &Error{Code: "sfu-bitrate-limit", Text: "sending more than the session allows; lower the video quality"}
	ErrUnknownTrack  = &Error{Code: "sfu-unknown-track", Text: "no such track"}
)

// withDetail returns a copy of e carrying err for the logs.
func withDetail(e *Error, err error) *Error {
	return &Error{Code: e.Code, Text: e.Text, Err: err}
}
