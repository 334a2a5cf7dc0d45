package ehrc

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"testing"
)

// nopLink is a hand-written fake link that only counts.
type nopLink struct{ sent, ended *int }

func (l nopLink) send(string, string, json.RawMessage) { *l.sent++ }
func (l nopLink) end(bool)                             { *l.ended++ }

// FuzzHandle feeds any event and payload to an office with a doctor and a
// patient in a room: nothing may panic, and every refusal has a public face.
func FuzzHandle(f *testing.F) {
	for _, seed := range []struct {
		event, payload string
		doctor         bool
	}{
		{"offer", `{"peer-id":"p"}`, true}, {"create", `{"room-id":"00000000-0000-4000-8000-000000000000"}`, false},
		{"join", `{"room-id":"x","init":0}`, true}, {"doctor-joined", `{"namespace-id":1}`, true},
		{"patient-left", `{"patientID":null}`, false}, {"doctor-ended", `{"patientID":"p"}`, true},
		{"promote-room", `{}`, true}, {"ack-doctor-entered", `{"client-id":"d"}`, false}, {"offer", ``, false},
		{"doctor-rejected", `{"roomID":"00000000-0000-4000-8000-000000000000"}`, true}, {"join", `[`, true},
	} {
		f.Add(seed.event, []byte(seed.payload), seed.doctor)
	}
	f.Fuzz(func(t *testing.T, event string, payload []byte, asDoctor bool) {
		svc := New(Config{})
		defer svc.Close(context.Background())
		room := newUUID()
		_, _, _ = svc.reg.addNamespace("doc", sha256.Sum256([]byte("token")), newUUID())
		_ = svc.reg.reserve(room)
		o, err := svc.acquire("doc")
		if err != nil {
			t.Fatal(err)
		}
		defer svc.release(o)
		var sent, ended int
		d := &member{id: "d", link: nopLink{&sent, &ended}, doctor: true}
		p := &member{id: "p", link: nopLink{&sent, &ended}}
		for _, m := range []*member{d, p} {
			if err := o.join(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := o.handle("d", "doctor-joined", json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := o.handle("p", "create", json.RawMessage(`{"room-id":"`+room+`"}`)); err != nil {
			t.Fatal(err)
		}
		from := "p"
		if asDoctor {
			from = "d"
		}
		if err := o.handle(from, event, payload); err != nil {
			if e := publicError(err); e.Code == "internal" || e.Message == "" {
				t.Fatalf("%s %q: %v", event, payload, err)
			}
		}
		o.leave("p")
		o.leave("d")
	})
}
