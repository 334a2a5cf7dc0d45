package e2e

import (
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// paintWatcher counts, in the page, the frames painted (requestVideoFrameCallback) by every remote
// camera tile's video element, whichever stream it shows and even if the tile is made again.
// window.__paint.since(t) says whether every remote camera tile painted at least n frames after
// performance time t.
const paintWatcher = `(() => {
	const w = window.__paint = { seen: new WeakSet(), times: new Map(), since(t, n) {
		const tiles = [...document.querySelectorAll('.tile.remote[data-stream="camera"]')];
		return tiles.length > 0 && tiles.every((tile) => {
			const v = tile.querySelector('video');
			const times = v ? w.times.get(v) || [] : [];
			return times.filter((x) => x > t).length >= n;
		}) ? tiles.length : 0;
	} };
	const hook = (v) => {
		if (w.seen.has(v)) return;
		w.seen.add(v);
		const times = [];
		w.times.set(v, times);
		const tick = (now) => { times.push(now); if (times.length > 600) times.splice(0, 300); v.requestVideoFrameCallback(tick); };
		v.requestVideoFrameCallback(tick);
	};
	setInterval(() => document.querySelectorAll('.tile.remote video').forEach(hook), 50);
})()`

// Scenario: a session forced to the SFU, three people decoding each other; the service is killed
// and started again on the same store and ports. Every page rejoins under its old id, publishes and
// subscribes again by itself (no reload), and paints every other camera again within 10 s of the
// service being back. The same in an `auto` session that had moved to the SFU: its pages are never
// told to go back to mesh after the restart (TestSFUAutoModeSurvivesRestart checks the messages).
func TestSFUServerRestart(t *testing.T) {
	needBrowser(t)
	for _, mode := range []string{"sfu", "auto"} {
		t.Run(mode, func(t *testing.T) { sfuServerRestart(t, mode) })
	}
}

func sfuServerRestart(t *testing.T, mode string) {
	// Fixed media ports (as an install has them): the restarted service listens where it did.
	mediaPort := testutil.FreePorts(t, 1)
	srv := startServerWith(t, func(r map[string]any) {
		r["media_mode"] = mode
		r["sfu"] = map[string]any{"udp_port": mediaPort, "tcp_port": mediaPort}
	})
	sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID, patient2UUID})
	c := &call{srv: srv, sess: sess}
	setup := pageSetup{script: paintWatcher}
	c.therapist = openPageWith(t, "therapist", sess.link(t, therapistUUID)+"&name=Therapist&lang=en", setup)
	c.pat1 = openPageWith(t, "patient1", sess.link(t, patient1UUID)+"&name=Alice&lang=en", setup)
	c.pat2 = openPageWith(t, "patient2", sess.link(t, patient2UUID)+"&name=Bob&lang=en", setup)
	for _, p := range c.pages() {
		p.waitJS("sfu mode", `window.rehab && window.rehab.mediaMode === 'sfu'`, 20*time.Second)
	}
	c.waitAllFlowing(t, 20*time.Second)
	oldIDs := map[*page]string{}
	for _, p := range c.pages() {
		p.waitJS("two remote tiles painting", `window.__paint.since(0, 5) === 2`, 10*time.Second)
		oldIDs[p], _ = eval[string](p, `window.rehab.state.id`)
	}

	// A page told mesh after the restart, even briefly, sets up mesh connections again: count them.
	// (The page's own mode reads "mesh" for a moment while it waits for the server's media-mode after
	// a rejoin; what matters is what it does.)
	meshBefore := map[*page]int{}
	if mode == "auto" {
		srv.recorded(true) // written in the background: a kill before it would test nothing
		for _, p := range c.pages() {
			meshBefore[p], _ = eval[int](p, `window.rehab.state.connectionsMade`)
		}
	}
	srv.kill()
	for _, p := range c.pages() {
		p.waitJS("reconnecting status", `window.rehab.state.connection === 'reconnecting'`, 5*time.Second)
	}
	begin := time.Now()
	srv.start() // returns once /healthz answers
	back := time.Now()
	t.Logf("service back in %v", back.Sub(begin).Round(time.Millisecond))
	// Every page measures in itself when it first paints 5 new frames of every other camera.
	for _, p := range c.pages() {
		p.js(`window.__back = performance.now()`)
		p.watch("painting again", `window.rehab.state.connection === 'joined' && window.rehab.mediaMode === 'sfu' && window.__paint.since(window.__back, 5) === 2`)
	}
	for _, p := range c.pages() {
		at := p.watched("painting again", 10*time.Second-time.Since(back)+time.Second)
		took := at.Sub(back)
		t.Logf("%s: every other camera painted again %v after the service was back", p.name, took.Round(10*time.Millisecond))
		if took > 10*time.Second {
			t.Errorf("%s: media back after %v, want within 10 s", p.name, took)
		}
		id, _ := eval[string](p, `window.rehab.state.id`)
		if id != oldIDs[p] {
			t.Errorf("%s: peer id %q after the restart, want the old %q (resume)", p.name, id, oldIDs[p])
		}
	}
	for _, p := range c.pages() {
		p.waitVideoFlowing(2, 10*time.Second) // and keeps decoding, through the server
		p.waitJS("no mesh connection", `window.rehab.mediaMode === 'sfu'`, time.Second)
		if mode == "auto" {
			if made, _ := eval[int](p, `window.rehab.state.connectionsMade`); made != meshBefore[p] {
				t.Errorf("%s: %d mesh connections made after the restart of a session on the SFU", p.name, made-meshBefore[p])
			}
		}
	}
	c.shots("after-restart")
}
