package ehrc

import (
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/hub"
)

// A doctor's newer connection replaces the older, on either transport; the
// patient waits for it and is announced again.
func TestDoctorReplaced(t *testing.T) {
	for name, tt := range map[string]struct{ oldNative, newNative bool }{
		"socket.io by native":    {false, true},
		"native by socket.io":    {true, false},
		"socket.io by socket.io": {false, false},
		"native by native":       {true, true},
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, Config{})
			c := startConsultation(t, e, "doc", tt.oldNative, false)
			d2 := e.dial("doc", tt.newNative, c.token)
			d2.emit("doctor-joined", map[string]string{})
			c.doctor.expect("replaced")
			if old, ok := c.doctor.(*nativeClient); ok {
				old.waitClosed()
				if old.code != hub.CloseReplaced {
					t.Fatalf("old native doctor closed with %d", old.code)
				}
			} else {
				c.doctor.expect("disconnect")
			}
			if m := c.patient.expect("client-disconnected"); m["client-id"] != c.doctor.ID() {
				t.Fatalf("client-disconnected %v", m)
			}
			if m := d2.expect("new-patient"); m["room-id"] != c.room {
				t.Fatalf("new-patient %v", m)
			}
			noErr(t, "join", d2.call("join", map[string]any{"room-id": c.room, "init": 1}))
			c.patient.expect("doctor-entered")
		})
	}
}

// A patient whose connection drops comes back to its room: a native page
// reload replaces the old connection, a Socket.IO patient reconnects.
func TestPatientComesBack(t *testing.T) {
	for name, native := range map[string]bool{"native": true, "socket.io": false} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, Config{})
			c := startConsultation(t, e, "doc", false, native)
			key := ""
			if native {
				key = c.room
			}
			if !native {
				c.patient.close()
			}
			p2 := e.dial("doc", native, key)
			if m := c.doctor.expect("client-disconnected"); m["client-id"] != c.patient.ID() {
				t.Fatalf("client-disconnected %v", m)
			}
			noErr(t, "create again", p2.call("create", map[string]string{"room-id": c.room}))
			c.doctor.expect("new-patient")
			noErr(t, "offer", c.doctor.call("offer", map[string]string{"peer-id": p2.ID()}))
			p2.expect("offer")
		})
	}
	t.Run("waiting room parked", func(t *testing.T) {
		e := newTestEnv(t, Config{})
		e.createNS("doc")
		room := e.createRoom()
		p := e.dial("doc", false, "")
		noErr(t, "create", p.call("create", map[string]string{"room-id": room}))
		p.close()
		waitFor(t, "office freed", func() bool { _, offices, _ := e.counts(); return offices == 0 })
		if code, _ := e.get("/join-room?roomId="+room, ""); code != 200 {
			t.Fatalf("parked room: join-room %d", code)
		}
		p2 := e.dial("doc", true, room)
		noErr(t, "create again", p2.call("create", map[string]any{}))
	})
}
