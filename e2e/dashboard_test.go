package e2e

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// signIn signs the dashboard in with the API key.
func (p *page) signIn(key string) {
	p.t.Helper()
	p.js(`document.getElementById('login-key').value = ''`)
	if err := p.do(5*time.Second, chromedp.SendKeys(chromedp.CSS("#login-key"), key), chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`))); err != nil {
		p.t.Fatal(err)
	}
}

// running is the number of sessions in progress, as the API says.
func (s *server) running() int {
	s.t.Helper()
	var out struct {
		Sessions []Session `json:"sessions"`
	}
	s.api("GET", "/api/sessions", nil, &out)
	n := 0
	for _, x := range out.Sessions {
		if x.Status == 1 {
			n++
		}
	}
	return n
}

// Scenario 7 and issue 14.2, 14.4, 14.7: the /rehab/ dashboard: sign in; the device lists are
// filled without a test once the camera is allowed; the start form refuses an empty patient line
// and a double press starts one session, titled with the patient's name and the time; the
// patient's link goes by copy, QR code (read back with jsQR) and e-mail; the patient waits in the
// waiting room, which names the clinician, while the dashboard says who is waiting; join as
// therapist; remove and stop ask in a dialog naming the session and the person.
func TestDashboard(t *testing.T) {
	needBrowser(t)
	jsQR := npmTool(t, "jsqr", "dist/jsQR.js")
	srv := startServer(t)
	dash := openPage(t, "dashboard", srv.gateway+"/rehab/?lang=en")
	dash.waitJS("login form", `!document.getElementById('login').hidden`, 5*time.Second)
	dash.shot("login")

	// A wrong key is refused with a plain message.
	dash.signIn("not-the-key")
	dash.waitJS("bad key message", `!document.getElementById('alert').hidden && document.getElementById('login').hidden === false`, 5*time.Second)
	dash.signIn(apiKey)
	dash.waitJS("signed in", `!document.getElementById('app').hidden && document.getElementById('alert').hidden`, 5*time.Second)

	// Camera and microphone check before joining; once allowed, the lists are filled at the next
	// visit without pressing the button.
	dash.click(`[data-testid="preview-toggle"]`)
	dash.waitJS("camera preview playing", `document.getElementById('preview-video').videoWidth > 0`, 5*time.Second)
	if err := dash.do(10*time.Second, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	dash.waitJS("device lists filled without a test", `!document.getElementById('app').hidden &&
		document.getElementById('preview-camera').options.length >= 1 && document.getElementById('preview-mic').options.length >= 1 &&
		document.getElementById('preview-toggle').getAttribute('aria-pressed') === 'false'`, 5*time.Second)

	// An empty patient line is refused, and nothing is started.
	dash.click(`[data-testid="start-session"]`)
	dash.waitJS("empty line refused", `!document.getElementById('new-error').hidden &&
		document.querySelector('[data-testid="patient-label"]').getAttribute('aria-invalid') === 'true'`, 3*time.Second)
	if n := srv.running(); n != 0 {
		t.Fatalf("%d sessions started from an empty form", n)
	}

	// A double press starts one session, titled with the patient's name and the start time.
	if err := dash.do(5*time.Second,
		chromedp.SendKeys(chromedp.CSS("#my-name"), "Dr Roy"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="patient-label"]`), "Mme Gagnon"),
	); err != nil {
		t.Fatal(err)
	}
	dash.js(`(() => { const b = document.querySelector('[data-testid="start-session"]'); b.click(); b.click(); })()`)
	dash.waitJS("session card", `document.querySelectorAll('[data-testid="session-card"] tr[data-kind="participant"]').length === 1`, 5*time.Second)
	dash.click(`[data-testid="start-session"]`) // again, on the emptied form
	dash.waitJS("second press refused", `!document.getElementById('new-error').hidden`, 3*time.Second)
	if n := srv.running(); n != 1 {
		t.Fatalf("%d sessions in progress after a double press and a press on the empty form, want 1", n)
	}
	title := dash.text(`[data-testid="session-card"] h3`)
	if !regexp.MustCompile(`^Mme Gagnon · \d\d:\d\d`).MatchString(title) {
		t.Errorf("session title %q, want the patient's name and the start time", title)
	}
	id, _ := eval[int64](dash, `Number(document.querySelector('[data-testid="session-card"]').dataset.id)`)
	if name := srv.session(id).Name; name != title {
		t.Errorf("session_name %q on the server, want the title %q", name, title)
	}
	dash.shot("started")

	// Copy the patient's personal link; it names the patient, the language and the clinician.
	row := `[data-testid="session-card"] tr[data-kind="participant"]`
	dash.click(row + ` [data-testid="copy-link"]`)
	dash.waitJS("copy feedback", `document.querySelector('`+row+` [data-testid="copy-link"]').dataset.copied !== undefined`, 3*time.Second)
	link, err := eval[string](dash, `document.querySelector('`+row+` [data-testid="link-input"]').value`)
	if err != nil || !strings.Contains(link, "/participants?") || !strings.Contains(link, "name=Mme+Gagnon") || !strings.Contains(link, "therapist=Dr+Roy") {
		t.Fatalf("patient link %q, %v", link, err)
	}
	if !strings.HasPrefix(link, srv.gateway+"/webrtc/") {
		t.Errorf("patient link %q does not go through the gateway %s", link, srv.gateway)
	}

	// The QR code, drawn in the page, reads back as the link.
	dash.click(row + ` [data-testid="qr-link"]`)
	dash.waitJS("QR dialog", `document.getElementById('qr').open && !!document.querySelector('#qr-code svg')`, 3*time.Second)
	dash.docShot("dashboard-qr-en")
	dash.inject("jsQR", jsQR)
	read, err := eval[string](dash, `new Promise((resolve, reject) => {
		const svg = document.querySelector('#qr-code svg');
		const img = new Image();
		img.onload = () => {
			const c = document.createElement('canvas');
			c.width = c.height = 400;
			const g = c.getContext('2d');
			g.drawImage(img, 0, 0, 400, 400);
			const code = jsQR(g.getImageData(0, 0, 400, 400).data, 400, 400);
			code ? resolve(code.data) : reject(new Error('no QR code found'));
		};
		img.onerror = () => reject(new Error('the SVG does not load'));
		img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(new XMLSerializer().serializeToString(svg));
	})`)
	if err != nil || read != link {
		t.Errorf("QR code reads %q (%v), want the link %q", read, err, link)
	}
	dash.js(`document.getElementById('qr').close()`)

	// The e-mail: a ready text in the patient's language, with the link.
	mail, _ := eval[string](dash, `document.querySelector('`+row+` [data-testid="mail-link"]').href`)
	if q, err := url.ParseQuery(strings.TrimPrefix(mail, "mailto:?")); err != nil || q.Get("subject") != "Your video session" ||
		!strings.Contains(q.Get("body"), "Hello Mme Gagnon") || !strings.Contains(q.Get("body"), "Dr Roy invites you") || !strings.Contains(q.Get("body"), link) {
		t.Errorf("mailto %q (%v)", mail, err)
	}

	// The patient opens the link on "another computer" and waits for the clinician, who sees it.
	patient := openPage(t, "patient", link)
	patient.waitJS("patient in the waiting room", `window.rehab && window.rehab.state.connection === 'joined' && !document.getElementById('waiting').hidden`, 10*time.Second)
	if got := patient.text(`[data-testid="waiting-title"]`); got != "Dr Roy will join you shortly" {
		t.Errorf("waiting room title %q", got)
	}
	dash.waitJS("patient shown waiting", `document.querySelector('`+row+` [data-testid="presence"]').dataset.state === 'waiting' &&
		document.querySelector('[data-testid="waiting"]').textContent.includes('Mme Gagnon') && document.title.startsWith('(1) ')`, 8*time.Second)
	dash.js(`document.querySelector('[data-testid="session-card"]').scrollIntoView()`)
	dash.docShot("dashboard-waiting-en")
	join, err := eval[string](dash, `document.querySelector('[data-testid="join-therapist"]').href`)
	if err != nil || !strings.Contains(join, "/users?") {
		t.Fatalf("join link %q, %v", join, err)
	}
	therapist := openPage(t, "therapist", join)
	therapist.waitVideoFlowing(1, 15*time.Second)
	patient.waitVideoFlowing(1, 15*time.Second)
	patient.waitJS("waiting room gone", `document.getElementById('waiting').hidden`, 3*time.Second)
	if name, _ := eval[string](patient, `window.rehab.peers[0].name`); name != "Dr Roy" {
		t.Errorf("the patient sees the therapist as %q, want Dr Roy", name)
	}
	dash.waitJS("both connected", `[...document.querySelectorAll('[data-testid="presence"]')].every(p => p.dataset.connected === 'true') &&
		document.querySelector('[data-testid="waiting"]').hidden`, 8*time.Second)
	dash.shot("connected")
	patient.shot("in-session")
	therapist.shot("in-session")

	// Remove asks first, naming the person and the session.
	if err := dash.do(5*time.Second, chromedp.SendKeys(chromedp.CSS(`[data-testid="invite-label"]`), "M. Côté"), chromedp.Click(chromedp.CSS(`[data-testid="invite"]`))); err != nil {
		t.Fatal(err)
	}
	other := `[data-testid="session-card"] tr[data-kind="participant"]:nth-child(3)`
	dash.waitJS("second patient invited", `!!document.querySelector('`+other+`') && document.querySelector('`+other+` .who').textContent === 'M. Côté'`, 5*time.Second)
	dash.click(other + ` [data-testid="remove"]`)
	dash.waitJS("remove dialog", `document.getElementById('confirm').open`, 3*time.Second)
	if got := dash.text(`[data-testid="confirm-title"]`); got != "Remove M. Côté from “"+title+"”?" {
		t.Errorf("remove dialog title %q", got)
	}
	dash.click(`[data-testid="confirm-ok"]`)
	dash.waitJS("second patient removed", `document.querySelectorAll('[data-testid="session-card"] tr[data-kind="participant"]').length === 1`, 5*time.Second)

	// Stop asks first, naming the session and the people; Cancel keeps it running.
	dash.click(`[data-testid="stop-session"]`)
	dash.waitJS("stop dialog", `document.getElementById('confirm').open`, 3*time.Second)
	if got := dash.text(`[data-testid="confirm-title"]`); got != "Stop “"+title+"”?" {
		t.Errorf("stop dialog title %q", got)
	}
	if got := dash.text(`[data-testid="confirm-text"]`); !strings.Contains(got, "Mme Gagnon") {
		t.Errorf("stop dialog text %q does not name the patient", got)
	}
	dash.docShot("dashboard-stop-dialog-en")
	dash.axe("stop-dialog")
	dash.click(`[data-testid="confirm-cancel"]`)
	dash.waitJS("dialog closed", `!document.getElementById('confirm').open`, 3*time.Second)
	if s := srv.session(id); s.Status != 1 {
		t.Fatalf("session status %d after Cancel, want 1 (in progress)", s.Status)
	}
	dash.click(`[data-testid="stop-session"]`)
	dash.waitJS("stop dialog", `document.getElementById('confirm').open`, 3*time.Second)
	dash.click(`[data-testid="confirm-ok"]`)
	patient.waitJS("patient sees the end", `document.body.dataset.screen === 'ended'`, 5*time.Second)
	therapist.waitJS("therapist sees the end", `document.body.dataset.screen === 'ended'`, 5*time.Second)
	dash.waitJS("no session left", `document.querySelectorAll('[data-testid="session-card"]').length === 0 && !document.getElementById('no-sessions').hidden`, 5*time.Second)
	dash.shot("stopped")
	patient.shot("ended")
}

// Issue 14.3: while the service does not answer, the dashboard says so in a banner (and keeps the
// sign-in); the banner goes once the service answers again.
func TestDashboardUnreachable(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	dash := openPage(t, "dashboard", srv.service+"/?lang=fr")
	dash.waitJS("login form", `!document.getElementById('login').hidden`, 5*time.Second)
	dash.signIn(apiKey)
	dash.waitJS("signed in", `!document.getElementById('app').hidden`, 5*time.Second)
	srv.kill()
	dash.waitJS("unreachable banner", `!document.getElementById('unreachable').hidden && document.body.dataset.reachable === 'false'`, 8*time.Second)
	if got := dash.text(`[data-testid="unreachable"]`); !strings.Contains(got, "Le service ne répond pas") {
		t.Errorf("banner %q", got)
	}
	dash.axe("unreachable")
	dash.docShot("dashboard-unreachable-fr")
	srv.start()
	dash.waitJS("banner gone", `document.getElementById('unreachable').hidden && !document.getElementById('app').hidden`, 8*time.Second)
}
