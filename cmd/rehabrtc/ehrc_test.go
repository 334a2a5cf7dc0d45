package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The EHRC API answers on the service port and on the gateway, at /api/…,
// at the bare paths and (service side) under /rehab/; a promoted room shows
// up as a session of the API.
func TestConsultationWiring(t *testing.T) {
	ts := startServer(t, testConfig(t, t.TempDir(), 2))
	for _, base := range []string{ts.service, ts.gateway, ts.gateway + "/rehab"} {
		for _, path := range []string{"/api/check-availability?namespaceId=x", "/check-availability?namespaceId=x"} {
			body := getBody(t, base+path, http.StatusOK)
			if !strings.Contains(body, `"availability":false`) {
				t.Errorf("%s%s: %s", base, path, body)
			}
		}
	}
	if body := getBody(t, ts.gateway+"/socket.io/?EIO=4&transport=polling", http.StatusOK); !strings.HasPrefix(body, `0{"sid":`) {
		t.Errorf("socket.io handshake: %q", body)
	}
	if getStatus(t, ts.gateway+"/") != http.StatusOK { // still the redirect to /rehab/ (followed)
		t.Error("/ lost its redirect")
	}

	var created struct {
		Token string `json:"doctor-token"`
	}
	req, _ := http.NewRequest("GET", ts.gateway+"/create-namespace?namespaceId=dr-who", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	var room struct {
		ID string `json:"room-id"`
	}
	_ = json.Unmarshal([]byte(getBody(t, ts.gateway+"/api/create-room", http.StatusOK)), &room)

	doctor := dialConsult(t, ts.gateway, "dr-who", created.Token)
	patient := dialConsult(t, ts.gateway, "dr-who", room.ID)
	doctor.send(t, "doctor-joined", nil)
	patient.send(t, "create", map[string]string{"room-id": room.ID})
	doctor.expect(t, "new-patient")
	doctor.send(t, "join", map[string]any{"room-id": room.ID, "init": false})
	patient.expect(t, "room-joined")
	doctor.send(t, "promote-room", map[string]string{"room-id": room.ID})
	var promoted struct {
		ID int64 `json:"id_session"`
	}
	_ = json.Unmarshal(doctor.expect(t, "room-promoted"), &promoted)
	var s sessionJSON
	if code := ts.api("GET", "/api/sessions/"+strconv.FormatInt(promoted.ID, 10), nil, &s); code != 200 || s.Status != 1 {
		t.Fatalf("recorded session: %d %+v", code, s)
	}
}

func getBody(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// consultClient is a native consultation client (docs/ehrc.md).
type consultClient struct {
	c       *websocket.Conn
	welcome map[string]any
}

func dialConsult(t *testing.T, base, ns, key string) *consultClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ehrc/ws/"+ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	cc := &consultClient{c: c}
	b, _ := json.Marshal(map[string]string{"type": "join", "key": key})
	_ = c.Write(ctx, websocket.MessageText, b)
	_, b, err = c.Read(ctx)
	if err != nil || json.Unmarshal(b, &cc.welcome) != nil || cc.welcome["type"] != "welcome" {
		t.Fatalf("no welcome: %s %v", b, err)
	}
	return cc
}

func (cc *consultClient) send(t *testing.T, typ string, data any) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"type": typ, "data": data})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cc.c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// expect reads the next message, which must be typ, and returns its data.
func (cc *consultClient) expect(t *testing.T, typ string) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := cc.c.Read(ctx)
	if err != nil {
		t.Fatalf("waiting for %s: %v", typ, err)
	}
	var m struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(b, &m)
	if m.Type != typ {
		t.Fatalf("got %s, want %s", b, typ)
	}
	return m.Data
}
