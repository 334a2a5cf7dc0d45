package cluster

import "time"

// Stats are a node's cluster figures, for its metrics (docs/scale-out.md).
type Stats struct {
	LeasesHeld int   // sessions served here, and the consultation lease when held
	LeasesLost int64 // leases lost while held: expired, taken over, node lost (releases not counted)
	// HeartbeatAge is the time since the last heartbeat Redis accepted was
	// sent: past 80 % of the lease time, the node is lost.
	HeartbeatAge time.Duration
}

// Stats returns the node's figures now.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	held := len(n.leases)
	n.mu.Unlock()
	return Stats{LeasesHeld: held, LeasesLost: n.leasesLost.Load(),
		HeartbeatAge: time.Since(time.Unix(0, n.lastBeat.Load()))}
}

// Forwarded is how many session actions this node sent to their
// session's home node; Placed, how many starts it sent to a less loaded
// node.
func (h *Homes) Forwarded() (forwarded, placed int64) {
	return h.forwarded.Load(), h.placed.Load()
}
