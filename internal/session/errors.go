package session

import (
	"errors"
	"fmt"
)

// Code classifies an error by what the caller can do about it. Adapters map
// it to an HTTP status or an RPC reply; Text is what the caller sees.
type Code int

// Error codes.
const (
	CodeInternal    Code = iota // our fault; details only in the logs
	CodeBadRequest              // the request is malformed or invalid
	CodeNotFound                // no such session
	CodeUnavailable             // no session port left
	CodeForbidden               // a key that does not open this door
)

// Error is an error with a public face: Text is safe to show to clients,
// Err (if any) goes only to the logs.
type Error struct {
	Code Code
	Text string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Text, e.Err)
	}
	return e.Text
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Text: fmt.Sprintf(format, args...)}
}

func internal(text string, err error) *Error {
	return &Error{Code: CodeInternal, Text: text, Err: err}
}

// Sentinel errors that other packages test with errors.Is.
var (
	ErrNotFound   = errors.New("session not found")
	ErrNoPort     = errors.New("no available port left")
	ErrDenied     = errors.New("access denied")
	ErrPortInUse  = errors.New("port already in use")
	ErrNotRunning = errors.New("session not running")
)

// PublicError returns the code and client-safe text of err. Errors that are
// not *Error are internal: their text is never shown.
func PublicError(err error) (Code, string) {
	var e *Error
	if errors.As(err, &e) {
		if e.Code == CodeInternal && e.Text == "" {
			return CodeInternal, "internal error"
		}
		return e.Code, e.Text
	}
	return CodeInternal, "internal error"
}
