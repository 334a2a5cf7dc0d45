package hub

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"
)

// Role is what a peer may do in a session; the [Admitter] decides it from the key.
type Role string

// The roles of docs/protocol.md.
const (
	RoleUser        Role = "user"
	RoleParticipant Role = "participant"
	RoleDevice      Role = "device"
)

func (r Role) valid() bool {
	return r == RoleUser || r == RoleParticipant || r == RoleDevice
}

// Identity is who a peer is, as far as the session is concerned. Two
// connections with the same Identity are the same invitee: the newer one
// replaces the older. An empty UUID is anonymous and never replaces anyone.
type Identity struct {
	Role Role
	UUID string
}

// Admitter checks a join key. Any error means unauthorized: the hub never
// shows the error text to the client, and logs it without the key. ctx is
// cancelled if the connection ends meanwhile (Close, Kick, request context).
type Admitter interface {
	Admit(ctx context.Context, key, uuid string) (Identity, error)
}

// PeerInfo is a joined peer as the other peers see it.
type PeerInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	UUID string `json:"uuid"`
	Role Role   `json:"role"`
}

// Observer learns presence. It is called from the peer's own Serve goroutine
// (PeerJoined after its welcome is queued, PeerLeft once its connection has
// ended), never with a hub lock held, so it must not block long. For a given
// peer, PeerLeft always follows PeerJoined.
type Observer interface {
	PeerJoined(PeerInfo)
	PeerLeft(PeerInfo)
}

// Counters is shared by all the hubs of a process so /metrics can read totals.
type Counters struct {
	PeersConnected  atomic.Int64  // joined peers right now
	MessagesRelayed atomic.Uint64 // signal and message frames queued to a recipient (a broadcast to n peers counts n)
	Errors          atomic.Uint64 // error replies plus connections closed for a fault (unauthorized, protocol, too big, binary, slow, heartbeat, write timeout)
	Joins           atomic.Uint64 // successful joins
	JoinsRefused    atomic.Uint64 // joins refused: bad key or session over
}

// Config configures a [Hub]. Zero values get the defaults named on each field.
type Config struct {
	Admitter Admitter  // required
	Observer Observer  // may be nil
	Counters *Counters // may be nil
	Policy   Policy    // nil: the session rules of docs/protocol.md; see [Policy]

	// ICEServers is sent as-is in welcome.iceServers ("[]" if nil). It must be
	// a JSON value; an invalid one is logged and replaced by "[]".
	ICEServers json.RawMessage

	Logger *slog.Logger // child logger of the session; nil discards

	QueueLen     int           // outgoing frames per connection; default 256
	PingInterval time.Duration // default 20s
	PongTimeout  time.Duration // a ping unanswered this long closes with 4010; default 45s
	WriteTimeout time.Duration // a batch of queued frames slower to write drops the connection; default 5s
	JoinTimeout  time.Duration // time allowed to send join; default 10s
}

// Defaults of [Config].
const (
	DefaultQueueLen     = 256
	DefaultPingInterval = 20 * time.Second
	DefaultPongTimeout  = 45 * time.Second
	DefaultWriteTimeout = 5 * time.Second
	DefaultJoinTimeout  = 10 * time.Second

	// MaxFrame is the largest text frame a client may send (docs/protocol.md).
	MaxFrame = 64 << 10
)

func (c Config) withDefaults() Config {
	if c.QueueLen <= 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = DefaultPongTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = DefaultJoinTimeout
	}
	if c.Counters == nil {
		c.Counters = new(Counters)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ICEServers == nil {
		c.ICEServers = json.RawMessage("[]")
	}
	return c
}

// CloseReason says why [Hub.Close] ends a session, which decides what the
// clients are told. The zero value is SessionEnded.
type CloseReason int

const (
	// SessionEnded: {"type":"session-ended"} and close 4003; clients do not reconnect.
	SessionEnded CloseReason = iota
	// ServerShutdown: {"type":"server-shutdown"} and close 4004; clients reconnect with backoff.
	ServerShutdown
)

func (r CloseReason) String() string {
	if r == ServerShutdown {
		return "server-shutdown"
	}
	return "session-ended"
}
