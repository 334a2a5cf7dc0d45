package e2e

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The example page joins as a device with only protocol.js, and its chat reaches the therapist.
func TestExamplePage(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	const deviceUUID = "44444444-4444-4444-8444-444444444444"
	sess := srv.manage("start", 0, []string{therapistUUID}, nil, deviceUUID)
	therapist := openPage(t, "therapist", sess.link(t, therapistUUID)+"&name=Dr%20Tremblay&lang=en")
	therapist.waitJS("joined", `window.rehab && window.rehab.state.connection === 'joined'`, 10*time.Second)

	link, err := url.Parse(sess.link(t, deviceUUID))
	if err != nil {
		t.Fatal(err)
	}
	q := link.Query()
	example := link.JoinPath("..", "static", "example", "index.html")
	example.RawQuery = url.Values{"key": {q.Get("key")}, "uuid": {q.Get("uuid")}, "name": {"Robot 1"}}.Encode()
	ex := openPage(t, "example", example.String())
	ex.waitJS("example joined", `document.getElementById('state').textContent === 'joined'`, 10*time.Second)
	therapist.waitJS("device tile", `window.rehab.peers.some(p => p.role === 'device' && p.name === 'Robot 1')`, 5*time.Second)

	if err := ex.do(5*time.Second, chromedp.SendKeys(chromedp.CSS("#text"), "battery 87%"), chromedp.Click(chromedp.CSS(`#chat button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	therapist.waitJS("device chat", hasChat("battery 87%"), 5*time.Second)
	therapist.sendChat("hello robot")
	ex.waitJS("chat logged", `document.getElementById('log').textContent.includes('hello robot')`, 5*time.Second)
	ex.shot("log")
	if log := ex.text("#log"); !strings.Contains(log, "welcome") {
		t.Errorf("example log lacks the welcome: %s", log)
	}
}
