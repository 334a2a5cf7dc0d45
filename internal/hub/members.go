package hub

import "slices"

// Membership changes and the notices they cause are queued under the write
// lock, so that every client sees joins and leaves in one order and its
// welcome before anything else. Queuing never blocks; peers whose queue
// overflows are collected and evicted once the lock is released.

// join publishes p, which has been admitted. It replaces the peer with the
// same identity, if any, and queues the welcome for p and peer-joined for
// the others; with a Policy, p's queue is held until handleJoin releases it.
// It reports false if the hub or p is already closing.
func (h *Hub) join(p *peer) bool {
	ice := p.iceServers() // before the lock: it may compute an HMAC
	mint, resume := p.mint, ""
	p.mint = nil // it holds the join key: used here only
	if mint != nil {
		resume = mint(p.info.ID) // also an HMAC: before the lock
	}
	var old *peer
	var slow []*peer
	h.mu.Lock()
	if h.closed || p.closing.Load() {
		h.mu.Unlock()
		return false
	}
	if p.ident.UUID != "" {
		for _, q := range h.list {
			if q.ident == p.ident {
				old = q
				slow = h.removeLocked(q, slow)
				break
			}
		}
	}
	if h.peers[p.info.ID] != nil { // a resumed id someone else holds: a new one
		p.info.ID = p.id
		p.infoJSON = appendPeer(nil, p.info)
		resume = ""
	}
	seen := h.visibleLocked()
	others := make([][]byte, len(seen))
	for i, q := range seen {
		others[i] = q.infoJSON
	}
	if resume == "" && mint != nil { // the id changed under the lock: a token for the new one
		resume = mint(p.info.ID)
	}
	welcome := welcomeFrame(p.info, others, ice, h.cfg.ICEPolicy, resume)
	if h.cfg.Policy != nil {
		p.hold(welcome) // first in its queue, sent once Policy.Joined has run
	} else {
		p.enqueue(welcome) // first in its queue
	}
	joined := peerJoinedFrame(p.infoJSON)
	for _, q := range seen {
		if !q.enqueue(joined) {
			slow = append(slow, q)
		}
	}
	h.peers[p.info.ID] = p
	h.list = append(h.list, p)
	h.cfg.Counters.PeersConnected.Add(1)
	h.mu.Unlock()
	if old != nil {
		old.log().Info("peer replaced", logKeyBy, p.info.ID)
		old.shutdown(endReplaced)
		h.mediaRemove(old) // at once, not when its connection has closed
	}
	h.evict(slow)
	return true
}

// visibleLocked returns the peers that see joins and leaves: all of them,
// or none when a Policy makes the hub private. h.mu must be held.
func (h *Hub) visibleLocked() []*peer {
	if h.cfg.Policy != nil {
		return nil
	}
	return h.list
}

// leave removes p if it is still published (its connection ended).
func (h *Hub) leave(p *peer) {
	var slow []*peer
	h.mu.Lock()
	if h.peers[p.info.ID] == p && p.info.ID != "" {
		slow = h.removeLocked(p, slow)
	}
	h.mu.Unlock()
	h.evict(slow)
}

// evict removes peers whose queue overflowed, then those that overflowed
// on the resulting peer-left notices, and so on.
func (h *Hub) evict(slow []*peer) {
	for len(slow) > 0 {
		var next []*peer
		h.mu.Lock()
		for _, p := range slow {
			if h.peers[p.info.ID] == p && p.info.ID != "" {
				p.log().Warn("peer too slow, disconnecting")
				next = h.removeLocked(p, next)
			}
		}
		h.mu.Unlock()
		slow = next
	}
}

// removeLocked unpublishes p and queues peer-left for the others. It
// returns slow with the peers that overflowed appended. h.mu must be held.
func (h *Hub) removeLocked(p *peer, slow []*peer) []*peer {
	delete(h.peers, p.info.ID)
	if i := slices.Index(h.list, p); i >= 0 {
		h.list = slices.Delete(h.list, i, i+1) // zeroes the tail: no stale pointer
	}
	h.cfg.Counters.PeersConnected.Add(-1)
	left := peerLeftFrame(p.info.ID)
	for _, q := range h.visibleLocked() {
		if !q.enqueue(left) {
			slow = append(slow, q)
		}
	}
	return slow
}

// relay queues frame for the peer named to. A sender that is no longer
// published (removed, replaced) is silently ignored.
func (h *Hub) relay(from *peer, to []byte, frame []byte) *clientError {
	h.mu.RLock()
	if h.peers[from.info.ID] != from {
		h.mu.RUnlock()
		return nil
	}
	dst := h.peers[string(to)]
	if dst == nil {
		h.mu.RUnlock()
		return errUnknownPeer
	}
	ok := dst.enqueue(frame)
	h.mu.RUnlock()
	h.cfg.Counters.MessagesRelayed.Add(1)
	if !ok {
		h.evict([]*peer{dst})
	}
	return nil
}

// broadcast queues one shared frame for every published peer but from.
func (h *Hub) broadcast(from *peer, frame []byte) {
	var buf [4]*peer
	slow := buf[:0]
	n := 0
	h.mu.RLock()
	if h.peers[from.info.ID] == from {
		for _, q := range h.list {
			if q == from {
				continue
			}
			if !q.enqueue(frame) {
				slow = append(slow, q)
			}
			n++
		}
	}
	h.mu.RUnlock()
	h.cfg.Counters.MessagesRelayed.Add(uint64(n))
	h.evict(slow)
}
