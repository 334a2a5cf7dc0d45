package sfu

import (
	"slices"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// Dynacast: a publisher encodes only the simulcast layers some subscriber
// needs. In a grid of thumbnails nobody receives the full-size layer, yet
// encoding it is most of each browser's encoding work (docs/performance.md).
// The router's tick works out, per published video track, the highest
// layer any subscriber needs, and tells the page which layers to send
// (TypeLayers); the page sets encodings[i].active.

// pauseAfter is how long a layer stays unneeded before it is paused:
// raising is immediate, lowering is not, so a tile that flips size does not
// make the encoder start and stop a layer each time.
const pauseAfter = 2 * time.Second

// dynacast is one upTrack's pause state, owned by the router's tick.
type dynacast struct {
	pc         *webrtc.PeerConnection // publish connection the page was told about
	sent       [maxLayers]bool        // active layers as the page has them
	lastNeeded [maxLayers]time.Time
}

// needLayer is the highest layer downTrack c.d needs, from every layer the
// publisher sends or could send (paused ones included): the smallest layer
// as tall as the tile; when bandwidth held the allocation below what the
// tile wants among flowing layers, the chosen one; never below what is
// being forwarded or switched to. noLayer: none (a hidden tile).
func needLayer(c *candidate, spare float64) int {
	need := noLayer
	if c.want >= 0 {
		need = tileLayer(c.d.up, c.height, c.d.reqHeight.Load() < 0)
		if c.choice >= 0 {
			chosen := c.opts[c.choice].layer
			switch {
			case c.choice < c.want: // bandwidth-bound among flowing layers
				need = chosen
			case need > chosen: // a paused layer: only if it is likely to fit
				need = affordable(c.d.up, chosen, need, spare)
			}
		}
	}
	cur, target, _ := c.d.state()
	return max(need, cur, target)
}

// tileLayer is the smallest attached layer at least h tall; the highest
// attached one when h is unlimited, too tall, or a layer's size is unknown.
func tileLayer(u *upTrack, h int32, unlimited bool) int {
	top := noLayer
	for _, l := range u.layers {
		if ssrc, _, _ := l.source(); ssrc != 0 {
			top = l.index
		}
	}
	if unlimited {
		return top
	}
	for _, l := range u.layers[:top+1] {
		l.mu.Lock()
		lh, ssrc := int32(l.height), l.ssrc
		l.mu.Unlock()
		if ssrc == 0 {
			continue
		}
		if lh == 0 {
			return top
		}
		if lh >= h {
			return l.index
		}
	}
	return top
}

// affordable steps from the chosen layer up to want through paused layers
// while their last known rate fits in the subscriber's spare budget; a
// layer never measured is assumed to fit.
func affordable(u *upTrack, chosen, want int, spare float64) int {
	base := u.layers[chosen].lastRate
	for i := chosen + 1; i <= want; i++ {
		if r := u.layers[i].lastRate; r > 0 && r-base > spare {
			return i - 1
		}
	}
	return want
}

// updateDynacast tells the publisher of each simulcast track which layers
// to send. Called by the router's tick after every subscriber's allocation.
func (r *Router) updateDynacast(ups []*upTrack, now time.Time) {
	for _, u := range ups {
		if u.kind != webrtc.RTPCodecTypeVideo {
			continue
		}
		var rids [maxLayers]string
		n := 0
		var pc *webrtc.PeerConnection
		for i, l := range u.layers {
			l.mu.Lock()
			if l.ssrc != 0 && l.rid != "" {
				rids[i], pc = l.rid, l.pc
				n++
			}
			l.mu.Unlock()
		}
		if n < 2 {
			continue // not simulcast: nothing to pause
		}
		need := noLayer
		for _, d := range *u.subs.Load() {
			need = max(need, int(d.need.Load()))
		}
		if active, ok := u.dyn.decide(rids, pc, need, now); ok {
			u.publisher.sendLayers(u, active)
		}
	}
}

// decide returns the rids to keep active and whether the page must be
// told: a layer up to need is active at once; one above it only once
// unneeded for pauseAfter; the lowest attached layer always.
func (s *dynacast) decide(rids [maxLayers]string, pc *webrtc.PeerConnection, need int, now time.Time) ([]string, bool) {
	if s.pc != pc { // a new publish connection starts with every layer on
		s.pc = pc
		for i := range s.sent {
			s.sent[i] = true
			s.lastNeeded[i] = now
		}
	}
	var want [maxLayers]bool
	lowest := true
	for i, rid := range rids {
		if rid == "" {
			continue
		}
		if i <= need {
			s.lastNeeded[i] = now
		}
		want[i] = lowest || now.Sub(s.lastNeeded[i]) < pauseAfter
		lowest = false
	}
	changed := false
	var active []string
	for i, rid := range rids {
		if rid == "" {
			continue
		}
		if want[i] != s.sent[i] {
			changed = true
			s.sent[i] = want[i]
		}
		if want[i] {
			active = append(active, rid)
		}
	}
	return active, changed
}

// sendLayers tells the page which encodings of u to send.
func (p *participant) sendLayers(u *upTrack, active []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.pub == nil {
		return
	}
	p.signal(Message{Type: TypeLayers, PC: PCPublish, Track: strings.TrimPrefix(u.id, p.id+"/"),
		Mid: u.mid, Active: slices.Clone(active)})
}
