package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// A doctor on Socket.IO (EHRC's events, static/ehrc/sio.js) and a patient on the native protocol
// (protocol.js) complete a consultation through the gateway, and each decodes the other's video.
func TestConsultationBrowsers(t *testing.T) {
	needBrowser(t)
	start := time.Now()
	srv := startServer(t)
	token := createNamespace(t, srv, "dr-e2e")
	base := srv.gateway + "/rehab/static/ehrc/consult.html"

	doctor := openPage(t, "doctor", base+"?role=doctor&ns=dr-e2e#token="+token)
	doctor.waitJS("doctor waiting", `window.rehab && window.rehab.state === 'waiting'`, 10*time.Second)
	patient := openPage(t, "patient", base+"?role=patient&ns=dr-e2e")
	for _, p := range []*page{doctor, patient} {
		p.waitJS("in call", `window.rehab.state === 'in-call'`, 10*time.Second)
	}
	doctor.waitVideoFlowing(1, 20*time.Second)
	patient.waitVideoFlowing(1, 20*time.Second)
	if tr, err := eval[string](doctor, `window.rehab.transport`); err != nil || tr != "socket.io" {
		t.Fatalf("doctor transport %q %v", tr, err)
	}
	doctor.shot("in-call")
	patient.shot("in-call")
	t.Logf("consultation with video both ways after %v", time.Since(start).Round(time.Millisecond))
}

// createNamespace creates an EHRC namespace with the API key and returns its doctor token.
func createNamespace(t *testing.T, srv *server, id string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.service+"/api/create-namespace?namespaceId="+id, nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Token string `json:"doctor-token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 || out.Token == "" {
		t.Fatalf("create-namespace: %d %v", res.StatusCode, err)
	}
	return out.Token
}
