package hub

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
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

// ICEProvider hands a joined peer its ICE servers (a JSON array of
// RTCIceServer) and when their credentials expire (zero: never). The hub
// asks again and sends the new list in an ice-servers message once half
// the time left has passed (checked at each heartbeat), as long as the
// peer stays. It is
// called from the peer's goroutines: it must be fast and must not block.
type ICEProvider interface {
	ICEServers(id Identity) (servers json.RawMessage, expires time.Time)
}

// Observer learns presence. It is called from the peer's own Serve goroutine
// (PeerJoined after its welcome is queued, PeerLeft once its connection has
// ended), never with a hub lock held, so it must not block long. For a given
// peer, PeerLeft always follows PeerJoined.
type Observer interface {
	PeerJoined(PeerInfo)
	PeerLeft(PeerInfo)
}

// Counters is shared by all the hubs of a process so /metrics can read
// totals, and so the caps on connections that have not joined yet hold for
// the whole process. The zero value is ready to use.
type Counters struct {
	PeersConnected  atomic.Int64  // joined peers right now
	MessagesRelayed atomic.Uint64 // signal and message frames queued to a recipient (a broadcast to n peers counts n)
	Errors          atomic.Uint64 // error replies plus connections closed for a fault (unauthorized, protocol, too big, binary, slow, heartbeat, write timeout, rate limited, busy)
	Joins           atomic.Uint64 // successful joins
	JoinsRefused    atomic.Uint64 // joins refused: bad key or session over
	Pending         atomic.Int64  // connections served that have not joined yet, right now

	mu        sync.Mutex     // guards pendingBy and the check-then-add of Pending
	pendingBy map[string]int // Pending by client address ("" not counted)
}

// addPending counts one more pending connection from addr, unless that
// would exceed a cap; it then returns which one ("address" or "total").
func (c *Counters) addPending(addr string, perAddr, total int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Pending.Load() >= int64(total) {
		return "total"
	}
	if addr != "" {
		if c.pendingBy[addr] >= perAddr {
			return "address"
		}
		if c.pendingBy == nil {
			c.pendingBy = make(map[string]int)
		}
		c.pendingBy[addr]++
	}
	c.Pending.Add(1)
	return ""
}

func (c *Counters) removePending(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Pending.Add(-1)
	if addr == "" {
		return
	}
	if c.pendingBy[addr]--; c.pendingBy[addr] <= 0 {
		delete(c.pendingBy, addr)
	}
}

// Config configures a [Hub]. Zero values get the defaults named on each field.
type Config struct {
	Admitter Admitter  // required
	Observer Observer  // may be nil
	Counters *Counters // may be nil
	Policy   Policy    // nil: the session rules of docs/protocol.md; see [Policy]
	Media    Media     // nil: no media server, "sfu-*" messages are unknown types; see [Media]

	// ICEServers is sent as-is in welcome.iceServers ("[]" if nil). It must be
	// a JSON value; an invalid one is logged and replaced by "[]".
	ICEServers json.RawMessage
	// ICE, if set, replaces ICEServers with each peer's own servers (TURN
	// credentials bound to the invitation), renewed with an ice-servers
	// message before they expire (docs/protocol.md).
	ICE ICEProvider
	// ICEPolicy is sent as welcome.iceTransportPolicy when set ("relay":
	// the test-only switch that makes pages use relayed candidates only).
	ICEPolicy string

	Logger *slog.Logger // child logger of the session; nil discards

	// The outgoing queue of each connection, in frames and in bytes: far
	// above what a reader that keeps reading ever holds, so that only a
	// client that stops reading fills it; the bytes bound its memory.
	QueueLen     int           // default 4096 frames
	QueueBytes   int           // default 4 MiB
	PingInterval time.Duration // default 20s
	PongTimeout  time.Duration // a ping unanswered this long closes with 4010; default 45s
	WriteTimeout time.Duration // a write (of the frames queued at that moment) slower than this drops the connection; default 5s
	JoinTimeout  time.Duration // time allowed to send join; default 10s

	// The message budget of each client (docs/protocol.md): a token bucket
	// of RateBurst tokens refilled at RateLimit per second; a message costs
	// one token plus one per full 16 KiB. Over budget, the client gets
	// rate-limited and is closed with 4029. Defaults 100/s and 120, so that
	// the default queue holds the bursts of 34 clients at once (4096/120
	// frames): a burst cannot get a peer that keeps reading cut as too slow.
	RateLimit float64
	RateBurst float64

	// Caps on connections that have not joined yet (the join deadline ends
	// them), counted over every hub that shares Counters: per client
	// address (ServeHTTP only) and in total. Over a cap, a connection gets
	// busy and is closed with 1013. Defaults 16 and 1024.
	MaxPendingPerAddr int
	MaxPending        int

	// ClientAddress names the client of a request for the per-address cap
	// (ServeHTTP): the service's one rule (internal/clientaddr, wired by
	// cmd/rehabrtc). "" counts only in the total cap. An IPv6 address
	// counts by its /64. nil: the TCP peer, or from loopback the last
	// X-Forwarded-For hop.
	ClientAddress func(r *http.Request) string
}

// Defaults of [Config].
const (
	DefaultQueueLen     = 4096
	DefaultQueueBytes   = 4 << 20
	DefaultPingInterval = 20 * time.Second
	DefaultPongTimeout  = 45 * time.Second
	DefaultWriteTimeout = 5 * time.Second
	DefaultJoinTimeout  = 10 * time.Second
	DefaultRateLimit    = 100
	DefaultRateBurst    = 120

	DefaultMaxPendingPerAddr = 16
	DefaultMaxPending        = 1024

	// MaxFrame is the largest text frame a client may send (docs/protocol.md).
	MaxFrame = 64 << 10
)

func (c Config) withDefaults() Config {
	if c.QueueLen <= 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
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
	if c.RateLimit <= 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.RateBurst <= 0 {
		c.RateBurst = DefaultRateBurst
	}
	if c.MaxPendingPerAddr <= 0 {
		c.MaxPendingPerAddr = DefaultMaxPendingPerAddr
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
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
