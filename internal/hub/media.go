package hub

import (
	"bytes"
	"slices"
)

// Media is the session's media server (its SFU), which the hub feeds with
// its own admission: only a joined peer is added, only a joined peer's
// messages reach it, and a peer that leaves, is removed or replaced is
// removed from it at once. The hub knows nothing of media: it passes
// frames whose type starts with "sfu-" as they are, and the media server
// answers through [Hub.Send].
//
// The methods are called from the peer's own Serve goroutine (Handle, Add,
// and Remove when the connection ends) or from Kick's caller, never with a
// hub lock held; they may therefore call Send and Peers.
type Media interface {
	// Add is called once the peer's welcome is queued.
	Add(peer string)
	// Handle takes one frame of a joined peer; frame is only valid during
	// the call. Refusals are the media server's to send (through Send).
	Handle(peer string, frame []byte)
	// Remove is called when the peer leaves or is removed; it may come
	// more than once, or for a peer never added.
	Remove(peer string)
}

// mediaPrefix starts the type of every message for the media server.
var mediaPrefix = []byte("sfu-")

func isMediaType(t []byte) bool { return bytes.HasPrefix(t, mediaPrefix) }

// Send queues a frame the server wrote (a JSON object) for the joined peer
// id. It reports false if there is no such peer; a peer whose queue is
// full is disconnected as too slow, as for any other frame.
func (h *Hub) Send(id string, frame []byte) bool {
	h.mu.RLock()
	p := h.peers[id]
	ok := p != nil && p.enqueue(slices.Clip(frame))
	h.mu.RUnlock()
	if p != nil && !ok {
		h.evict([]*peer{p})
	}
	return ok
}

// handleMedia passes a joined peer's media frame to the media server.
func (p *peer) handleMedia(frame []byte) *clientError {
	media := p.hub.cfg.Media
	if media == nil {
		return errUnknownType // no media server here: the session is mesh only
	}
	media.Handle(p.info.ID, frame)
	return nil
}

// mediaAdd and mediaRemove tell the media server, if any.
func (h *Hub) mediaAdd(p *peer) {
	if h.cfg.Media != nil {
		h.cfg.Media.Add(p.info.ID)
	}
}

// mediaRemove reads only p.info, read-only once p is published: Kick
// calls it too. Peer ids are the published ones (a resumed connection
// keeps its id).
func (h *Hub) mediaRemove(p *peer) {
	if h.cfg.Media != nil {
		h.cfg.Media.Remove(p.info.ID)
	}
}

// mediaLeft removes a joined peer whose connection ended, unless a newer
// connection has taken its id meanwhile (a resume): the media server's
// participant is then the new connection's.
func (h *Hub) mediaLeft(p *peer) {
	h.mu.RLock()
	q := h.peers[p.info.ID]
	h.mu.RUnlock()
	if q == nil || q == p {
		h.mediaRemove(p)
	}
}
