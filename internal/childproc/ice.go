package childproc

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Timeouts of the per-peer ICE question a child asks its parent.
const (
	iceTimeout = time.Second      // a local round trip takes microseconds
	iceRetry   = 10 * time.Second // after a failed question: the static list, asked again soon
)

// PeerICE mints each admitted peer's ICE servers (TURN credentials bound to
// the invitation) in the parent: the same method set as
// endpoint.PeerICE, so main hands the one it has.
type PeerICE interface {
	ICEServers(sessionID int64, id session.Identity) (json.RawMessage, time.Time)
	Policy() string
}

// ICE is what a native child hands its peers: the parent's static list and,
// when the parent mints per-peer credentials, a PeerICE that asks the
// parent for each peer over the control channel (nil otherwise).
type ICE struct {
	Servers json.RawMessage
	Peer    PeerICE
}

// remoteICE is the child's PeerICE: the parent alone holds the TURN secret.
type remoteICE struct {
	c      *conn
	static json.RawMessage
	policy string
}

// ICEServers asks the parent. The hub calls it from a peer's goroutines
// (welcome, renewal), so it is bounded by iceTimeout; if the parent does
// not answer, the peer gets the static list, renewed again after iceRetry.
func (r remoteICE) ICEServers(_ int64, id session.Identity) (json.RawMessage, time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), iceTimeout)
	defer cancel()
	m, err := r.c.call(ctx, Msg{Op: opICE, Kind: id.Kind, UUID: id.UUID})
	if err != nil || !m.OK || !json.Valid(m.ICE) {
		return r.static, time.Now().Add(iceRetry)
	}
	var exp time.Time
	if m.Expires > 0 {
		exp = time.Unix(m.Expires, 0)
	}
	return m.ICE, exp
}

func (r remoteICE) Policy() string { return r.policy }

// iceReply answers a child's "ice" question for one of its peers. The TURN
// server checks every request against the live roster, so credentials
// minted for someone not (or no longer) invited are refused there.
func iceReply(p PeerICE, sessionID int64, m Msg) Msg {
	r := Msg{Op: opReply, ID: m.ID}
	if p == nil || m.UUID == "" || !validKind(m.Kind) {
		return r
	}
	servers, exp := p.ICEServers(sessionID, session.Identity{Kind: m.Kind, UUID: m.UUID})
	r.OK, r.ICE = true, servers
	if !exp.IsZero() {
		r.Expires = exp.Unix()
	}
	return r
}

func validKind(k session.Kind) bool {
	for _, v := range session.Kinds {
		if k == v {
			return true
		}
	}
	return false
}
