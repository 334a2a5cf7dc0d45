package ehrc

import (
	"testing"
)

// dial connects to namespace ns as doctor (with the doctor token) or
// patient: a native patient's key is its room.
func (e *testEnv) dial(ns string, native bool, key string) party {
	e.t.Helper()
	if native {
		c, code := e.dialNative(ns, key)
		if c == nil {
			e.t.Fatalf("native join refused: %s", code)
		}
		return c
	}
	c, refused := e.dialSIO(ns, key)
	if c == nil {
		e.t.Fatalf("socket.io connect refused: %s", refused)
	}
	return c
}

// noErr fails the test on a refusal.
func noErr(t *testing.T, what string, err *Error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s refused: %v", what, err)
	}
}

// consultation is a doctor and a patient after EHRC's admission sequence
// (spec §1.5 steps 1-3).
type consultation struct {
	e               *testEnv
	ns, room, token string
	doctor, patient party
}

func startConsultation(t *testing.T, e *testEnv, ns string, doctorNative, patientNative bool) *consultation {
	t.Helper()
	c := &consultation{e: e, ns: ns}
	c.token = e.createNS(ns)
	c.doctor = e.dial(ns, doctorNative, c.token)
	if e.available(ns) {
		t.Fatal("available before doctor-joined")
	}
	noErr(t, "doctor-joined", c.doctor.call("doctor-joined", map[string]string{"namespace-id": ns, "client-id": c.doctor.ID()}))
	if !e.available(ns) {
		t.Fatal("not available after doctor-joined")
	}
	c.room = e.createRoom()
	key := ""
	if patientNative {
		key = c.room
	}
	c.patient = e.dial(ns, patientNative, key)
	noErr(t, "create", c.patient.call("create", map[string]string{"room-id": c.room, "name": "Alice"}))
	if m := c.doctor.expect("new-patient"); m["room-id"] != c.room || m["name"] != "Alice" {
		t.Fatalf("new-patient %v", m)
	}
	checkFrom(t, c.doctor, c.patient)
	noErr(t, "join init", c.doctor.call("join", map[string]any{"room-id": c.room, "init": true, "client-id": c.doctor.ID()}))
	if m := c.patient.expect("doctor-entered"); m["client-id"] != c.doctor.ID() || m["init"] != true {
		t.Fatalf("doctor-entered %v", m)
	}
	noErr(t, "ack-doctor-entered", c.patient.call("ack-doctor-entered", map[string]string{"client-id": c.doctor.ID(), "patient-id": c.patient.ID()}))
	if m := c.doctor.expect("ack-doctor-entered"); m["patient-id"] != c.patient.ID() {
		t.Fatalf("ack-doctor-entered %v", m)
	}
	noErr(t, "join", c.doctor.call("join", map[string]any{"room-id": c.room, "init": false}))
	c.patient.expect("room-joined")
	return c
}

// checkFrom checks the sender id a native receiver sees.
func checkFrom(t *testing.T, to, from party) {
	t.Helper()
	if _, native := to.(*nativeClient); native && to.lastFrom() != from.ID() {
		t.Fatalf("from %q, want %q", to.lastFrom(), from.ID())
	}
}

// EHRC's whole 1:1 call (spec §1.5) on every pairing of transports: the
// payloads arrive unchanged, whoever speaks which protocol.
func TestConsultation(t *testing.T) {
	for name, tt := range map[string]struct{ doctorNative, patientNative bool }{
		"socket.io doctor, socket.io patient": {false, false},
		"socket.io doctor, native patient":    {false, true},
		"native doctor, socket.io patient":    {true, false},
		"native doctor, native patient":       {true, true},
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, Config{})
			c := startConsultation(t, e, "doc-1", tt.doctorNative, tt.patientNative)
			d, p := c.doctor, c.patient
			for _, step := range []struct {
				event    string
				from, to party
			}{
				{"offer", d, p}, {"answer", p, d}, {"ice-candidate", d, p}, {"ice-candidate", p, d},
				{"send-metadata", p, d}, {"send-metadata", d, p},
			} {
				sent := map[string]any{"peer-id": step.to.ID(), "sdp": "v=0 " + step.event, "n": 1.5, "x": []any{"<&>"}}
				noErr(t, step.event, step.from.call(step.event, sent))
				got := step.to.expect(step.event)
				if got["sdp"] != sent["sdp"] || got["n"] != 1.5 || got["x"].([]any)[0] != "<&>" || got["peer-id"] != step.to.ID() {
					t.Fatalf("%s: sent %v, got %v", step.event, sent, got)
				}
				checkFrom(t, step.to, step.from)
			}
			if code, body := e.get("/join-room?roomId="+c.room, ""); code != 200 || body != textRoomOK {
				t.Fatalf("join-room of a live room: %d %q", code, body)
			}
			noErr(t, "patient-ended", p.call("patient-ended", map[string]string{"patientID": p.ID()}))
			if m := d.expect("patient-ended"); m["patientID"] != p.ID() {
				t.Fatalf("patient-ended %v", m)
			}
			if code, _ := e.get("/join-room?roomId="+c.room, ""); code != 400 {
				t.Fatalf("join-room of an ended room: %d", code)
			}
			p.close()
			d.close()
			waitFor(t, "namespace runtime freed", func() bool {
				nss, offices, rooms := e.counts()
				return nss == 1 && offices == 0 && rooms == 0
			})
			if e.available(c.ns) {
				t.Fatal("available after the doctor left")
			}
		})
	}
}

// Every way a consultation ends tells the other side, and only it.
func TestConsultationEnds(t *testing.T) {
	for name, tt := range map[string]struct {
		end  func(t *testing.T, c *consultation)
		room bool // the room id is still known afterwards (parked or live)
	}{
		"doctor-ended": {end: func(t *testing.T, c *consultation) {
			noErr(t, "doctor-ended", c.doctor.call("doctor-ended", map[string]string{"patientID": c.patient.ID()}))
			if m := c.patient.expect("doctor-ended"); m["patientID"] != c.patient.ID() {
				t.Fatalf("doctor-ended %v", m)
			}
		}},
		"doctor-rejected": {end: func(t *testing.T, c *consultation) {
			noErr(t, "doctor-rejected", c.doctor.call("doctor-rejected", map[string]string{"roomID": c.room, "why": "busy"}))
			if m := c.patient.expect("rejected"); m["why"] != "busy" {
				t.Fatalf("rejected %v", m)
			}
		}},
		"patient-left": {end: func(t *testing.T, c *consultation) {
			noErr(t, "patient-left", c.patient.call("patient-left", map[string]string{"patientID": c.patient.ID()}))
			if m := c.doctor.expect("patient-remove"); m["patientID"] != c.patient.ID() {
				t.Fatalf("patient-remove %v", m)
			}
		}},
		"patient disconnects": {room: true, end: func(t *testing.T, c *consultation) {
			c.patient.close()
			if m := c.doctor.expect("client-disconnected"); m["client-id"] != c.patient.ID() || m["room-id"] != c.room {
				t.Fatalf("client-disconnected %v", m)
			}
		}},
		"doctor disconnects": {room: true, end: func(t *testing.T, c *consultation) {
			c.doctor.close()
			if m := c.patient.expect("client-disconnected"); m["client-id"] != c.doctor.ID() {
				t.Fatalf("client-disconnected %v", m)
			}
			if c.e.available(c.ns) {
				t.Fatal("still available")
			}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, Config{})
			c := startConsultation(t, e, "doc", false, true)
			tt.end(t, c)
			if code, _ := e.get("/join-room?roomId="+c.room, ""); (code == 200) != tt.room {
				t.Fatalf("join-room after the end: %d", code)
			}
		})
	}
}
