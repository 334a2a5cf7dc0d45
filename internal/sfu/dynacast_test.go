package sfu

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func TestDynacastDecide(t *testing.T) {
	rids := [maxLayers]string{"q", "h", "f"}
	pc := &webrtc.PeerConnection{}
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name   string
		at     time.Duration
		need   int
		active []string // nil: no message
	}{
		{"everything needed: the page already sends it all", 0, 2, nil},
		{"thumbnails only, not for long enough", time.Second, 0, nil},
		{"thumbnails only for 2 s: h and f pause", 2100 * time.Millisecond, 0, []string{"q"}},
		{"still thumbnails", 3 * time.Second, 0, nil},
		{"a middle tile: h at once", 3100 * time.Millisecond, 1, []string{"q", "h"}},
		{"a big tile: f at once", 3200 * time.Millisecond, 2, []string{"q", "h", "f"}},
		{"hidden everywhere: f goes after 2 s, q stays", 5300 * time.Millisecond, noLayer, []string{"q"}},
	} {
		var s dynacast
		// Replay the steps up to this one: the state is the history.
		var got []string
		var ok bool
		var steps []time.Duration
		var needs []int
		for _, p := range []struct {
			at   time.Duration
			need int
		}{{0, 2}, {time.Second, 0}, {2100 * time.Millisecond, 0}, {3 * time.Second, 0}, {3100 * time.Millisecond, 1}, {3200 * time.Millisecond, 2}, {4 * time.Second, noLayer}, {5 * time.Second, noLayer}, {5300 * time.Millisecond, noLayer}} {
			if p.at > tc.at {
				break
			}
			steps, needs = append(steps, p.at), append(needs, p.need)
		}
		for i := range steps {
			got, ok = s.decide(rids, pc, needs[i], t0.Add(steps[i]))
		}
		if tc.active == nil && ok || tc.active != nil && (!ok || !slices.Equal(got, tc.active)) {
			t.Errorf("%s: told %v (%v), want %v", tc.name, got, ok, tc.active)
		}
	}
	// A new publish connection starts with every layer on: told again.
	var s dynacast
	s.decide(rids, pc, 0, t0)
	if got, ok := s.decide(rids, pc, 0, t0.Add(3*time.Second)); !ok || !slices.Equal(got, []string{"q"}) {
		t.Fatalf("got %v %v", got, ok)
	}
	if got, ok := s.decide(rids, &webrtc.PeerConnection{}, 0, t0.Add(4*time.Second)); ok {
		t.Fatalf("a new connection: told %v at once, want after 2 s", got)
	}
	if got, ok := s.decide(rids, s.pc, 0, t0.Add(6100*time.Millisecond)); !ok || !slices.Equal(got, []string{"q"}) {
		t.Fatalf("a new connection: got %v %v, want q", got, ok)
	}
	// Two layers only (a small camera): the lowest present one stays.
	two := [maxLayers]string{"", "h", "f"}
	var s2 dynacast
	s2.decide(two, pc, noLayer, t0)
	if got, ok := s2.decide(two, pc, noLayer, t0.Add(3*time.Second)); !ok || !slices.Equal(got, []string{"h"}) {
		t.Fatalf("two layers: got %v %v", got, ok)
	}
}

// lastLayers returns the Active of the newest sfu-layers c received, and
// how many it received.
func (c *client) lastLayers() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.layers) == 0 {
		return nil, 0
	}
	return c.layers[len(c.layers)-1].Active, len(c.layers)
}

// Two subscribers of a simulcast camera; their tiles change size and the
// publisher is told which layers to send: the highest either needs.
func TestDynacastTellsPublisherLayers(t *testing.T) {
	e := newEnv(t, RouterConfig{InitialBitrate: 8_000_000})
	bob := e.join("bob")
	carol := e.join("carol")
	pub := e.join("alice")
	publishSimulcast(t, pub, "camera", simulcastSources())
	bv := bob.track("alice/cam")
	cv := carol.track("alice/cam")
	waitLayer(t, bv, 2)
	waitLayer(t, cv, 2)
	if got, n := pub.lastLayers(); n != 0 {
		t.Fatalf("no tile size asked yet, every layer needed; told %v", got)
	}
	height := func(c *client, h int) {
		must(t, e.router.Handle(c.id, Message{Type: TypeLayer, Track: "alice/cam", Height: &h}))
	}
	told := func(want ...string) {
		t.Helper()
		eventually(t, 10*time.Second, "sfu-layers "+strings.Join(want, ","), func() bool {
			got, _ := pub.lastLayers()
			return slices.Equal(got, want)
		})
	}
	// Thumbnails (90 px: the quarter layer) on both pages.
	at := time.Now()
	height(bob, 90)
	height(carol, 90)
	told("q")
	if d := time.Since(at); d < pauseAfter-tick {
		t.Fatalf("layers paused %v after they were last needed, want ≥ %v", d, pauseAfter)
	}
	pub.mu.Lock()
	m := pub.layers[len(pub.layers)-1]
	pub.mu.Unlock()
	if m.PC != PCPublish || m.Track != "cam" || m.Mid == "" {
		t.Fatalf("sfu-layers %+v, want pc pub, track cam and its mid", m)
	}
	waitLayer(t, bv, 0)
	// One middle tile: the half layer comes back at once.
	height(bob, 150)
	told("q", "h")
	// A big tile on the other page (focus view): the full layer too, and
	// carol switches up to it.
	height(carol, 1080)
	told("q", "h", "f")
	waitLayer(t, cv, 2)
	// Bob's tile hidden, carol's back to a thumbnail: only q is needed, and
	// only once carol receives it (never pause what a subscriber receives).
	height(bob, 0)
	height(carol, 90)
	told("q")
	waitLayer(t, cv, 0)
	// No subscriber left with a tile: q stays on (a new one starts there).
	height(carol, 0)
	time.Sleep(pauseAfter + 2*tick) // a window in which nothing must be told, not a wait for an event
	if got, _ := pub.lastLayers(); !slices.Equal(got, []string{"q"}) {
		t.Fatalf("every tile hidden: told %v, want q kept", got)
	}
	checkContinuous(t, cv.packets())
	checkSwitches(t, cv.packets())
}
