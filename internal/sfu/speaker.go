package sfu

import (
	"slices"

	"github.com/pion/webrtc/v4"
)

// speakingLevel is the smoothed loudness above which a peer counts as
// speaking: louder than −50 dBov (RFC 6464 levels, ×16 fixed point).
const speakingLevel = (127 - 50) * 16

// maxSpeakers is how many active speakers the pages are told about.
const maxSpeakers = 3

// updateSpeakers tells every page when the set of active speakers changes,
// loudest first. Runs on the router's loop.
func (r *Router) updateSpeakers(peers []*participant, ups []*upTrack) {
	type loud struct {
		peer  string
		level int32
	}
	var ls []loud
	for _, u := range ups {
		if u.kind != webrtc.RTPCodecTypeAudio {
			continue
		}
		l := u.layers[0]
		if l.rate[3] == 0 { // no packets in the last tick: silence
			u.level.Store(0)
		}
		if v := u.level.Load(); v >= speakingLevel {
			ls = append(ls, loud{u.publisher.id, v})
		}
	}
	slices.SortFunc(ls, func(a, b loud) int { return int(b.level - a.level) })
	var speakers []string
	for _, l := range ls {
		if !slices.Contains(speakers, l.peer) && len(speakers) < maxSpeakers {
			speakers = append(speakers, l.peer)
		}
	}
	r.mu.Lock()
	same := slices.Equal(speakers, r.speakers)
	r.speakers = speakers
	r.mu.Unlock()
	if same {
		return
	}
	for _, p := range peers {
		p.mu.Lock()
		if !p.closed {
			p.signal(Message{Type: TypeSpeakers, Speakers: speakers})
		}
		p.mu.Unlock()
	}
}
