package ehrc

import (
	"strings"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/hub"
)

// quiet proves that nothing reached p since its last read: a request whose
// answer is known must be the very next thing it receives.
func quiet(t *testing.T, p party) {
	t.Helper()
	if err := p.call("create", map[string]string{"room-id": "-"}); err == nil || err.Code != "unknown-room" {
		t.Fatalf("probe answered %v", err)
	}
}

// wantErr checks a refusal's code.
func wantErr(t *testing.T, what string, err *Error, code string) {
	t.Helper()
	if err == nil || err.Code != code {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
}

// Each subtest is a flaw of EHRC (spec §1.2, §1.5, §1.6, §1.7) that it
// would fail on EHRC's server.
func TestEHRCFlaws(t *testing.T) {
	for name, test := range map[string]func(t *testing.T, e *testEnv){
		"a missing namespaceId creates namespace undefined":               flawUndefined,
		"anyone can create and remove namespaces":                         flawNoAuth,
		"unlimited namespaces":                                            flawUnlimited,
		"availability stays true after the doctor left":                   flawStaleAvailability,
		"join-room answers 400 for a live room":                           flawJoinRoom,
		"remove-namespace leaves sockets connected, then join crashes":    flawRemoveKeepsSockets,
		"anyone can send doctor-joined and hijack the doctor":             flawHijack,
		"create joins any room, another socket's id included":             flawEavesdrop,
		"peer-id, client-id and roomID are trusted":                       flawTrustedIDs,
		"ended and left events are broadcast to the whole namespace":      flawBroadcast,
		"an event without payload crashes the process":                    flawNoPayload,
		"create before doctor-joined loses new-patient":                   flawOrderRace,
		"a room of one namespace is usable from another":                  flawCrossNamespace,
		"messages up to 1 MB are relayed":                                 flawBigMessage,
		"rooms and namespaces stay in memory after everyone has gone":     flawNotFreed,
		"a doctor token opens other namespaces (it is not checked there)": flawTokenScope,
	} {
		t.Run(name, func(t *testing.T) { test(t, newTestEnv(t, Config{Limits: Limits{Namespaces: 3}})) })
	}
}

func flawUndefined(t *testing.T, e *testEnv) {
	for _, path := range []string{"/api/create-namespace", "/api/create-namespace?namespaceId=undefined"} {
		if code, _ := e.get(path, testAPIKey); code != 400 {
			t.Fatalf("%s: %d", path, code)
		}
	}
	if nss, _, _ := e.counts(); nss != 0 {
		t.Fatalf("%d namespaces", nss)
	}
}

func flawNoAuth(t *testing.T, e *testEnv) {
	if code, _ := e.get("/api/create-namespace?namespaceId=doc", ""); code != 401 {
		t.Fatalf("create without key: %d", code)
	}
	e.createNS("doc")
	other := e.createNS("other")
	for _, auth := range []string{"", "wrong", other} { // another doctor's token does not do
		if code, _ := e.get("/api/remove-namespace?namespaceId=doc", auth); code != 401 {
			t.Fatalf("remove with %q: %d", auth, code)
		}
	}
	if nss, _, _ := e.counts(); nss != 2 {
		t.Fatalf("%d namespaces", nss)
	}
	if code, _ := e.get("/api/remove-namespace?namespaceId=other", other); code != 200 {
		t.Fatalf("the doctor removing its own namespace: %d", code)
	}
}

func flawUnlimited(t *testing.T, e *testEnv) {
	for _, id := range []string{"a", "b", "c"} {
		e.createNS(id)
	}
	if code, m := e.getJSON("/api/create-namespace?namespaceId=d", testAPIKey); code != 503 || m["msg"] != errTooManyNamespaces.msg {
		t.Fatalf("over the limit: %d %v", code, m)
	}
}

func flawStaleAvailability(t *testing.T, e *testEnv) {
	d := e.dial("doc", false, e.createNS("doc"))
	noErr(t, "doctor-joined", d.call("doctor-joined", map[string]string{}))
	if !e.available("doc") {
		t.Fatal("not available")
	}
	d.close()
	waitFor(t, "availability false", func() bool { return !e.available("doc") })
}

func flawJoinRoom(t *testing.T, e *testEnv) {
	c := startConsultation(t, e, "doc", false, false)
	if code, body := e.get("/api/join-room?roomId="+c.room, ""); code != 200 || body != textRoomOK {
		t.Fatalf("live room: %d %q", code, body)
	}
	if code, _ := e.get("/api/join-room?roomId="+newUUID(), ""); code != 400 {
		t.Fatalf("a room never handed out: %d", code)
	}
}

func flawRemoveKeepsSockets(t *testing.T, e *testEnv) {
	c := startConsultation(t, e, "doc", false, true)
	if code, _ := e.get("/api/remove-namespace?namespaceId=doc", testAPIKey); code != 200 {
		t.Fatalf("remove: %d", code)
	}
	doctor, patient := c.doctor.(*sioClient), c.patient.(*nativeClient)
	doctor.expect("removed")
	doctor.expect("disconnect")
	patient.expect("session-ended")
	patient.waitClosed()
	if patient.code != hub.CloseSessionEnded {
		t.Fatalf("native close code %d", patient.code)
	}
	doctor.emit("join", map[string]any{"room-id": c.room, "init": true}) // the crash of spec §1.6
	if code, _ := e.get("/api/create-room", ""); code != 200 {
		t.Fatalf("server not serving: %d", code)
	}
	if _, refused := e.dialSIO("doc", ""); refused != "Invalid namespace" {
		t.Fatalf("connect to a removed namespace: %q", refused)
	}
	if code, _ := e.get(NativePrefix+"doc", ""); code != 404 {
		t.Fatalf("native connect to a removed namespace: %d", code)
	}
}

func flawHijack(t *testing.T, e *testEnv) {
	e.createNS("other")
	c := startConsultation(t, e, "doc", false, false)
	intruder := e.dial("doc", false, "")
	wantErr(t, "doctor-joined without token", intruder.call("doctor-joined", map[string]string{"namespace-id": "doc", "client-id": intruder.ID()}), "forbidden")
	wantErr(t, "doctor-joined for another namespace", c.doctor.call("doctor-joined", map[string]string{"namespace-id": "other"}), "forbidden")
	wantErr(t, "doctor-joined for another socket", c.doctor.call("doctor-joined", map[string]string{"client-id": intruder.ID()}), "forbidden")
	room := e.createRoom()
	p2 := e.dial("doc", false, "")
	noErr(t, "create", p2.call("create", map[string]string{"room-id": room}))
	c.doctor.expect("new-patient") // still the doctor's
	quiet(t, intruder)
}

func flawEavesdrop(t *testing.T, e *testEnv) {
	c := startConsultation(t, e, "doc", false, false)
	intruder := e.dial("doc", false, "")
	for _, id := range []string{c.patient.ID(), c.doctor.ID(), c.room, "doc"} {
		err := intruder.call("create", map[string]string{"room-id": id})
		if err == nil {
			t.Fatalf("create %q accepted", id)
		}
	}
	noErr(t, "offer", c.doctor.call("offer", map[string]string{"peer-id": c.patient.ID(), "sdp": "secret"}))
	c.patient.expect("offer")
	quiet(t, intruder)
}

func flawTrustedIDs(t *testing.T, e *testEnv) {
	c := startConsultation(t, e, "doc", false, true)
	room2 := e.createRoom()
	p2 := e.dial("doc", false, "")
	noErr(t, "create", p2.call("create", map[string]string{"room-id": room2}))
	c.doctor.expect("new-patient")
	for _, tt := range []struct {
		event string
		data  map[string]string
		code  string
	}{
		{"offer", map[string]string{"peer-id": c.patient.ID()}, "unknown-peer"},
		{"ice-candidate", map[string]string{"peer-id": c.doctor.ID()}, "unknown-peer"}, // not in p2's room yet
		{"send-metadata", map[string]string{"peer-id": p2.ID()}, "unknown-peer"},
		{"ack-doctor-entered", map[string]string{"client-id": c.patient.ID()}, "unknown-peer"},
		{"doctor-rejected", map[string]string{"roomID": c.room}, "forbidden"},
		{"join", map[string]string{"room-id": c.room}, "forbidden"},
		{"doctor-ended", map[string]string{"patientID": c.patient.ID()}, "forbidden"},
		{"offer", map[string]string{}, "missing-field"},
	} {
		wantErr(t, tt.event, p2.call(tt.event, tt.data), tt.code)
	}
	wantErr(t, "doctor offers outside its rooms", c.doctor.call("offer", map[string]string{"peer-id": p2.ID()}), "unknown-peer")
	quiet(t, c.patient)
}

func flawBroadcast(t *testing.T, e *testEnv) {
	c := startConsultation(t, e, "doc", false, false)
	room2 := e.createRoom()
	p2 := e.dial("doc", false, "")
	noErr(t, "create", p2.call("create", map[string]string{"room-id": room2}))
	c.doctor.expect("new-patient")
	noErr(t, "patient-left", p2.call("patient-left", map[string]string{"patientID": p2.ID()}))
	c.doctor.expect("patient-remove")
	noErr(t, "doctor-ended", c.doctor.call("doctor-ended", map[string]string{"patientID": c.patient.ID()}))
	c.patient.expect("doctor-ended")
	quiet(t, p2)
	p3 := e.dial("doc", false, "")
	c.patient.close()
	quiet(t, p3)
}

func flawNoPayload(t *testing.T, e *testEnv) {
	c := startConsultation(t, e, "doc", false, true)
	for _, bad := range []any{nil, "text", 42, []string{"peer-id"}, true} {
		wantErr(t, "offer", c.doctor.call("offer", bad), "bad-message")
	}
	native := c.patient.(*nativeClient)
	for _, bad := range []any{"text", 42, []string{"peer-id"}} {
		wantErr(t, "native offer", native.call("offer", bad), "bad-message")
	}
	wantErr(t, "peer-id of the wrong type", c.doctor.call("offer", map[string]int{"peer-id": 1}), "bad-message")
	noErr(t, "offer", c.doctor.call("offer", map[string]string{"peer-id": c.patient.ID()}))
	c.patient.expect("offer")
}

func flawOrderRace(t *testing.T, e *testEnv) {
	tok := e.createNS("doc")
	room := e.createRoom()
	p := e.dial("doc", true, room)
	noErr(t, "create", p.call("create", map[string]string{"room-id": room, "name": "early"}))
	d := e.dial("doc", false, tok)
	d.emit("doctor-joined", map[string]string{}) // new-patient comes before the ack
	if m := d.expect("new-patient"); m["name"] != "early" {
		t.Fatalf("new-patient %v", m)
	}
}

func flawCrossNamespace(t *testing.T, e *testEnv) {
	c := startConsultation(t, e, "doc", false, false)
	e.createNS("other")
	p := e.dial("other", false, "")
	wantErr(t, "create a room of doc in other", p.call("create", map[string]string{"room-id": c.room}), "unknown-room")
	if _, code := e.dialNative("other", c.room); code != "unauthorized" {
		t.Fatalf("native key of another namespace's room: %s", code)
	}
}

func flawBigMessage(t *testing.T, e *testEnv) {
	c := startConsultation(t, e, "doc", false, false)
	big := map[string]string{"peer-id": c.patient.ID(), "sdp": strings.Repeat("a", maxPayload)}
	wantErr(t, "65 KiB offer", c.doctor.call("offer", big), "bad-message")
	quiet(t, c.patient)
}

func flawNotFreed(t *testing.T, e *testEnv) {
	c := startConsultation(t, e, "doc", true, false)
	noErr(t, "doctor-rejected", c.doctor.call("doctor-rejected", map[string]string{"roomID": c.room}))
	c.patient.expect("rejected")
	c.patient.close()
	c.doctor.close()
	waitFor(t, "office and room freed", func() bool {
		nss, offices, rooms := e.counts()
		return nss == 1 && offices == 0 && rooms == 0
	})
}

func flawTokenScope(t *testing.T, e *testEnv) {
	tok := e.createNS("doc")
	e.createNS("other")
	if _, refused := e.dialSIO("other", tok); refused != "invalid doctor token" {
		t.Fatalf("token of doc in other: %q", refused)
	}
	if _, code := e.dialNative("other", tok); code != "unauthorized" {
		t.Fatalf("native token of doc in other: %s", code)
	}
}
