package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// appServer serves the EHRC app stand-in (testdata/ehrc-app) and the socket.io-client 4 browser
// bundle from npm on a loopback origin of its own, as EHRC's frontend is served apart from its
// signaling server.
func appServer(t *testing.T) *httptest.Server {
	t.Helper()
	dir := filepath.Join(root, "e2e", "testdata", "ehrc-app")
	testutil.NPMInstall(t, dir, "socket.io-client")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, filepath.Join(dir, "index.html")) })
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, filepath.Join(dir, "app.js")) })
	mux.HandleFunc("GET /socket.io.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "node_modules", "socket.io-client", "dist", "socket.io.min.js"))
	})
	mux.HandleFunc("GET /favicon.ico", http.NotFound)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// appURL is the app page for role in namespace ns, talking to the rehabrtc at server.
func appURL(app, server, role, ns string) string {
	return app + "/?" + url.Values{"role": {role}, "ns": {ns}, "server": {server}}.Encode()
}

// keylessGet is what EHRC's unchanged backend does: a plain GET, no API key.
func keylessGet(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b := make([]byte, 256)
	n, _ := res.Body.Read(b)
	return res.StatusCode, string(b[:n])
}

// An unchanged EHRC backend and app run a whole consultation in compatibility mode (issue 13): the
// backend creates the namespace without a key from a trusted address, the app (served from another
// origin, socket.io-client 4's browser bundle) runs the doctor without a token and the patient,
// and each side decodes the other's video. The same page from an origin not allowed is refused.
func TestEHRCAppCompatMode(t *testing.T) {
	needBrowser(t)
	app := appServer(t)
	srv := startServerWith(t, func(r map[string]any) {
		r["ehrc"] = map[string]any{
			"allowed_origins": []string{app.URL},
			"compat":          map[string]any{"enabled": true, "trusted_backends": []string{"127.0.0.0/8"}},
		}
	})
	if out := srv.out.String(); !strings.Contains(out, "EHRC compatibility mode is on") {
		t.Fatalf("no start-up warning for compatibility mode:\n%s", out)
	}
	if code, body := keylessGet(t, srv.gateway+"/api/create-namespace?namespaceId=dr-compat"); code != 200 ||
		body != `{"status":200,"msg":"Namespace added successfully."}` {
		t.Fatalf("keyless create-namespace: %d %q", code, body)
	}
	start := time.Now()
	doctor := openPage(t, "doctor", appURL(app.URL, srv.gateway, "doctor", "dr-compat"))
	doctor.waitJS("doctor waiting", `window.rehab.state === 'waiting'`, 15*time.Second)
	patient := openPage(t, "patient", appURL(app.URL, srv.gateway, "patient", "dr-compat"))
	for _, p := range []*page{doctor, patient} {
		p.waitJS("in call", `window.rehab.state === 'in-call'`, 20*time.Second)
	}
	doctor.waitVideoFlowing(1, 20*time.Second)
	patient.waitVideoFlowing(1, 20*time.Second)
	for _, p := range []*page{doctor, patient} { // polling (CORS) first, then the cross-origin upgrade
		p.waitJS("upgraded to WebSocket", `window.rehab.transport() === 'websocket'`, 10*time.Second)
	}
	doctor.shot("in-call")
	patient.shot("in-call")
	t.Logf("unchanged EHRC app, compatibility mode: video both ways after %v", time.Since(start).Round(time.Millisecond))
	patient.cancel() // free a tab before the next one

	// The same page from an origin that is not in the allow-list: refused.
	other := appServer(t)
	stranger := openPage(t, "stranger", appURL(other.URL, srv.gateway, "doctor", "dr-compat"))
	stranger.waitJS("refused", `window.rehab.state === 'refused'`, 15*time.Second)
	if s, err := eval[string](stranger, `window.rehab.events.join(',')`); err != nil || s != "" {
		t.Fatalf("a page from an origin not allowed received events %q (%v)", s, err)
	}
}

// In the default mode the same unchanged doctor page, even from an allowed origin, cannot act as
// the doctor: it has no token.
func TestEHRCAppDefaultModeRefusesTokenlessDoctor(t *testing.T) {
	needBrowser(t)
	app := appServer(t)
	srv := startServerWith(t, func(r map[string]any) {
		r["ehrc"] = map[string]any{"allowed_origins": []string{app.URL}}
	})
	if code, _ := keylessGet(t, srv.gateway+"/api/create-namespace?namespaceId=dr-default"); code != 401 {
		t.Fatalf("keyless create-namespace in default mode: %d", code)
	}
	createNamespace(t, srv, "dr-default")
	doctor := openPage(t, "doctor", appURL(app.URL, srv.gateway, "doctor", "dr-default"))
	doctor.waitJS("doctor-joined refused", `window.rehab.state === 'refused-doctor-joined'`, 15*time.Second)
	if e, _ := eval[string](doctor, `window.rehab.error`); e == "" {
		t.Fatal("no refusal message")
	}
	if code, body := keylessGet(t, srv.service+"/api/check-availability?namespaceId=dr-default"); code != 200 ||
		body != `{"status":200,"msg":"Doctor is not available","availability":false}` {
		t.Fatalf("availability after a refused tokenless doctor: %d %q", code, body)
	}
}

// A restart of rehabrtc in the middle of a consultation of unchanged EHRC apps: the namespace and
// the room come back from the store, socket.io-client reconnects by itself, the apps run their
// opening steps again (doctor-joined, create with the same room) and the call goes on with video.
func TestEHRCAppSurvivesRestart(t *testing.T) {
	needBrowser(t)
	app := appServer(t)
	srv := startServerWith(t, func(r map[string]any) {
		r["ehrc"] = map[string]any{
			"allowed_origins": []string{app.URL},
			"compat":          map[string]any{"enabled": true, "trusted_backends": []string{"127.0.0.0/8"}},
		}
	})
	if code, _ := keylessGet(t, srv.gateway+"/api/create-namespace?namespaceId=dr-restart"); code != 200 {
		t.Fatalf("create-namespace: %d", code)
	}
	doctor := openPage(t, "doctor", appURL(app.URL, srv.gateway, "doctor", "dr-restart"))
	doctor.waitJS("doctor waiting", `window.rehab.state === 'waiting'`, 15*time.Second)
	patient := openPage(t, "patient", appURL(app.URL, srv.gateway, "patient", "dr-restart"))
	for _, p := range []*page{doctor, patient} {
		p.waitJS("in call", `window.rehab.state === 'in-call'`, 20*time.Second)
	}

	stopping := time.Now()
	srv.stop() // SIGTERM: a clean restart, as systemd does it
	for _, p := range []*page{doctor, patient} {
		p.waitJS("disconnected", `window.rehab.disconnects >= 1`, 10*time.Second)
	}
	t.Logf("stopped in %v", time.Since(stopping).Round(time.Millisecond))
	start := time.Now()
	srv.start()
	for _, p := range []*page{doctor, patient} {
		p.waitJS("in call again", `window.rehab.state === 'in-call'`, 30*time.Second)
	}
	doctor.waitVideoFlowing(1, 20*time.Second)
	patient.waitVideoFlowing(1, 20*time.Second)
	t.Logf("consultation back with video %v after the restart", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(srv.out.String(), "consultations restored") {
		t.Errorf("no restore logged:\n%s", srv.out.String())
	}
}
