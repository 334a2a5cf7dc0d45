package sfu

import (
	"slices"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// option is one way to forward a video track: a spatial layer and the
// highest temporal layer, with what it costs.
type option struct {
	layer int
	tid   uint8
	rate  float64
}

// candidate is one of a subscriber's video tracks during allocation.
type candidate struct {
	d      *downTrack
	opts   []option // cheapest first
	want   int      // highest option index the tile needs
	choice int      // chosen option index; -1: paused
	now    int      // option index being forwarded now, or -1
	screen bool
	height int32
}

// options lists the ways to forward u, cheapest first. A screen share with
// temporal layers gets every frame-rate step of a layer before the next
// layer down: it keeps its resolution and drops frame rate first.
func options(u *upTrack) []option {
	var opts []option
	for _, l := range u.layers {
		if !l.active() {
			continue
		}
		if u.source == "screen" && l.hasTemporal() {
			for t := uint8(0); t < allTIDs; t++ {
				opts = append(opts, option{l.index, t, l.bitrate(t)})
			}
			continue
		}
		opts = append(opts, option{l.index, allTIDs, l.bitrate(allTIDs)})
	}
	return opts
}

// wantIndex is the highest option a tile of height h needs: the smallest
// layer at least as tall as the tile (layer heights come from keyframes).
func wantIndex(u *upTrack, opts []option, h int32) int {
	if h < 0 || len(opts) == 0 {
		return len(opts) - 1
	}
	want := len(opts) - 1
	for i := len(opts) - 1; i >= 0; i-- {
		l := u.layers[opts[i].layer]
		l.mu.Lock()
		lh := int32(l.height)
		l.mu.Unlock()
		if lh == 0 { // size unknown yet: do not limit
			return len(opts) - 1
		}
		if lh >= h {
			want = i
		}
	}
	// want is the cheapest option of the smallest sufficient layer; take
	// that layer's full frame rate.
	for want+1 < len(opts) && opts[want+1].layer == opts[want].layer {
		want++
	}
	return want
}

// allocate chooses, for each video track this participant receives, the
// layer that fits its bandwidth estimate and tile size: cheapest layers
// first, then upgrades in priority order (screen share, then bigger
// tiles) while the sum stays within the estimate. Every shown track keeps
// at least its lowest layer; only a hidden tile (height 0) is paused.
func (p *participant) allocate(now time.Time) {
	budget := p.bwe.estimate(now)
	p.mu.Lock()
	downs := make([]*downTrack, 0, len(p.down))
	for _, d := range p.down {
		downs = append(downs, d)
	}
	p.mu.Unlock()
	var cands []*candidate
	for _, d := range downs {
		if d.up.kind == webrtc.RTPCodecTypeAudio {
			budget -= d.up.layers[0].bitrate(allTIDs)
			continue
		}
		if c := newCandidate(d); c != nil {
			cands = append(cands, c)
		}
	}
	slices.SortStableFunc(cands, func(a, b *candidate) int {
		if a.screen != b.screen {
			if a.screen {
				return -1
			}
			return 1
		}
		return int(b.height - a.height)
	})
	spare := budget - fit(cands, budget)
	for _, c := range cands {
		need := needLayer(c, spare)
		if c.choice >= 0 && need > c.opts[c.choice].layer {
			spare -= c.d.up.layers[need].lastRate - c.d.up.layers[c.opts[c.choice].layer].lastRate
		}
		c.d.need.Store(int32(need))
		layer, tid := noLayer, uint8(allTIDs)
		if c.choice >= 0 {
			layer, tid = c.opts[c.choice].layer, c.opts[c.choice].tid
		}
		c.d.setTarget(layer, tid)
	}
	for _, d := range downs { // keyframe retries (rate-limited per layer)
		if w := d.waiting(); w != noLayer {
			d.requestKeyframe(w)
		}
	}
}

func newCandidate(d *downTrack) *candidate {
	opts := options(d.up)
	if len(opts) == 0 {
		return nil // nothing flows yet: keep the initial target
	}
	h := d.reqHeight.Load()
	c := &candidate{d: d, opts: opts, want: wantIndex(d.up, opts, h), now: -1,
		screen: d.up.source == "screen", height: h}
	if h < 0 {
		c.height = 1 << 14
	}
	if h == 0 {
		c.want = -1 // hidden tile
	}
	cur, _, tid := d.state()
	for i, o := range opts {
		if o.layer == cur && o.tid == tid {
			c.now = i
		}
	}
	return c
}

// fit picks each candidate's option within budget (bits/s); it returns
// the sum of the chosen options' rates.
func fit(cands []*candidate, budget float64) float64 {
	var sum float64
	for _, c := range cands {
		c.choice = -1
		if c.want >= 0 {
			c.choice = 0
			sum += c.opts[0].rate
		}
	}
	// A shown track is never paused for bandwidth: it keeps its lowest
	// layer. A browser's REMB follows what it receives, so a paused track
	// would never bring the estimate back up: the tile would freeze for
	// good (seen in Chromium, whose first estimates sit below the lowest
	// layers of four cameras).
	for changed := true; changed; {
		changed = false
		for _, c := range cands {
			if c.choice < 0 || c.choice >= c.want {
				continue
			}
			next := c.opts[c.choice+1]
			delta := next.rate - c.opts[c.choice].rate
			limit := budget
			if c.choice+1 > c.now {
				limit = 0.9 * budget // headroom before going above what flows now
			}
			if sum+delta <= limit {
				c.choice++
				sum += delta
				changed = true
			}
		}
	}
	return sum
}

// capPublisher announces the bitrate limit to the publisher (REMB) and
// tells the page once if it stays far above it.
func (p *participant) capPublisher(limit int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pub == nil || p.closed {
		return
	}
	var ssrcs []uint32
	var total float64
	for _, u := range p.published {
		for _, l := range u.layers {
			total += l.bitrate(allTIDs)
			if ssrc, _, pc := l.source(); ssrc != 0 && pc == p.pub && u.kind == webrtc.RTPCodecTypeVideo {
				ssrcs = append(ssrcs, ssrc)
			}
		}
	}
	if len(ssrcs) > 0 {
		_ = p.pubRTCPOut.write([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(limit), SSRCs: ssrcs}})
	}
	if total > 1.5*float64(limit) {
		p.overLimit++
	} else {
		p.overLimit = 0
	}
	if p.overLimit >= 3 && !p.warned {
		p.warned = true
		p.log.Warn("sfu: publisher above its bitrate limit", "bps", int(total), "limit", limit)
		p.signal(Message{Type: TypeError, Code: ErrBitrate.Code, Text: ErrBitrate.Text})
	}
}
