package relay

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what coturn verifies (TURN REST API); no collision attack applies to HMAC
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Peer is whom a credential names: one invitee of one running session, or
// (Session < 0) one member of an EHRC consultation office, numbered apart
// so that the two never share a quota or a roster answer.
type Peer struct {
	Session int64  // > 0: a session id; < 0: minus a consultation office's number
	Kind    string // "user", "participant" or "device"
	UUID    string
}

// userID is the TURN user id of p: "<session>.<kind>.<uuid>". It is what
// quotas count and what allocations are tracked by.
func (p Peer) userID() string {
	return strconv.FormatInt(p.Session, 10) + "." + p.Kind + "." + p.UUID
}

// parseUserID is the inverse of userID.
func parseUserID(s string) (Peer, bool) {
	sid, rest, ok := strings.Cut(s, ".")
	if !ok {
		return Peer{}, false
	}
	kind, uuid, ok := strings.Cut(rest, ".")
	n, err := strconv.ParseInt(sid, 10, 64)
	if !ok || err != nil || n == 0 || kind == "" || uuid == "" || strings.ContainsAny(uuid, ":.") {
		return Peer{}, false
	}
	return Peer{Session: n, Kind: kind, UUID: uuid}, true
}

// Credential is a TURN username and password.
type Credential struct {
	Username string
	Password string
	Expires  time.Time
}

// Minter makes and checks TURN REST API credentials: the username is
// "<expiry unix time>:<user id>", the password the base64 HMAC of the
// username under the secret. The embedded server uses HMAC-SHA256 with a
// secret of its own; external coturn servers need HMAC-SHA1.
type Minter struct {
	secret []byte
	hash   func() hash.Hash
	ttl    time.Duration
	now    func() time.Time
}

// NewMinter returns a Minter for the embedded server with a fresh random
// 256-bit secret: credentials die with the process, which is fine because
// peers rejoin (and get new ones) after a restart.
func NewMinter(ttl time.Duration) *Minter {
	secret := make([]byte, 32)
	rand.Read(secret) // never fails (crypto/rand since Go 1.24)
	return &Minter{secret: secret, hash: sha256.New, ttl: ttl, now: time.Now}
}

// NewRESTMinter returns a Minter for external TURN servers that share
// secret (coturn: use-auth-secret, static-auth-secret).
func NewRESTMinter(secret string, ttl time.Duration) *Minter {
	return &Minter{secret: []byte(secret), hash: sha1.New, ttl: ttl, now: time.Now}
}

// TTL is the lifetime of the credentials m mints.
func (m *Minter) TTL() time.Duration { return m.ttl }

// Mint returns a credential for p, valid for the Minter's TTL.
func (m *Minter) Mint(p Peer) Credential {
	exp := m.now().Add(m.ttl).Truncate(time.Second)
	user := strconv.FormatInt(exp.Unix(), 10) + ":" + p.userID()
	return Credential{Username: user, Password: m.password(user), Expires: exp}
}

func (m *Minter) password(username string) string {
	mac := hmac.New(m.hash, m.secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// parseUsername splits "<expiry>:<user id>".
func parseUsername(u string) (exp time.Time, p Peer, ok bool) {
	ts, id, ok := strings.Cut(u, ":")
	if !ok || len(u) > 256 {
		return time.Time{}, Peer{}, false
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, Peer{}, false
	}
	p, ok = parseUserID(id)
	return time.Unix(n, 0), p, ok
}
