package ehrc

import (
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// handler runs one event of m under the office lock.
type handler func(o *office, m *member, p payload) error

// handlerFor returns the handler of a client event, nil for an unknown one.
// The names are EHRC's (spec §1.4) plus promote-room.
func handlerFor(event string) handler {
	switch event {
	case "doctor-joined":
		return (*office).doctorJoined
	case "create":
		return (*office).create
	case "join":
		return (*office).joinRoom
	case "ack-doctor-entered":
		return (*office).ackDoctorEntered
	case "offer", "answer", "ice-candidate", "send-metadata":
		return relay(event)
	case "doctor-rejected":
		return (*office).doctorRejected
	case "patient-left":
		return patientGone("patient-remove")
	case "patient-ended":
		return patientGone("patient-ended")
	case "doctor-ended":
		return (*office).doctorEnded
	case "promote-room":
		return (*office).promoteRoom
	}
	return nil
}

// clientEvents lists the events handlerFor knows, for the Socket.IO adapter.
func clientEvents() []string {
	return []string{"doctor-joined", "create", "join", "ack-doctor-entered", "offer", "answer",
		"ice-candidate", "send-metadata", "doctor-rejected", "patient-left", "patient-ended",
		"doctor-ended", "promote-room"}
}

// doctorJoined claims the doctor role. Only a connection holding the
// doctor token may, or in compatibility mode one from an allowed app
// origin, which never replaces a doctor holding the token; a newer doctor
// connection replaces the older one. The patients that created a room
// meanwhile are announced now (new-patient).
func (o *office) doctorJoined(m *member, p payload) error {
	switch {
	case !m.doctor && !m.compat:
		return errNoToken
	case m.room != nil:
		return errInRoom
	case !m.doctor && o.doctor != nil && o.doctor != m && o.doctor.doctor:
		return errDoctorHere
	}
	if err := p.sameAs("namespace-id", o.ns.id, errOtherNS); err != nil {
		return err
	}
	if err := p.sameAs("client-id", m.id, errNotYou); err != nil {
		return err
	}
	if o.doctor == m {
		return nil
	}
	if old := o.doctor; old != nil {
		o.dropDoctorLocked(old)
		old.link.end(true)
	}
	o.doctor = m
	for _, r := range o.waitingLocked() {
		m.link.send("new-patient", r.patient.id, r.hello)
	}
	return nil
}

// create makes the patient enter a room handed out by create-room (or
// come back to its own room): the doctor gets new-patient now, or when
// it arrives.
func (o *office) create(m *member, p payload) error {
	id, err := o.roomID(m, p, "room-id")
	switch {
	case err != nil:
		return err
	case m.doctor || o.doctor == m:
		return errDoctorCreates
	case m.room != nil && m.room.id == id:
		return nil // a retry
	case m.room != nil:
		return errInRoom
	}
	r := o.rooms[id]
	switch {
	case r != nil && r.patient != nil:
		return errRoomTaken
	case r == nil && len(o.rooms) >= o.svc.cfg.Limits.Rooms:
		return errTooManyRooms
	case r == nil:
		ok, first := o.svc.reg.bind(id, o.ns)
		if !ok {
			return errUnknownRoom
		}
		if first {
			ns := o.ns
			o.writeLocked(func() { o.svc.saveRoom(id, ns) })
		}
		o.seq++
		r = &room{id: id, seq: o.seq}
		o.rooms[id] = r
	}
	r.patient, r.hello, m.room = m, p.raw, r
	if o.doctor != nil {
		o.doctor.link.send("new-patient", m.id, p.raw)
	}
	return nil
}

// roomID reads a room id field: a UUID as create-room hands out. A native
// patient's id defaults to, and must be, the room of its key.
func (o *office) roomID(m *member, p payload, field string) (string, error) {
	s, err := p.str(field)
	switch {
	case err != nil:
		return "", err
	case s == "" && m.ticket != "":
		return m.ticket, nil
	case s == "":
		return "", missing(field)
	}
	id, ok := session.NormalizeUUID(s)
	switch {
	case !ok:
		return "", errUnknownRoom
	case m.ticket != "" && id != m.ticket:
		return "", errOtherTicket
	}
	return id, nil
}

// joinRoom is the doctor's: with init it asks the patient in (the patient
// gets doctor-entered); without, the doctor enters (room-joined).
func (o *office) joinRoom(m *member, p payload) error {
	r, err := o.doctorsRoom(m, p, "room-id")
	if err != nil {
		return err
	}
	if p.truthy("init") {
		o.relayTo(r.patient, "doctor-entered", m, p)
		return nil
	}
	r.doctor = m
	o.relayTo(r.patient, "room-joined", m, p)
	return nil
}

// doctorsRoom checks that m is the doctor and returns the room field names.
func (o *office) doctorsRoom(m *member, p payload, field string) (*room, error) {
	if o.doctor != m {
		return nil, errNotDoctor
	}
	id, err := o.roomID(m, p, field)
	if err != nil {
		return nil, err
	}
	r := o.rooms[id]
	if r == nil {
		return nil, errUnknownRoom
	}
	return r, nil
}

// relayTo sends p unchanged to m, if m is there.
func (o *office) relayTo(to *member, event string, from *member, p payload) {
	if to != nil {
		to.link.send(event, from.id, p.raw)
	}
}

// ackDoctorEntered goes from a patient in a room to the doctor, who has
// not entered the room yet: client-id must be the doctor's id.
func (o *office) ackDoctorEntered(m *member, p payload) error {
	id, err := p.need("client-id")
	switch {
	case err != nil:
		return err
	case m.room == nil:
		return errNoRoom
	case o.doctor == nil || o.doctor.id != id:
		return errUnknownPeer
	}
	o.relayTo(o.doctor, "ack-doctor-entered", m, p)
	return nil
}

// relay returns the handler of a WebRTC signaling event: delivered
// unchanged to peer-id, which must be the other side of one of the
// sender's rooms.
func relay(event string) handler {
	return func(o *office, m *member, p payload) error {
		id, err := p.need("peer-id")
		if err != nil {
			return err
		}
		to := o.members[id]
		if to == nil || !shareRoom(m, to) {
			return errUnknownPeer
		}
		o.relayTo(to, event, m, p)
		return nil
	}
}

// doctorRejected turns a patient away: rejected, and the room ends.
func (o *office) doctorRejected(m *member, p payload) error {
	r, err := o.doctorsRoom(m, p, "roomID")
	if err != nil {
		return err
	}
	o.relayTo(r.patient, "rejected", m, p)
	o.endRoomLocked(r, false)
	return nil
}

// doctorEnded ends the consultation with patient patientID.
func (o *office) doctorEnded(m *member, p payload) error {
	if o.doctor != m {
		return errNotDoctor
	}
	id, err := p.need("patientID")
	if err != nil {
		return err
	}
	pt := o.members[id]
	if pt == nil || pt.room == nil {
		return errUnknownPeer
	}
	r := pt.room
	o.tell(pt, "doctor-ended", object("patientID", id))
	o.endRoomLocked(r, false)
	return nil
}

// patientGone returns the handler of patient-left and patient-ended: the
// doctor alone is told (event, {"patientID"}) and the room ends. A patient
// in no room has nothing to leave.
func patientGone(event string) handler {
	return func(o *office, m *member, p payload) error {
		id, err := p.str("patientID")
		if err != nil || m.room == nil {
			return err
		}
		if id == "" {
			id = m.id
		}
		r := m.room
		o.tell(o.doctor, event, object("patientID", id))
		o.endRoomLocked(r, false)
		return nil
	}
}
