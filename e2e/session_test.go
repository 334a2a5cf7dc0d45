package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
)

const (
	therapistUUID = "11111111-1111-4111-8111-111111111111"
	patient1UUID  = "22222222-2222-4222-8222-222222222222"
	patient2UUID  = "33333333-3333-4333-8333-333333333333"
)

// call is a running session with a therapist and two patients on their pages.
type call struct {
	srv                   *server
	sess                  Session
	therapist, pat1, pat2 *page
}

func startCall(t *testing.T, srv *server) *call {
	t.Helper()
	sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID, patient2UUID})
	c := &call{srv: srv, sess: sess}
	c.therapist = openPage(t, "therapist", sess.link(t, therapistUUID)+"&name=Dr%20Tremblay&lang=fr")
	c.pat1 = openPage(t, "patient1", sess.link(t, patient1UUID)+"&name=Alice&lang=en")
	c.pat2 = openPage(t, "patient2", sess.link(t, patient2UUID)+"&name=Bob&lang=fr")
	return c
}

func (c *call) pages() []*page { return []*page{c.therapist, c.pat1, c.pat2} }

func (c *call) waitAllFlowing(t *testing.T, timeout time.Duration) {
	t.Helper()
	for _, p := range c.pages() {
		p.waitVideoFlowing(2, timeout)
	}
}

func (c *call) shots(label string) {
	for _, p := range c.pages() {
		p.shot(label)
	}
}

// Scenario 1: a therapist and two patients see each other; decoded frames keep increasing.
func TestThreePeopleSeeEachOther(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	c := startCall(t, srv)
	c.waitAllFlowing(t, 20*time.Second)
	for _, p := range c.pages() {
		p.waitJS("two remote camera tiles", `document.querySelectorAll('.tile.remote[data-stream="camera"]').length === 2`, 15*time.Second)
	}
	time.Sleep(time.Second) // let the quality indicators and status icons settle for the pictures
	c.shots("call")

	// The therapist shares a screen: it travels on its own slot, without renegotiation.
	c.therapist.click(`[data-testid="btn-screen"]`)
	c.therapist.waitJS("sharing", `window.rehab.state.media.screen === true`, 15*time.Second)
	for _, p := range []*page{c.pat1, c.pat2} {
		p.waitJS("screen tile with frames", `!!document.querySelector('.tile[data-stream="screen"]') &&
			window.rehab.stats().then(s => Object.values(s).some(v => v.frames.screen > 0))`, 20*time.Second)
	}
	c.pat1.shot("screen-share")
	c.therapist.click(`[data-testid="btn-screen"]`)
	c.pat1.waitJS("screen tile gone", `!document.querySelector('.tile[data-stream="screen"]')`, 15*time.Second)

	// The same call on a phone held upright, and on a tablet.
	if err := c.pat2.do(15*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	c.pat2.waitVideoFlowing(2, 15*time.Second)
	c.pat2.shot("phone")
	if err := c.therapist.do(15*time.Second, chromedp.EmulateViewport(1024, 768, chromedp.EmulateTouch)); err != nil {
		t.Fatal(err)
	}
	c.therapist.shot("tablet")
}

// waitJoined waits until every page of the call is joined and sees the two others.
func (c *call) waitJoined(t *testing.T) {
	t.Helper()
	for _, p := range c.pages() {
		p.waitJS("joined with two peers", `window.rehab && window.rehab.state.connection === 'joined' && window.rehab.peers.length === 2`, 15*time.Second)
	}
}

// peerID is the id, as seen from p, of the peer called name.
func (p *page) peerID(name string) string {
	p.t.Helper()
	id, err := eval[string](p, fmt.Sprintf(`window.rehab.peers.find(x => x.name === %q).id`, name))
	if err != nil {
		p.t.Fatalf("%s: no peer %q: %v", p.name, name, err)
	}
	return id
}

// sendChat types a chat message and sends it.
func (p *page) sendChat(text string) {
	p.t.Helper()
	p.js(`document.getElementById('chat-panel').hidden && document.getElementById('btn-chat').click()`)
	if err := p.do(15*time.Second, chromedp.SendKeys(chromedp.CSS("#chat-input"), text), chromedp.Click(chromedp.CSS(`[data-testid="chat-send"]`))); err != nil {
		p.t.Fatalf("%s: chat: %v", p.name, err)
	}
}

func hasChat(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('[data-testid="chat-msg"] p')].some(p => p.textContent === %q)`, text)
}

// Scenario 2: chat reaches everyone; the therapist's mute turns the patient's track off; a
// patient's control message is refused by the server. The therapist's timer and counter show on
// the patients' screens.
func TestChatAndTherapistTools(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	c := startCall(t, srv)
	c.waitJoined(t)

	c.therapist.sendChat("Bonjour à tous")
	c.pat1.sendChat("Hello, I can see you")
	for _, p := range c.pages() {
		p.waitJS("therapist's chat", hasChat("Bonjour à tous"), 5*time.Second)
		p.waitJS("patient's chat", hasChat("Hello, I can see you"), 5*time.Second)
	}
	c.pat2.waitJS("unread badge", `!document.getElementById('chat-unread').hidden`, 2*time.Second)
	c.shots("chat")

	// The therapist turns Alice's microphone and Bob's camera off from their tiles.
	c.therapist.click(`.tile[data-name="Alice"] [data-action="mute-mic"]`)
	c.pat1.waitJS("Alice's microphone track off",
		`window.rehab.state.media.mic === false && window.rehab.state.tracks.some(t => t.kind === 'audio' && !t.enabled)`, 3*time.Second)
	c.therapist.waitJS("Alice shown muted", `!!document.querySelector('.tile[data-name="Alice"] .ind-mic[data-on="false"]')`, 3*time.Second)
	c.therapist.click(`.tile[data-name="Bob"] [data-action="mute-cam"]`)
	c.pat2.waitJS("Bob's camera track stopped",
		`window.rehab.state.media.cam === false && !window.rehab.state.tracks.some(t => t.kind === 'video' && t.readyState === 'live')`, 3*time.Second)
	c.therapist.waitJS("Bob shown without camera", `!!document.querySelector('.tile[data-name="Bob"].cam-off')`, 3*time.Second)

	// A patient's page does not offer the tools, and the server refuses them anyway.
	c.pat1.waitJS("no therapist tools for a patient",
		`document.getElementById('btn-tools').hidden && !document.querySelector('[data-action="mute-mic"]')`, time.Second)
	therapistID := c.pat1.peerID("Dr Tremblay")
	res, err := eval[map[string]any](c.pat1, fmt.Sprintf(`window.rehab.trySend('control.mute', {kind: 'mic', on: false}, %q)`, therapistID))
	if err != nil || res["ok"] != false || res["code"] != "forbidden" {
		t.Fatalf("a patient's control.mute: got %v, %v; want the server's forbidden error", res, err)
	}
	if mic, _ := eval[bool](c.therapist, `window.rehab.state.media.mic`); !mic {
		t.Fatal("the therapist's microphone went off after a patient's request")
	}

	// "Focus everyone on this video": the therapist shows Alice's video big on every page.
	c.therapist.click(`.tile[data-name="Alice"] [data-action="focus"]`)
	c.pat2.waitJS("Alice big for Bob", `!!document.querySelector('.tile.featured[data-name="Alice"]')`, 3*time.Second)
	c.pat1.waitJS("Alice sees herself big", `!!document.querySelector('.tile.local.featured[data-stream="camera"]')`, 3*time.Second)
	c.pat2.shot("focus")
	c.therapist.click(`.tile[data-name="Alice"] [data-action="focus"]`)
	c.pat2.waitJS("back to the therapist", `!!document.querySelector('.tile.featured[data-role="user"]')`, 3*time.Second)

	// Countdown and repetition counter, shown to every patient.
	c.therapist.click(`[data-testid="btn-tools"]`)
	c.therapist.js(`document.getElementById('timer-min').value = '0'; document.getElementById('timer-sec').value = '30'`)
	c.therapist.click(`[data-testid="timer-start"]`)
	c.therapist.click(`[data-testid="counter-show"]`)
	c.therapist.click(`[data-testid="counter-plus"]`)
	c.therapist.click(`[data-testid="counter-plus"]`)
	for _, p := range []*page{c.pat1, c.pat2} {
		p.waitJS("countdown shown", `!document.getElementById('overlay-timer').hidden && /^00:(2\d|30)$/.test(document.getElementById('timer-value').textContent)`, 3*time.Second)
		p.waitJS("counter shown", `!document.getElementById('overlay-counter').hidden && document.getElementById('counter-value').textContent === '2'`, 3*time.Second)
	}
	c.shots("tools")
}

// Scenario 3: removing a patient shows "removed" on their page within a second, their tile
// disappears from the others', and their link is refused afterwards.
func TestRemovePatient(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	c := startCall(t, srv)
	c.waitJoined(t)
	link := c.sess.link(t, patient2UUID) + "&name=Bob&lang=fr"

	c.pat2.watch("removed screen", `document.body.dataset.screen === 'removed'`)
	for _, p := range []*page{c.therapist, c.pat1} {
		p.watch("Bob's tile gone", `!document.querySelector('.tile[data-name="Bob"]') && window.rehab.peers.length === 1`)
	}
	start := time.Now()
	srv.manage("remove", c.sess.ID, nil, []string{patient2UUID})
	for _, w := range []struct {
		p    *page
		what string
	}{{c.pat2, "removed screen"}, {c.therapist, "Bob's tile gone"}, {c.pat1, "Bob's tile gone"}} {
		took := w.p.watched(w.what, 10*time.Second).Sub(start)
		t.Logf("%s: %s after %v", w.p.name, w.what, took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("%s: %s took %v, want within 1 s", w.p.name, w.what, took)
		}
	}
	c.shots("removed")

	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("reopening a removed patient's link: HTTP %d, want 403", res.StatusCode)
	}
	again := openPage(t, "patient2-again", link)
	again.waitJS("403 page", `!!document.querySelector('[data-testid="denied"]')`, 5*time.Second)
	if txt := again.text("h1"); !strings.Contains(txt, "Ce lien n’est plus valide") {
		t.Errorf("403 page says %q", txt)
	}
	again.shot("denied")
}

// Scenario 4: stopping the session shows "ended" on every page.
func TestStopEndsSession(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	c := startCall(t, srv)
	c.waitJoined(t)
	srv.manage("stop", c.sess.ID, nil, nil)
	for _, p := range c.pages() {
		p.waitJS("ended screen", `document.body.dataset.screen === 'ended' && window.rehab.state.connection === 'closed'`, 3*time.Second)
	}
	c.shots("ended")
	if s := srv.session(c.sess.ID); s.Status != 2 {
		t.Errorf("session status %d after stop, want 2", s.Status)
	}
}

// Scenario 5: the server is killed and restarted during the call; the pages reconnect by
// themselves under their old peer ids (resume tokens) and video flows again within 10 seconds of the server being
// back (the time the process takes to start is the server's, not the pages').
func TestServerRestart(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	c := startCall(t, srv)
	c.waitAllFlowing(t, 20*time.Second)
	oldIDs := map[*page]string{}
	for _, p := range c.pages() {
		id, _ := eval[string](p, `window.rehab.state.id`)
		oldIDs[p] = id
	}

	srv.kill()
	for _, p := range c.pages() {
		p.waitJS("reconnecting status", `window.rehab.state.connection === 'reconnecting'`, 5*time.Second)
	}
	c.therapist.shot("server-down")

	begin := time.Now()
	srv.start() // returns once /healthz answers
	restart := time.Now()
	t.Logf("server back in %v", restart.Sub(begin).Round(time.Millisecond))
	for _, p := range c.pages() {
		left := 10*time.Second - time.Since(restart)
		p.waitJS("rejoined", fmt.Sprintf(`window.rehab.state.connection === 'joined' && window.rehab.state.id === %q && window.rehab.peers.length === 2`, oldIDs[p]), left)
	}
	for _, p := range c.pages() {
		p.waitVideoFlowing(2, 10*time.Second-time.Since(restart))
	}
	t.Logf("video flowing again %v after the server was back", time.Since(restart).Round(time.Millisecond))
	c.shots("after-restart")
}

// Scenario 6: a wrong key gets the 403 page, and its WebSocket join is refused.
func TestWrongKey(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID})
	good := sess.link(t, patient1UUID)
	u, err := url.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("key", "wrong-"+q.Get("key"))
	q.Set("lang", "en")
	u.RawQuery = q.Encode()
	bad := u.String()

	res, err := http.Get(bad)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "This link is not valid any more") {
		t.Fatalf("wrong key: HTTP %d %q", res.StatusCode, body)
	}
	for _, h := range []string{"Content-Security-Policy", "Referrer-Policy", "X-Content-Type-Options"} {
		if res.Header.Get(h) == "" {
			t.Errorf("403 page without %s", h)
		}
	}

	p := openPage(t, "wrong-key", bad)
	p.waitJS("403 page", `!!document.querySelector('[data-testid="denied"]')`, 5*time.Second)
	p.shot("denied")

	// The same wrong key over the page's own client library: the server refuses the join (4001).
	closed, err := eval[map[string]any](p, fmt.Sprintf(`import('./static/protocol.js').then(m => new Promise(resolve => {
		const c = m.connect(m.sessionSocketURL(location), {key: %q});
		c.on('closed', ev => resolve(ev));
	}))`, q.Get("key")))
	if err != nil || closed["code"] != float64(4001) || closed["cause"] != "unauthorized" {
		t.Fatalf("join with a wrong key: %v, %v; want close 4001 unauthorized", closed, err)
	}

	// And over a raw WebSocket, as any client would.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wsURL := strings.Replace(srv.gateway, "http", "ws", 1) + fmt.Sprintf("/websocket/%d/", sess.Port)
	conn, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"join","key":"`+q.Get("key")+`"}`)); err != nil {
		t.Fatal(err)
	}
	_, msg, err := conn.Read(ctx)
	if err != nil || !strings.Contains(string(msg), `"unauthorized"`) {
		t.Fatalf("join answer %s, %v; want an unauthorized error", msg, err)
	}
	if _, _, err := conn.Read(ctx); websocket.CloseStatus(err) != 4001 {
		t.Fatalf("after a refused join: %v; want close 4001", err)
	}
}

// A patient who blocked the camera is still heard; one who blocked both gets an explanation and
// can go on watching and listening.
func TestBlockedCamera(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID, patient2UUID})
	therapist := openPage(t, "therapist", sess.link(t, therapistUUID)+"&name=Dr%20Tremblay&lang=en")
	alice := openPage(t, "no-camera", sess.link(t, patient1UUID)+"&name=Alice&lang=en", "camera")
	alice.waitJS("camera-blocked banner, audio on", `!document.getElementById('banner').hidden &&
		window.rehab.state.media.mic && !window.rehab.state.media.cam && window.rehab.state.connection === 'joined'`, 10*time.Second)
	therapist.waitJS("Alice heard, not seen", `!!document.querySelector('.tile[data-name="Alice"].cam-off') &&
		!!document.querySelector('.tile[data-name="Alice"] .ind-mic[data-on="true"]')`, 10*time.Second)
	alice.shot("camera-blocked")

	bob := openPage(t, "nothing", sess.link(t, patient2UUID)+"&name=Bob&lang=fr", "camera", "microphone")
	bob.waitJS("blocked screen", `document.body.dataset.screen === 'media-denied' && !document.getElementById('screen').hidden`, 10*time.Second)
	bob.shot("media-blocked")
	bob.click(`#screen-actions .btn:not(.btn-primary)`) // "Continue without camera"
	bob.waitJS("in the session, receiving", `document.getElementById('screen').hidden && window.rehab.peers.length === 2`, 5*time.Second)
	bob.waitVideoFlowing(1, 15*time.Second) // the therapist's camera; Alice sends none
	therapist.waitJS("Bob present without media", `!!document.querySelector('.tile[data-name="Bob"].cam-off')`, 5*time.Second)
	bob.shot("receive-only")
	therapist.shot("with-blocked")
}

// Several cameras: the therapist switches a patient's camera remotely; the patient adds a second
// camera, which the others see as an extra tile.
func TestCamerasSwitchAndSecond(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID})
	therapist := openPage(t, "therapist", sess.link(t, therapistUUID)+"&name=Dr%20Tremblay&lang=en")
	// The page's camera clones (the own preview's light copy), to check that none outlives its camera.
	const clones = `(() => { const clone = MediaStreamTrack.prototype.clone; window.__clones = [];
		MediaStreamTrack.prototype.clone = function () { const c = clone.call(this); window.__clones.push(c); return c; }; })()`
	alice := openPageWith(t, "patient", sess.link(t, patient1UUID)+"&name=Alice&lang=en", pageSetup{script: clones})
	therapist.waitVideoFlowing(1, 15*time.Second)
	alice.waitJS("three cameras", `window.rehab.state.media.cameras === 3`, 5*time.Second)
	therapist.waitJS("switch offered", `!document.querySelector('.tile[data-name="Alice"] [data-action="switch-cam"]').disabled`, 5*time.Second)

	// Camera 0 → 1 → 2 (the fake camera 1 sends no picture, as a depth camera would not).
	for _, want := range []string{"fake_device_1", "fake_device_2"} {
		therapist.click(`.tile[data-name="Alice"] [data-action="switch-cam"]`)
		alice.waitJS("camera switched to "+want, fmt.Sprintf(`window.rehab.state.tracks.some(t => t.kind === 'video' && t.readyState === 'live' && t.label === %q)`, want), 5*time.Second)
	}
	therapist.waitVideoFlowing(1, 10*time.Second)

	alice.click(`[data-testid="btn-second"]`)
	alice.waitJS("second camera on", `window.rehab.state.media.second === true`, 5*time.Second)
	therapist.waitJS("second camera tile with frames", `!!document.querySelector('.tile[data-name="Alice"][data-stream="second"]') &&
		window.rehab.stats().then(s => Object.values(s).some(v => v.frames.second > 0))`, 10*time.Second)
	therapist.shot("second-camera")
	alice.shot("second-camera")

	// The own preview, small, shows a light copy of the camera in use (fewer frames per second,
	// docs/frontend.md) and, shown big, the camera itself; camera off ends the copy too (else the
	// camera would stay open, its light on).
	const preview = `document.querySelector('.tile.local[data-stream="camera"] video')`
	alice.waitJS("small preview shows the light copy of fake_device_2", `(() => {
		const live = window.__clones.filter(t => t.readyState === 'live');
		const v = `+preview+`, tr = v.srcObject && v.srcObject.getVideoTracks()[0];
		return live.length === 1 && live[0] === tr && tr.label === 'fake_device_2' && v.videoWidth > 0;
	})()`, 5*time.Second)
	alice.click(`.tile.local[data-stream="camera"] [data-action="enlarge"]`)
	alice.waitJS("big preview shows the camera itself", `(() => { const v = `+preview+`, tr = v.srcObject && v.srcObject.getVideoTracks()[0];
		return !!tr && !window.__clones.includes(tr) && tr.readyState === 'live'; })()`, 5*time.Second)
	alice.click(`[data-testid="btn-cam"]`)
	alice.waitJS("camera off ends every copy", `window.__clones.length > 0 && window.__clones.every(t => t.readyState === 'ended') &&
		window.rehab.state.tracks.every(t => t.kind !== 'video') && window.rehab.state.preview.length === 0`, 5*time.Second)
	alice.click(`[data-testid="btn-cam"]`)
	alice.waitJS("camera on again", `window.rehab.state.tracks.some(t => t.kind === 'video' && t.readyState === 'live') &&
		window.rehab.state.preview.length === 1 && window.rehab.state.preview[0].readyState === 'live'`, 5*time.Second)
}
