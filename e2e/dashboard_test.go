package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Scenario 7: the /rehab/ dashboard: sign in, check the camera, start a session, copy the
// patient's link, open it in a second browser context, see the patient connected, stop.
func TestDashboard(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	dash := openPage(t, "dashboard", srv.gateway+"/rehab/?lang=en")
	dash.waitJS("login form", `!document.getElementById('login').hidden`, 5*time.Second)
	dash.shot("login")

	// A wrong key is refused with a plain message.
	if err := dash.do(5*time.Second, chromedp.SendKeys(chromedp.CSS("#login-key"), "not-the-key"), chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`))); err != nil {
		t.Fatal(err)
	}
	dash.waitJS("bad key message", `!document.getElementById('alert').hidden && document.getElementById('login').hidden === false`, 5*time.Second)
	dash.js(`document.getElementById('login-key').value = ''`)
	if err := dash.do(5*time.Second, chromedp.SendKeys(chromedp.CSS("#login-key"), apiKey), chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`))); err != nil {
		t.Fatal(err)
	}
	dash.waitJS("signed in", `!document.getElementById('app').hidden && document.getElementById('alert').hidden`, 5*time.Second)

	// Camera and microphone check before joining.
	dash.click(`[data-testid="preview-toggle"]`)
	dash.waitJS("camera preview playing", `document.getElementById('preview-video').videoWidth > 0`, 5*time.Second)

	// Start a session for one new patient.
	if err := dash.do(5*time.Second,
		chromedp.SendKeys(chromedp.CSS("#my-name"), "Dr Roy"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="patient-label"]`), "Mme Gagnon"),
		chromedp.Click(chromedp.CSS(`[data-testid="start-session"]`)),
	); err != nil {
		t.Fatal(err)
	}
	dash.waitJS("session card", `document.querySelectorAll('[data-testid="session-card"] tr[data-kind="participant"]').length === 1`, 5*time.Second)
	dash.shot("started")

	// Copy the patient's personal link.
	row := `[data-testid="session-card"] tr[data-kind="participant"]`
	dash.click(row + ` [data-testid="copy-link"]`)
	dash.waitJS("copy feedback", `document.querySelector('`+row+` [data-testid="copy-link"]').dataset.copied !== undefined`, 3*time.Second)
	link, err := eval[string](dash, `document.querySelector('`+row+` [data-testid="link-input"]').value`)
	if err != nil || !strings.Contains(link, "/participants?") || !strings.Contains(link, "name=Mme+Gagnon") {
		t.Fatalf("patient link %q, %v", link, err)
	}
	if !strings.HasPrefix(link, srv.gateway+"/webrtc/") {
		t.Errorf("patient link %q does not go through the gateway %s", link, srv.gateway)
	}

	// The patient opens the link on "another computer"; the clinician joins from the dashboard.
	patient := openPage(t, "patient", link)
	patient.waitJS("patient joined", `window.rehab && window.rehab.state.connection === 'joined'`, 10*time.Second)
	dash.waitJS("patient shown connected", `document.querySelector('`+row+` [data-testid="presence"]').dataset.connected === 'true'`, 8*time.Second)
	join, err := eval[string](dash, `document.querySelector('[data-testid="join-therapist"]').href`)
	if err != nil || !strings.Contains(join, "/users?") {
		t.Fatalf("join link %q, %v", join, err)
	}
	therapist := openPage(t, "therapist", join)
	therapist.waitVideoFlowing(1, 15*time.Second)
	patient.waitVideoFlowing(1, 15*time.Second)
	if name, _ := eval[string](patient, `window.rehab.peers[0].name`); name != "Dr Roy" {
		t.Errorf("the patient sees the therapist as %q, want Dr Roy", name)
	}
	dash.waitJS("both connected", `[...document.querySelectorAll('[data-testid="presence"]')].every(p => p.dataset.connected === 'true')`, 8*time.Second)
	dash.shot("connected")
	patient.shot("in-session")
	therapist.shot("in-session")

	// Stop: a second click confirms.
	dash.click(`[data-testid="stop-session"]`)
	dash.click(`[data-testid="stop-session"]`)
	patient.waitJS("patient sees the end", `document.body.dataset.screen === 'ended'`, 5*time.Second)
	therapist.waitJS("therapist sees the end", `document.body.dataset.screen === 'ended'`, 5*time.Second)
	dash.waitJS("no session left", `document.querySelectorAll('[data-testid="session-card"]').length === 0 && !document.getElementById('no-sessions').hidden`, 5*time.Second)
	dash.shot("stopped")
	patient.shot("ended")
}
