package ehrc

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
)

const appOrigin = "http://app.example.test"

// origin is a handshake header set for an app page served at o.
func origin(o string) http.Header { return http.Header{"Origin": {o}} }

func compatConfig(trusted string) Config {
	return Config{
		AllowedOrigins: []string{appOrigin},
		Compat:         Compat{Enabled: true, TrustedBackends: []netip.Prefix{netip.MustParsePrefix(trusted)}},
	}
}

// An unchanged EHRC backend and app in compatibility mode (issue 13 item
// 5): the backend creates the namespace without a key from a trusted
// address and gets EHRC's exact body; the doctor page, from an allowed app
// origin, claims the role without a token; the consultation runs.
func TestCompatMode(t *testing.T) {
	e := newTestEnv(t, compatConfig("127.0.0.0/8"))
	code, body := e.get("/api/create-namespace?namespaceId=doc", "")
	if code != 200 || body != `{"status":200,"msg":"Namespace added successfully."}` {
		t.Fatalf("keyless create from a trusted backend: %d %q", code, body)
	}
	doctor, msg := e.dialSIOFrom("doc", "", origin(appOrigin))
	if doctor == nil {
		t.Fatal(msg)
	}
	noErr(t, "tokenless doctor-joined", doctor.call("doctor-joined", map[string]string{"namespace-id": "doc", "client-id": doctor.ID()}))
	if !e.available("doc") {
		t.Fatal("tokenless doctor not available")
	}
	room := e.createRoom()
	patient, _ := e.dialSIOFrom("doc", "", origin(appOrigin))
	noErr(t, "create", patient.call("create", map[string]string{"room-id": room}))
	doctor.expect("new-patient")
	noErr(t, "join init", doctor.call("join", map[string]any{"room-id": room, "init": true, "client-id": doctor.ID()}))
	patient.expect("doctor-entered")
	noErr(t, "ack", patient.call("ack-doctor-entered", map[string]string{"client-id": doctor.ID()}))
	doctor.expect("ack-doctor-entered")
	noErr(t, "join", doctor.call("join", map[string]any{"room-id": room}))
	patient.expect("room-joined")
	noErr(t, "offer", doctor.call("offer", map[string]string{"peer-id": patient.ID(), "sdp": "x"}))
	patient.expect("offer")
	// The patient, though from the same origin, cannot take the role
	// while in a room; a page from elsewhere never can.
	if err := patient.call("doctor-joined", map[string]string{}); err == nil || *err != *errInRoom {
		t.Fatalf("patient in a room claims the doctor role: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, res, err := websocket.Dial(ctx, e.wsURL("/socket.io/?EIO=4&transport=websocket"), &websocket.DialOptions{HTTPHeader: origin("http://evil.example.test")}); err == nil || res.StatusCode != 403 {
		t.Fatalf("a page from an origin not allowed: %v", err)
	}
	plain, _ := e.dialSIO("doc", "") // no Origin: not a browser page of the app
	if err := plain.call("doctor-joined", map[string]string{}); err == nil || *err != *errNoToken {
		t.Fatalf("tokenless doctor without an app origin: %v", err)
	}
	// A doctor with the token (created with the key) is never replaced by a
	// tokenless one.
	token := e.createNS("doc2")
	real := e.dial("doc2", false, token)
	noErr(t, "doctor-joined", real.call("doctor-joined", map[string]string{}))
	intruder, _ := e.dialSIOFrom("doc2", "", origin(appOrigin))
	if err := intruder.call("doctor-joined", map[string]string{}); err == nil || *err != *errDoctorHere {
		t.Fatalf("tokenless take-over of a token doctor: %v", err)
	}
	// The keyless backend removes its namespace.
	if code, body := e.get("/api/remove-namespace?namespaceId=doc", ""); code != 200 || body != `{"status":200,"msg":"Namespace removed successfully"}` {
		t.Fatalf("keyless remove: %d %q", code, body)
	}
}

// Compatibility mode is off by default, and only trusted addresses may
// skip the key.
func TestCompatModeRefusals(t *testing.T) {
	t.Run("default mode", func(t *testing.T) {
		e := newTestEnv(t, Config{AllowedOrigins: []string{appOrigin}})
		if code, _ := e.get("/api/create-namespace?namespaceId=doc", ""); code != 401 {
			t.Fatalf("keyless create: %d", code)
		}
		e.createNS("doc")
		doctor, _ := e.dialSIOFrom("doc", "", origin(appOrigin))
		if err := doctor.call("doctor-joined", map[string]string{}); err == nil || *err != *errNoToken {
			t.Fatalf("tokenless doctor in default mode: %v", err)
		}
	})
	t.Run("untrusted backend", func(t *testing.T) {
		e := newTestEnv(t, compatConfig("10.0.0.0/8"))
		if code, _ := e.get("/api/create-namespace?namespaceId=doc", ""); code != 401 {
			t.Fatalf("keyless create from outside the trusted addresses: %d", code)
		}
		e.createNS("doc")
		if code, _ := e.get("/api/remove-namespace?namespaceId=doc", ""); code != 401 {
			t.Fatalf("keyless remove from outside the trusted addresses: %d", code)
		}
	})
}

// The REST bodies are EHRC's bytes (issue 13 item 8): key order, no
// trailing newline, Express's Content-Type.
func TestRESTBodiesExact(t *testing.T) {
	e := newTestEnv(t, compatConfig("127.0.0.0/8"))
	for _, tt := range []struct{ path, body string }{
		{"/api/create-namespace?namespaceId=doc", `{"status":200,"msg":"Namespace added successfully."}`},
		{"/api/create-namespace?namespaceId=doc", `{"status":200,"msg":"Namespeace already exists."}`},
		{"/api/check-availability?namespaceId=doc", `{"status":200,"msg":"Doctor is not available","availability":false}`},
		{"/api/remove-namespace?namespaceId=doc", `{"status":200,"msg":"Namespace removed successfully"}`},
	} {
		res, err := http.Get(e.srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != tt.body || res.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s: %q (%s), want %q", tt.path, b, res.Header.Get("Content-Type"), tt.body)
		}
	}
	_, body := e.get("/api/create-room", "")
	if len(body) != len(`{"room-id":"`)+36+2 || body[:12] != `{"room-id":"` || body[len(body)-2:] != `"}` {
		t.Errorf("create-room: %q", body)
	}
	e.get("/api/create-namespace?namespaceId=doc", "")
	doctor, _ := e.dialSIOFrom("doc", "", origin(appOrigin))
	noErr(t, "doctor-joined", doctor.call("doctor-joined", map[string]string{}))
	if _, body = e.get("/api/check-availability?namespaceId=doc", ""); body != `{"status":200,"msg":"Doctor is available","availability":true}` {
		t.Errorf("check-availability: %q", body)
	}
}

// The app origins get CORS on the REST routes and may open WebSockets;
// other browser origins are refused (issue 13 item 6).
func TestAppOrigins(t *testing.T) {
	e := newTestEnv(t, Config{AllowedOrigins: []string{appOrigin}})
	e.createNS("doc")
	for _, tt := range []struct {
		name, method, origin string
		status               int
		acao                 string
	}{
		{"no origin", "GET", "", 200, ""},
		{"same origin", "GET", e.srv.URL, 200, ""},
		{"app", "GET", appOrigin, 200, appOrigin},
		{"other", "GET", "http://evil.example.test", 403, ""},
		{"preflight, app", "OPTIONS", appOrigin, 204, appOrigin},
		{"preflight, other", "OPTIONS", "http://evil.example.test", 403, ""},
	} {
		req, _ := http.NewRequest(tt.method, e.srv.URL+"/api/check-availability?namespaceId=doc", nil)
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.status || res.Header.Get("Access-Control-Allow-Origin") != tt.acao {
			t.Errorf("%s: %d ACAO %q, want %d %q", tt.name, res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), tt.status, tt.acao)
		}
	}
	for o, ok := range map[string]bool{appOrigin: true, "http://evil.example.test": false} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws, res, err := websocket.Dial(ctx, e.wsURL(NativePrefix+"doc"), &websocket.DialOptions{HTTPHeader: origin(o)})
		cancel()
		if ok != (err == nil) {
			t.Fatalf("native WebSocket from %s: %v", o, err)
		}
		if err == nil {
			_ = ws.CloseNow()
		} else if res == nil || res.StatusCode != 403 {
			t.Fatalf("native WebSocket from %s: %v", o, res)
		}
	}
}

// A restart in the middle of a consultation (issue 13 item 7): the
// namespace, the doctor token and the room come back from the store; the
// apps reconnect with what they had and go on.
func TestRestartKeepsConsultation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rehabrtc.db")
	open := func() *boltstore.Store {
		st, err := boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	e := newTestEnv(t, Config{Store: st.Tree("ehrc")})
	// A native patient: Close ends its connection itself, and the room must stay.
	c := startConsultation(t, e, "doc", false, true)
	ended := e.createRoom() // a room entered and ended is not kept
	p2, _ := e.dialSIO("doc", "")
	noErr(t, "create", p2.call("create", map[string]string{"room-id": ended}))
	c.doctor.expect("new-patient")
	noErr(t, "patient-ended", p2.call("patient-ended", map[string]string{}))
	c.doctor.expect("patient-ended")

	// The process stops: connections drop, the file is closed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e.srv.Close()
	st.Close()

	st = open()
	defer st.Close()
	e2 := newTestEnv(t, Config{Store: st.Tree("ehrc")})
	nss, rooms, err := e2.svc.Restore(ctx)
	if err != nil || nss != 1 || rooms != 1 {
		t.Fatalf("Restore: %d namespaces, %d rooms, %v; want 1 and 1", nss, rooms, err)
	}
	if code, _ := e2.get("/api/join-room?roomId="+ended, ""); code != 400 {
		t.Fatalf("ended room came back: %d", code)
	}
	doctor := e2.dial("doc", false, c.token) // the same token still makes the doctor
	noErr(t, "doctor-joined", doctor.call("doctor-joined", map[string]string{"client-id": doctor.ID()}))
	patient := e2.dial("doc", true, c.room) // a native patient's key is its room
	noErr(t, "create again", patient.call("create", map[string]string{"room-id": c.room}))
	if m := doctor.expect("new-patient"); m["room-id"] != c.room {
		t.Fatalf("new-patient %v", m)
	}
	noErr(t, "join", doctor.call("join", map[string]any{"room-id": c.room}))
	patient.expect("room-joined")
	noErr(t, "offer", doctor.call("offer", map[string]string{"peer-id": patient.ID(), "sdp": "x"}))
	patient.expect("offer")
	// The token was kept as a hash only: a wrong one is still refused.
	if _, msg := e2.dialSIO("doc", c.token+"x"); msg != "invalid doctor token" {
		t.Fatalf("wrong token after restart: %q", msg)
	}
	// Removing the namespace removes it from the store too.
	if code, _ := e2.get("/api/remove-namespace?namespaceId=doc", testAPIKey); code != 200 {
		t.Fatal("remove")
	}
	n := 0
	_ = st.Tree("ehrc").ForEach(ctx, func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d records left after remove-namespace", n)
	}
}
