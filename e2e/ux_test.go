package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// npmTool is a file of a test-only npm package of e2e/testdata (axe-core, jsqr), installed there
// from the committed lock file on first use (scripts/test.sh installs them beforehand); the tests
// inject it into pages, offline.
func npmTool(t *testing.T, pkg, file string) string {
	t.Helper()
	dir := filepath.Join(root, "e2e", "testdata")
	testutil.NPMInstall(t, dir, pkg)
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, filepath.FromSlash(file)))
	if err != nil {
		t.Fatalf("%s: %v (reinstall with `npm ci --prefix e2e/testdata`)", pkg, err)
	}
	return string(b)
}

// inject evaluates a tool's source in the page unless global is already defined there.
func (p *page) inject(global, src string) {
	p.t.Helper()
	if ok, _ := eval[bool](p, "typeof window."+global+" !== 'undefined'"); ok {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](src)); err != nil {
		p.t.Fatalf("%s: inject %s: %v", p.name, global, err)
	}
}

// axe runs axe-core on the page as it is now and fails the test on any serious or critical
// violation (the WCAG 2.1 A/AA rules and axe's best practices).
func (p *page) axe(label string) {
	p.t.Helper()
	p.inject("axe", npmTool(p.t, "axe-core", "axe.min.js"))
	type violation struct {
		ID, Impact, Help string
		Nodes            []string
	}
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]violation](`axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
		.filter(v => v.impact === 'serious' || v.impact === 'critical')
		.map(v => ({ID: v.id, Impact: v.impact, Help: v.help, Nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)})))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s %s: axe: %v", p.name, label, err)
	}
	p.shot("axe-" + label)
	for _, v := range vs {
		p.t.Errorf("%s %s: axe %s (%s): %s\n  %s", p.name, label, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
	}
}

// smallTargets lists the visible controls of the page smaller than 44×44 CSS px (a radio button or
// a checkbox counts by its label, which is what a finger presses).
func (p *page) smallTargets() []string {
	p.t.Helper()
	bad, err := eval[[]string](p, `(() => {
		const bad = [];
		for (const el of document.querySelectorAll('button, a[href], input:not([type=hidden]), select, textarea, summary, [role=button]')) {
			let r = el.getBoundingClientRect();
			if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
			if (r.bottom <= 0 || r.right <= 0 || r.top >= innerHeight || r.left >= innerWidth) continue; // off screen (skip link)
			if ((el.type === 'radio' || el.type === 'checkbox') && el.closest('label')) r = el.closest('label').getBoundingClientRect();
			if (r.width < 43.5 || r.height < 43.5) {
				const what = el.dataset.testid || el.id || el.getAttribute('aria-label') || el.textContent.trim().slice(0, 24);
				bad.push(el.tagName.toLowerCase() + ' "' + what + '" ' + Math.round(r.width) + '×' + Math.round(r.height));
			}
		}
		return bad;
	})()`)
	if err != nil {
		p.t.Fatalf("%s: touch targets: %v", p.name, err)
	}
	return bad
}

// docShot saves a screenshot for the documentation under e2e/artifacts/docs/<name>.png
// (docs/images holds the ones the docs show; refresh them from there).
func (p *page) docShot(name string) {
	p.t.Helper()
	time.Sleep(300 * time.Millisecond) // let transitions (meter, toasts) settle for the picture
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("%s: screenshot %s: %v", p.name, name, err)
		return
	}
	dir := filepath.Join(artifacts, "docs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Log(err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		p.t.Log(err)
	}
}

// A phone browser: no screen capture (Safari on iOS and Chrome on Android have no
// getDisplayMedia; desktop Chromium does, so the test removes it), and cameras after the first
// that say they face away, as a phone's back camera does (Chromium's fake cameras report no
// facingMode). Both are browser traits that cannot be had here otherwise.
const phoneTraits = `(() => {
	delete MediaDevices.prototype.getDisplayMedia;
	const real = MediaStreamTrack.prototype.getSettings;
	MediaStreamTrack.prototype.getSettings = function () {
		const s = real.call(this);
		if (this.kind === 'video' && s.deviceId) {
			const back = !/fake_device_0/.test(this.label);
			s.facingMode = back ? 'environment' : 'user';
		}
		return s;
	};
})()`

// rectsOverlap is a JS function expression: do two DOMRects overlap?
const rectsOverlap = `((a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)`

// Issue 14.4 and 14.6: a patient and a therapist on phones (390×844, touch). The patient waits in
// the waiting room, which names the therapist and shows a working microphone level; every control
// on both phones is at least 44×44 CSS px, with readable labels; no screen-share button; the
// therapist is told who was waiting; after the therapist switches the patient to the back camera,
// the patient's own video is not mirrored; a toast does not cover names; the timer and counter
// are big and do not cover the enlarge button.
func TestPhone(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID})
	pat := openPageWith(t, "patient", sess.link(t, patient1UUID)+"&name=Alice%20Martin&lang=en&therapist=Dr%20Martin",
		pageSetup{phone: true, script: phoneTraits})

	pat.waitJS("waiting room", `!document.getElementById('waiting').hidden && window.rehab.state.connection === 'joined'`, 15*time.Second)
	if got := pat.text(`[data-testid="waiting-title"]`); got != "Dr Martin will join you shortly" {
		t.Errorf("waiting room title %q", got)
	}
	pat.waitJS("own camera working", `document.getElementById('waiting-cam').dataset.ok === 'true'`, 10*time.Second)
	// The microphone level moves with Chromium's fake microphone (a beep every second) once the
	// page has been touched (browsers start audio only after a gesture).
	pat.watch("level", `parseFloat(getComputedStyle(document.getElementById('waiting-meter')).getPropertyValue('--level')) > 0.05`)
	pat.click(`[data-testid="waiting-room"] h2`)
	pat.watched("level", 10*time.Second)
	pat.waitJS("microphone heard", `document.getElementById('waiting-mic').dataset.ok === 'true'`, 3*time.Second)
	if bad := pat.smallTargets(); len(bad) > 0 {
		t.Errorf("patient's waiting room: controls smaller than 44×44: %v", bad)
	}
	pat.docShot("waiting-room-phone-en")

	ther := openPageWith(t, "therapist", sess.link(t, therapistUUID)+"&name=Dr%20Martin&lang=fr", pageSetup{phone: true, script: phoneTraits})
	ther.waitJS("told who was waiting", `!document.getElementById('toast').hidden && document.getElementById('toast').textContent.includes('Alice Martin')`, 15*time.Second)
	pat.waitJS("waiting room gone", `document.getElementById('waiting').hidden`, 5*time.Second)
	pat.waitVideoFlowing(1, 20*time.Second)
	ther.waitVideoFlowing(1, 20*time.Second)

	for _, p := range []*page{pat, ther} {
		if bad := p.smallTargets(); len(bad) > 0 {
			t.Errorf("%s on a phone: controls smaller than 44×44: %v", p.name, bad)
		}
		if shown, _ := eval[bool](p, `!document.getElementById('btn-screen').hidden`); shown {
			t.Errorf("%s: a screen-share button without getDisplayMedia", p.name)
		}
		// The toolbar is labelled: every button shows its name.
		if unlabelled, _ := eval[[]string](p, `[...document.querySelectorAll('#controls .ctl:not([hidden])')].filter(b => {
			return ![...b.querySelectorAll('.ctl-label, .ctl-short')].some(l => l.getBoundingClientRect().width > 0 && l.textContent.trim());
		}).map(b => b.id)`); len(unlabelled) > 0 {
			t.Errorf("%s: toolbar buttons without a visible label: %v", p.name, unlabelled)
		}
		if small, _ := eval[[]string](p, `[...document.querySelectorAll('.tile:not(.local) .role-badge')].filter(b => b.getBoundingClientRect().width > 0 && parseFloat(getComputedStyle(b).fontSize) < 13).map(b => b.textContent)`); len(small) > 0 {
			t.Errorf("%s: role labels under 13 px: %v", p.name, small)
		}
	}
	// The patient's large tile shows the therapist's whole name.
	if cut, _ := eval[bool](pat, `(() => { const n = document.querySelector('.tile.featured .tile-name'); return !n || n.scrollWidth > n.clientWidth + 1; })()`); cut {
		t.Error("the therapist's name is cut on the patient's phone")
	}
	pat.js(`document.querySelector('.tile.featured').scrollIntoView()`)

	// The therapist switches the patient to the next (back) camera: the patient's own video is not
	// mirrored any more, and the notice does not cover a name.
	if mirrored, _ := eval[bool](pat, `document.querySelector('.tile.local video').classList.contains('mirror')`); !mirrored {
		t.Error("the front camera's preview is not mirrored")
	}
	ther.click(`.tile.remote [data-testid="tile-switch-cam"]`)
	pat.waitJS("back camera not mirrored", `!document.querySelector('.tile.local video').classList.contains('mirror') &&
		getComputedStyle(document.querySelector('.tile.local video')).transform === 'none'`, 10*time.Second)
	pat.waitJS("switch notice", `!document.getElementById('toast').hidden`, 5*time.Second)
	if covered, _ := eval[[]string](pat, `(() => {
		const toast = document.getElementById('toast').getBoundingClientRect();
		return [...document.querySelectorAll('.tile-name')].filter(n => `+rectsOverlap+`(toast, n.getBoundingClientRect())).map(n => n.textContent);
	})()`); len(covered) > 0 {
		t.Errorf("the notice covers the names %v", covered)
	}

	// Timer and counter on the patient's phone: big, and clear of the enlarge button.
	for _, c := range []struct{ topic, data string }{
		{"control.timer", `{mode: 'countdown', state: 'running', duration: 60, elapsed: 0, label: 'Squats'}`},
		{"control.counter", `{state: 'show', value: 12, label: 'Squats'}`},
	} {
		if res, _ := eval[map[string]any](ther, fmt.Sprintf(`window.rehab.trySend(%q, %s)`, c.topic, c.data)); res["ok"] != true {
			t.Fatalf("therapist %s: %v", c.topic, res)
		}
	}
	pat.waitJS("timer and counter shown", `!document.getElementById('overlay-timer').hidden && document.getElementById('counter-value').textContent === '12'`, 5*time.Second)
	for _, id := range []string{"timer-value", "counter-value"} {
		size, _ := eval[float64](pat, fmt.Sprintf(`parseFloat(getComputedStyle(document.getElementById(%q)).fontSize)`, id))
		if size < 72 {
			t.Errorf("%s is %.0f px high on the phone, want at least 72 (readable from two metres)", id, size)
		}
	}
	if covered, _ := eval[[]string](pat, `(() => {
		const boxes = ['overlay-timer', 'overlay-counter'].map(id => document.getElementById(id).getBoundingClientRect());
		return [...document.querySelectorAll('.tile [data-action="enlarge"]')].filter(b => b.getBoundingClientRect().width > 0 &&
			boxes.some(o => `+rectsOverlap+`(o, b.getBoundingClientRect()))).map(b => b.getAttribute('aria-label'));
	})()`); len(covered) > 0 {
		t.Errorf("the timer or counter covers the enlarge buttons %v", covered)
	}
	pat.docShot("session-phone-en")
	ther.docShot("session-phone-therapist-fr")

	// The dashboard on a phone: every control is big enough too.
	pat.cancel() // at most three pages at a time on the shared machine
	dash := openPageWith(t, "dashboard", srv.gateway+"/rehab/?lang=fr", pageSetup{phone: true})
	dash.js(fmt.Sprintf(`sessionStorage.setItem('rehab.apiKey', %q)`, apiKey))
	if err := dash.do(10*time.Second, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	dash.waitJS("session listed", `document.querySelectorAll('[data-testid="session-card"]').length === 1`, 10*time.Second)
	for _, y := range []int{0, 900, 1800, 2700} { // page by page: only what is on screen counts
		dash.js(fmt.Sprintf(`scrollTo(0, %d)`, y))
		if bad := dash.smallTargets(); len(bad) > 0 {
			t.Errorf("dashboard on a phone (scrolled to %d): controls smaller than 44×44: %v", y, bad)
		}
	}
	dash.js(`scrollTo(0, 0)`)
	dash.docShot("dashboard-phone-fr")
}

// Issue 14 (accessibility): axe-core on every page the people of a session see, in English and in
// French: the dashboard, the patient's waiting room, the session page of a therapist and of a
// patient, and the end screens. No serious or critical violation.
func TestAccessibility(t *testing.T) {
	needBrowser(t)
	npmTool(t, "axe-core", "axe.min.js") // skip or fail before starting anything
	srv := startServer(t)
	for _, lang := range []string{"en", "fr"} {
		t.Run(lang, func(t *testing.T) {
			dash := openPage(t, "dashboard", srv.gateway+"/rehab/?lang="+lang)
			dash.waitJS("login form", `!document.getElementById('login').hidden`, 5*time.Second)
			dash.axe("login")
			dash.js(fmt.Sprintf(`sessionStorage.setItem('rehab.apiKey', %q)`, apiKey))
			sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID})
			if err := dash.do(10*time.Second, chromedp.Reload()); err != nil {
				t.Fatal(err)
			}
			dash.waitJS("session listed", `document.querySelectorAll('[data-testid="session-card"]').length === 1`, 10*time.Second)

			pat := openPage(t, "patient", sess.link(t, patient1UUID)+"&name=Alice&therapist=Dr%20Roy&lang="+lang)
			pat.waitJS("waiting room", `window.rehab && window.rehab.state.connection === 'joined' && !document.getElementById('waiting').hidden`, 15*time.Second)
			pat.axe("waiting-room")
			pat.docShot("waiting-room-" + lang)
			dash.waitJS("patient waiting", `!document.querySelector('[data-testid="waiting"]').hidden`, 10*time.Second)
			dash.axe("dashboard")
			dash.docShot("dashboard-" + lang)
			dash.click(`tr[data-kind="participant"] [data-testid="qr-link"]`)
			dash.waitJS("QR code", `document.getElementById('qr').open && !!document.querySelector('#qr-code svg')`, 5*time.Second)
			dash.axe("qr-dialog")
			dash.js(`document.getElementById('qr').close()`)

			ther := openPage(t, "therapist", sess.link(t, therapistUUID)+"&name=Dr%20Roy&lang="+lang)
			pat.waitVideoFlowing(1, 20*time.Second)
			ther.waitVideoFlowing(1, 20*time.Second)
			pat.axe("session")
			ther.axe("session")
			ther.docShot("session-therapist-" + lang)

			srv.manage("stop", sess.ID, nil, nil)
			for _, p := range []*page{pat, ther} {
				p.waitJS("end screen", `document.body.dataset.screen === 'ended'`, 10*time.Second)
				p.axe("ended")
			}
			pat.docShot("ended-" + lang)
			for _, p := range []*page{dash, pat, ther} {
				p.cancel() // at most three pages at a time on the shared machine
			}
		})
	}
}
