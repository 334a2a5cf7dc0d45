package ehrc

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// namingICE stands in for relay.ICE (tested with the TURN server in
// internal/relay and cmd/rehabrtc): its one credential's username names
// the office, kind and id it was minted for, as the relay's do.
type namingICE struct{ exp time.Time }

func (n namingICE) ICEServers(office int64, kind, id string) (json.RawMessage, time.Time) {
	return json.RawMessage(fmt.Sprintf(`[{"urls":["turn:h:3478"],"username":"%d.%s.%s","credential":"c"}]`, office, kind, id)), n.exp
}

func (namingICE) Policy() string { return "" }

// named is whom a credential was minted for.
type named struct {
	office   int64
	kind, id string
}

func credentialOf(t *testing.T, servers any) named {
	t.Helper()
	b, _ := json.Marshal(servers)
	var list []struct{ Username string }
	if err := json.Unmarshal(b, &list); err != nil || len(list) != 1 {
		t.Fatalf("ICE servers %s", b)
	}
	parts := strings.SplitN(list[0].Username, ".", 3)
	n, err := strconv.ParseInt(parts[0], 10, 64)
	if len(parts) != 3 || err != nil || n <= 0 {
		t.Fatalf("username %q", list[0].Username)
	}
	return named{n, parts[1], parts[2]}
}

// TestConsultationICE: native doctors and patients get credentials in
// welcome, Socket.IO connections in an ice-servers event (and on asking);
// each names its member, which Admitted accepts while it is connected and
// refuses once it left or its namespace was removed.
func TestConsultationICE(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	e := newTestEnv(t, Config{ICE: namingICE{exp}})
	tok := e.createNS("dr-ice")
	room := e.createRoom()

	doc, _ := e.dialNative("dr-ice", tok)
	pat, _ := e.dialNative("dr-ice", room)
	sio, _ := e.dialSIO("dr-ice", "")
	d, p := credentialOf(t, doc.welcome["iceServers"]), credentialOf(t, pat.welcome["iceServers"])
	got := sio.expect(eventICEServers)
	s := credentialOf(t, got["iceServers"])
	if got["expires"] != float64(exp.Unix()) {
		t.Errorf("Socket.IO ice-servers expires %v, want %d", got["expires"], exp.Unix())
	}
	if d.kind != ICEKindDoctor || p != (named{d.office, ICEKindPatient, room}) || s != (named{d.office, ICEKindSocket, sio.ID()}) {
		t.Fatalf("credentials name %+v %+v %+v", d, p, s)
	}
	for _, m := range []named{d, p, s} {
		waitFor(t, fmt.Sprintf("%+v admitted", m), func() bool { return e.svc.Admitted(m.office, m.kind, m.id) })
	}
	for _, m := range []named{
		{d.office + 1, d.kind, d.id},           // another office
		{d.office, ICEKindSocket, doc.ID()},    // a native peer is no socket
		{d.office, ICEKindPatient, "not-room"}, // nobody's room
		{d.office, ICEKindDoctor, room},        // not the doctor
		{d.office, "admin", d.id},
		{d.office, ICEKindSocket, ""},
	} {
		if e.svc.Admitted(m.office, m.kind, m.id) {
			t.Errorf("Admitted(%+v)", m)
		}
	}
	sio.send(eventICEServers, nil, "7") // renewal: the app asks again
	if f := sio.next(); f.event != "ack:7" || credentialOf(t, mapOf(t, f.data)["iceServers"]) != s {
		t.Errorf("ice-servers ack %q %s", f.event, f.data)
	}

	pat.close()
	sio.close()
	for _, m := range []named{p, s} {
		waitFor(t, fmt.Sprintf("%+v refused after leaving", m), func() bool { return !e.svc.Admitted(m.office, m.kind, m.id) })
	}
	if code, _ := e.get("/api/remove-namespace?namespaceId=dr-ice", testAPIKey); code != 200 {
		t.Fatalf("remove-namespace: %d", code)
	}
	waitFor(t, "doctor refused after removal", func() bool { return !e.svc.Admitted(d.office, d.kind, d.id) })
}

// TestConsultationStaticICE: without a minter, welcome carries the static
// list and Socket.IO connections get no ice-servers event.
func TestConsultationStaticICE(t *testing.T) {
	e := newTestEnv(t, Config{ICEServers: json.RawMessage(`[{"urls":["stun:s"]}]`)})
	tok := e.createNS("dr-static")
	doc, _ := e.dialNative("dr-static", tok)
	if b, _ := json.Marshal(doc.welcome["iceServers"]); string(b) != `[{"urls":["stun:s"]}]` {
		t.Errorf("welcome iceServers %s", b)
	}
	sio, _ := e.dialSIO("dr-static", "")
	if err := sio.call("doctor-joined", nil); err == nil || err.Code == "" {
		t.Errorf("a patient socket claimed the doctor role: %v", err) // and no ice-servers event came first
	}
}

func mapOf(t *testing.T, b json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}
