package e2e

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// sfuPages is how many people join the SFU test: 5 by default (the figure);
// REHABRTC_E2E_SFU_PAGES=3 makes it lighter while developing on a shared machine.
func sfuPages(t *testing.T) int {
	n := 5
	if s := os.Getenv("REHABRTC_E2E_SFU_PAGES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 3 || v > 8 {
			t.Fatalf("REHABRTC_E2E_SFU_PAGES=%q: want 3 to 8", s)
		}
		n = v
	}
	return n
}

// Scenario: a group session forced to the SFU. Every page holds two RTCPeerConnections, both to
// the server (no mesh connection), and decodes every other camera within 10 s of the last join;
// then a removed patient's tile is gone from every other page within 1 s.
func TestSFUGroupSeeEachOther(t *testing.T) {
	needBrowser(t)
	n := sfuPages(t)
	srv := startServerWith(t, func(r map[string]any) {
		r["media_mode"] = "sfu"
		r["sfu"].(map[string]any)["own_read"] = true // real browsers through the SFU's own SRTP reader
	})
	users := []string{therapistUUID}
	var patients []string
	for i := 1; i < n; i++ {
		patients = append(patients, fmt.Sprintf("%08d-0000-4000-8000-%012d", i, i))
	}
	sess := srv.manage("start", 0, users, patients)

	var pages []*page
	open := func(name, uuid string) *page {
		// Count the page's own RTCPeerConnections: with the SFU there are exactly two, to the server.
		p := openPageWith(t, name, sess.link(t, uuid)+"&name="+name+"&lang=en", pageSetup{script: `(() => {
			const Real = window.RTCPeerConnection; window.__pcs = [];
			window.RTCPeerConnection = function (...a) { const pc = new Real(...a); window.__pcs.push(pc); return pc; };
			window.RTCPeerConnection.prototype = Real.prototype;
		})()`})
		pages = append(pages, p)
		return p
	}
	open("Therapist", therapistUUID)
	for i, uuid := range patients {
		open("Patient"+strconv.Itoa(i+1), uuid)
	}
	for _, p := range pages {
		p.waitJS("joined, everyone present", fmt.Sprintf(`window.rehab && window.rehab.state.connection === 'joined' && window.rehab.peers.length === %d`, n-1), 20*time.Second)
	}
	lastJoin := time.Now()
	for _, p := range pages {
		p.waitJS("sfu mode", `window.rehab.mediaMode === 'sfu'`, 5*time.Second)
	}
	took := allDecoding(t, pages, n-1, 20*time.Second).Sub(lastJoin)
	t.Logf("%d pages: every page decodes every other camera %v after the last join", n, took.Round(100*time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("every camera decoded after %v, want within 10 s", took)
	}
	for _, p := range pages {
		p.waitVideoFlowing(n-1, 10*time.Second) // and keeps decoding
		p.waitJS("two open peer connections", `window.__pcs.filter(pc => pc.connectionState !== 'closed').length === 2`, 5*time.Second)
		p.waitJS(fmt.Sprintf("%d remote camera tiles", n-1), fmt.Sprintf(`document.querySelectorAll('.tile.remote[data-stream="camera"]').length === %d`, n-1), 5*time.Second)
	}
	pages[0].shot("sfu-group")
	logRamp(t, pages)
	// Chromium decrypts what the server's own SRTP writer sends: every subscribed track took that path.
	if own, viaPion := srv.metric("rehabrtc_sfu_own_writers_total"), srv.metric("rehabrtc_sfu_pion_writers_total"); own < float64(n*(n-1)) || viaPion != 0 {
		t.Errorf("tracks written by the server itself %v, by pion %v; want at least %d (the cameras) and 0", own, viaPion, n*(n-1))
	}
	// And the server decrypts what Chromium publishes: every camera layer and mic took its own reader.
	own, viaPion := srv.metric("rehabrtc_sfu_own_readers_total"), srv.metric("rehabrtc_sfu_pion_readers_total")
	t.Logf("published layers read by the server itself %v, by pion %v", own, viaPion)
	if own < float64(n) || viaPion != 0 {
		t.Errorf("published layers read by the server itself %v, by pion %v; want at least %d (the cameras) and 0", own, viaPion, n)
	}
	if rejected := srv.metric("rehabrtc_sfu_read_rejected_total"); rejected != 0 {
		t.Errorf("%v upstream packets failed authentication", rejected)
	}
	t.Logf("upstream replays dropped (retransmissions of packets that came after all): %v",
		srv.metric("rehabrtc_sfu_read_replayed_total"))
	t.Logf("packets the server asked of publishers %v: repaired %v, given up %v; late before it asked %v",
		srv.metric("rehabrtc_sfu_publisher_nacked_total"), srv.metric("rehabrtc_sfu_publisher_repaired_total"),
		srv.metric("rehabrtc_sfu_publisher_gave_up_total"), srv.metric("rehabrtc_sfu_publisher_late_total"))

	// Remove the last patient: its tile leaves every other page within 1 s, and its media with it.
	gone, rest := pages[n-1], pages[:n-1]
	goneID := pages[0].peerID(gone.name)
	gone.watch("removed screen", `document.body.dataset.screen === 'removed'`)
	for _, p := range rest {
		p.watch("tile gone", fmt.Sprintf(`!document.querySelector('.tile[data-peer=%q]')`, goneID))
	}
	start := time.Now()
	srv.manage("remove", sess.ID, nil, []string{patients[len(patients)-1]})
	for _, p := range rest {
		took := p.watched("tile gone", 10*time.Second).Sub(start)
		t.Logf("%s: removed patient's tile gone after %v", p.name, took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("%s: removed patient's tile gone after %v, want within 1 s", p.name, took)
		}
	}
	gone.watched("removed screen", 10*time.Second)
	for _, p := range rest {
		p.waitVideoFlowing(n-2, 10*time.Second) // the others keep decoding
	}
}

// rampJS measures a page's media over 2 s from its own getStats: the send-side estimate of its
// publish connection (Chromium's congestion control, fed by the server's transport-cc feedback), what
// it sends and receives, each simulcast layer's height and frame rate, and what limits its encoder.
const rampJS = `(async () => {
	const pcs = (window.__pcs || []).filter(pc => pc.connectionState === 'connected');
	const snap = () => Promise.all(pcs.map(pc => pc.getStats()));
	const a = await snap();
	await new Promise(r => setTimeout(r, 2000));
	const b = await snap();
	const r = { estimateKbps: 0, outKbps: 0, inKbps: 0, layers: [], inFps: [], limit: 'none' };
	b.forEach((rep, i) => rep.forEach(s => {
		const prev = a[i].get(s.id);
		if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) {
			r.estimateKbps = Math.max(r.estimateKbps, Math.round(s.availableOutgoingBitrate / 1000));
		}
		if (s.type === 'outbound-rtp' && s.kind === 'video') {
			if (prev) r.outKbps += Math.round((s.bytesSent - prev.bytesSent) * 8 / 2000);
			r.layers.push((s.rid || '-') + ':' + (s.frameHeight || 0) + 'p@' + (s.framesPerSecond || 0));
			if (s.qualityLimitationReason && s.qualityLimitationReason !== 'none') r.limit = s.qualityLimitationReason;
		}
		if (s.type === 'inbound-rtp' && s.kind === 'video') {
			if (prev) r.inKbps += Math.round((s.bytesReceived - prev.bytesReceived) * 8 / 2000);
			r.inFps.push(s.framesPerSecond || 0);
		}
	}));
	return JSON.stringify(r);
})()`

// logRamp logs every page's rampJS figures, measured at once on all pages: whether the browsers'
// congestion control ramps up their sending (a figure to compare between versions, not a check).
func logRamp(t *testing.T, pages []*page) {
	t.Helper()
	out := make([]string, len(pages))
	var wg sync.WaitGroup
	for i, p := range pages {
		wg.Go(func() {
			s, err := eval[string](p, rampJS)
			if err != nil {
				s = err.Error()
			}
			out[i] = s
		})
	}
	wg.Wait()
	for i, p := range pages {
		t.Logf("%s: media over 2 s: %s", p.name, out[i])
	}
}

// allDecoding polls every page (round robin, so no page waits for another's slow sample) until
// each has decoded frames from n remote cameras, and returns when the last one got there.
func allDecoding(t *testing.T, pages []*page, n int, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	done := map[*page]bool{}
	var last map[string]float64
	for time.Now().Before(deadline) {
		for _, p := range pages {
			if done[p] {
				continue
			}
			f, err := p.frames()
			ok := err == nil && len(f) >= n
			for _, v := range f {
				ok = ok && v > 0
			}
			if ok {
				done[p] = true
			}
			last = f
		}
		if len(done) == len(pages) {
			return time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("not every page decodes %d cameras after %v (%d of %d pages; last: %v)", n, timeout, len(done), len(pages), last)
	return time.Time{}
}

// pcCounter counts a page's own RTCPeerConnections (window.__pcs).
const pcCounter = `(() => {
	const Real = window.RTCPeerConnection; window.__pcs = [];
	window.RTCPeerConnection = function (...a) { const pc = new Real(...a); window.__pcs.push(pc); return pc; };
	window.RTCPeerConnection.prototype = Real.prototype;
})()`

// Scenario: an "auto" session is mesh at two people and moves to the SFU when a third joins. The
// two first pages keep showing each other's mesh video until the SFU's copy decodes
// (make-before-break); the longest gap between two painted frames of that tile during the switch
// is the freeze a person sees (docs/performance.md).
func TestSFUAutoSwitch(t *testing.T) {
	needBrowser(t)
	srv := startServerWith(t, func(r map[string]any) { r["media_mode"] = "auto" })
	sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID, patient2UUID})
	setup := pageSetup{script: pcCounter}
	a := openPageWith(t, "Therapist", sess.link(t, therapistUUID)+"&name=Therapist&lang=en", setup)
	b := openPageWith(t, "Alice", sess.link(t, patient1UUID)+"&name=Alice&lang=en", setup)
	for _, p := range []*page{a, b} {
		p.waitVideoFlowing(1, 20*time.Second)
		if mode, err := eval[string](p, `window.rehab.mediaMode`); err != nil || mode != "mesh" {
			t.Fatalf("%s: media mode %q (%v) at two people, want mesh", p.name, mode, err)
		}
	}
	// Watch the painted frames of each other's camera tile, whichever stream it shows.
	for _, p := range []*page{a, b} {
		other := map[*page]*page{a: b, b: a}[p]
		id := p.peerID(other.name)
		p.js(fmt.Sprintf(`(() => {
			const w = window.__frames = { last: 0, maxGap: 0, baseline: 0, switched: 0, lastBefore: 0, switchGap: 0, start: performance.now() };
			// The tile's video element, whichever it is now (the switch may put a new one in its place)
			// and whichever stream it shows: painted frames count only while the element is the tile's.
			const sel = '.tile[data-peer=%q][data-stream="camera"] video';
			const v0 = document.querySelector(sel);
			const first = v0.srcObject;
			const moved = () => { const v = document.querySelector(sel); return v !== v0 || v.srcObject !== first; };
			const hook = (v) => {
				const tick = (now) => {
					if (document.querySelector(sel) !== v) return; // replaced: no longer what the person sees
					if (w.last) {
						const gap = now - w.last;
						if (w.switched) w.maxGap = Math.max(w.maxGap, gap); else w.baseline = Math.max(w.baseline, gap);
					}
					w.last = now;
					if (!w.switched && moved()) w.switched = now;
					if (!w.switched) w.lastBefore = now; // the mesh video's last frame
					else if (!w.switchGap && w.lastBefore) w.switchGap = now - w.lastBefore; // to the SFU's first
					v.requestVideoFrameCallback(tick);
				};
				v.requestVideoFrameCallback(tick);
			};
			hook(v0);
			let cur = v0;
			setInterval(() => {
				if (!w.switched && moved()) w.switched = performance.now();
				const v = document.querySelector(sel);
				if (v && v !== cur) { cur = v; hook(v); }
			}, 10);
		})()`, id))
	}
	time.Sleep(3 * time.Second) // a baseline of the mesh video's own gaps
	c := openPageWith(t, "Bob", sess.link(t, patient2UUID)+"&name=Bob&lang=en", setup)
	for _, p := range []*page{a, b, c} {
		p.waitJS("sfu mode", `window.rehab.mediaMode === 'sfu'`, 10*time.Second)
	}
	for _, p := range []*page{a, b} {
		// Switched: the tile shows the SFU's stream and the mesh connection is closed.
		p.waitJS("tile on the SFU", `window.__frames.switched > 0`, 30*time.Second)
		p.waitJS("mesh connection closed", `window.__pcs.filter(pc => pc.connectionState !== 'closed').length === 2`, 10*time.Second)
	}
	for _, p := range []*page{a, b, c} {
		p.waitVideoFlowing(2, 15*time.Second)
		p.waitJS("two remote camera tiles showing video", `[...document.querySelectorAll('.tile.remote[data-stream="camera"] video')].filter(v => v.srcObject && v.srcObject.getVideoTracks().length).length === 2`, 5*time.Second)
	}
	time.Sleep(2 * time.Second) // gaps after the switch count too
	for _, p := range []*page{a, b} {
		gap, err := eval[map[string]float64](p, `({maxGap: window.__frames.maxGap, baseline: window.__frames.baseline, at: window.__frames.switchGap})`)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: the switch: %.0f ms from the mesh video's last painted frame to the SFU's first; longest gap between painted frames of the other's tile %.0f ms from the switch on (%.0f ms on mesh before it)",
			p.name, gap["at"], gap["maxGap"], gap["baseline"])
		// The switch's gap is a figure for docs/performance.md (target 200 ms), not a bound: on a
		// shared 2-core machine the mesh video alone shows gaps of a second. What is bounded is a
		// freeze of seconds, as when the first page to move closed the mesh connection while the
		// other still showed it (both sides now close it once both moved).
		if limit := max(1500, 2*gap["baseline"]); gap["at"] > limit {
			t.Errorf("%s: the tile froze %.0f ms at the switch, want under %.0f ms (mesh alone: %.0f ms)", p.name, gap["at"], limit, gap["baseline"])
		}
		// Make-before-break: the tile moved only once the server's copy decoded.
		moves, err := eval[[]map[string]any](p, `window.rehab.switchLog`)
		if err != nil || len(moves) != 1 || moves[0]["decoded"] != true {
			t.Errorf("%s: switch log %v (%v), want one move made after the server's copy decoded", p.name, moves, err)
		} else {
			t.Logf("%s: moved to the SFU %v ms after media-mode sfu", p.name, moves[0]["ms"])
		}
	}
}
