package sfu

import (
	"slices"
	"strings"
	"time"
)

// TrackStats is what the server sends one subscriber of one track.
type TrackStats struct {
	ID      string `json:"id"`
	Layer   int    `json:"layer"`  // simulcast layer being sent; -1: none (paused, or waiting)
	Target  int    `json:"target"` // layer chosen; differs from Layer until its keyframe
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	NACKs   uint64 `json:"nacks"`  // packets the subscriber asked again
	Resent  uint64 `json:"resent"` // of which answered from the cache
}

// PeerStats is one peer's receive side, for its connection-quality
// indicator and for operators.
type PeerStats struct {
	Peer        string       `json:"peer"`
	EstimateBps int          `json:"estimate_bps"` // what the server thinks the peer can receive
	Tracks      []TrackStats `json:"tracks"`       // by id
}

// Stats returns what the router sends peer.
func (r *Router) Stats(peer string) (PeerStats, error) {
	r.mu.Lock()
	p := r.peers[peer]
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return PeerStats{}, ErrClosed
	}
	if p == nil {
		return PeerStats{}, ErrUnknownPeer
	}
	ps := PeerStats{Peer: peer, EstimateBps: int(p.bwe.estimate(time.Now()))}
	p.mu.Lock()
	downs := make([]*downTrack, 0, len(p.down))
	for _, d := range p.down {
		downs = append(downs, d)
	}
	p.mu.Unlock()
	for _, d := range downs {
		d.mu.Lock()
		ps.Tracks = append(ps.Tracks, TrackStats{ID: d.up.id, Layer: d.cur, Target: d.target,
			Packets: d.packets, Bytes: d.bytes, NACKs: d.nacked, Resent: d.resent})
		d.mu.Unlock()
	}
	slices.SortFunc(ps.Tracks, func(a, b TrackStats) int { return strings.Compare(a.ID, b.ID) })
	return ps, nil
}
