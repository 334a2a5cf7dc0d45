package session

import (
	"context"
	"encoding/json"
	"log/slog"
)

// Store keeps session records. Implementations must be safe for concurrent
// use and durable when a call returns: a restart (even kill -9) must find
// every record as last written.
type Store interface {
	// Create stores a new record, assigning r.ID (never reused). A store
	// backed by another system of record (OpenTera's main server) may also
	// fill in r.UUID, r.Name and r.StartTime from it.
	Create(ctx context.Context, r *Record) error
	// Put writes an existing record whole.
	Put(ctx context.Context, r *Record) error
	// Get returns the record of id, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id int64) (*Record, error)
	// List returns every record, by increasing id.
	List(ctx context.Context) ([]*Record, error)
}

// Ports hands out the session ports of [local_base_port,
// local_base_port+max_sessions).
type Ports interface {
	// Acquire takes a free port, or fails with ErrNoPort.
	Acquire() (int, error)
	// Claim takes a given port (used when restoring a session), or fails with
	// ErrPortInUse.
	Claim(port int) error
	// Release gives a port back.
	Release(port int)
}

// Gate admits the invitees of one running session. It is handed to the
// session's endpoint; it never reveals the keys it checks.
type Gate interface {
	// Admit returns who key (with uuid, for kind-level keys) lets in.
	Admit(ctx context.Context, key, uuid string) (Identity, error)
	// Valid reports whether key is any live key of the session.
	Valid(ctx context.Context, key string) bool
}

// Person is what a member may learn of themselves from the session: their
// display name and language, and the therapist's name (for the waiting
// room). Empty fields are unknown.
type Person struct {
	Name      string `json:"name"`
	Lang      string `json:"lang"`
	Therapist string `json:"therapist"`
}

// PersonGate is a Gate that can also tell a member who they are (the
// Manager's gate is one; a child process's is not).
type PersonGate interface {
	Person(ctx context.Context, key, uuid string) (Person, error)
}

// RunSpec describes the endpoint a Runner starts for one session.
type RunSpec struct {
	SessionID   int64
	SessionUUID string
	Port        int
	Gate        Gate
	Logger      *slog.Logger
	// Parameters are the session's session_parameters as recorded (raw
	// JSON, possibly empty); the endpoint reads its media_mode there.
	Parameters json.RawMessage
	// TypeConfig is the session type's configuration (Record.TypeConfig):
	// its media_mode applies when Parameters has none.
	TypeConfig json.RawMessage
	// MediaOnSFU is the record's (Record.MediaOnSFU): an auto session
	// that was on the server with three or more people restarts there.
	MediaOnSFU bool
	// Media records where an auto session's media goes; never nil from
	// the Manager.
	Media MediaRecorder
}

// MediaRecorder keeps a running auto session's media path in its record
// (Record.MediaOnSFU). The endpoint calls it when the path it would want a
// restart to resume changes; it must not block (the write happens in the
// background, the last call wins).
type MediaRecorder interface {
	MediaOnSFU(on bool)
}

// Runner starts session endpoints: an in-process listener by default, a
// child process in OpenTera's process-per-session mode.
type Runner interface {
	Start(ctx context.Context, spec RunSpec) (Endpoint, error)
}

// StopReason tells the peers of an endpoint why it stops.
type StopReason int

// Why an endpoint stops.
const (
	StopEnded    StopReason = iota // the session was stopped: do not come back
	StopShutdown                   // the server restarts: reconnect
)

// Peer is someone connected to a session right now.
type Peer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	UUID string `json:"uuid"`
	Role Kind   `json:"role"`
}

// Endpoint is a running session's signaling endpoint. How requests reach
// it (a handler called in process, a proxy to a child's port) is the
// Runner's business, not the Manager's.
type Endpoint interface {
	// Kick disconnects every connection of an invitee that was removed.
	Kick(id Identity)
	// Peers lists who is connected. It may ask another process: the
	// Manager never calls it holding a lock.
	Peers() []Peer
	// Ready is closed once the endpoint answers requests (at once for an
	// in-process endpoint, when a child process has booted otherwise). The
	// Manager sends no invitation before.
	Ready() <-chan struct{}
	// Done is closed once the endpoint has ended on its own (a child process
	// that crashed or was killed); Err then says why. It is nil for an
	// endpoint that can only end through Stop.
	Done() <-chan struct{}
	Err() error
	// Stop tells every peer why, disconnects them, frees the port and waits
	// (bounded by ctx) until everything the endpoint started has ended.
	Stop(ctx context.Context, why StopReason) error
}
