package ehrc

import (
	"cmp"
	"encoding/json"
	"slices"
)

// room is one consultation: at most one patient (the connection that
// created it) and the doctor once admitted. It lives while either is in
// it, and ends at once on rejected, doctor-ended, patient-ended and
// patient-left.
type room struct {
	id      string
	seq     uint64 // creation order, for new-patient after the doctor arrives
	patient *member
	doctor  *member
	hello   json.RawMessage // the patient's create payload, sent as new-patient
	rec     *recording      // nil unless promoted to a recorded session
}

// roomsOf returns the rooms doctor d has joined, oldest first.
func (o *office) roomsOf(d *member) []*room {
	var out []*room
	for _, r := range o.rooms {
		if r.doctor == d {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, bySeq)
	return out
}

// waitingLocked returns the rooms whose patient waits for the doctor,
// oldest first.
func (o *office) waitingLocked() []*room {
	var out []*room
	for _, r := range o.rooms {
		if r.patient != nil && r.doctor == nil {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, bySeq)
	return out
}

// endRoomLocked ends r: its patient is free again, a recording stops, and
// its id is forgotten (join-room says so), or only parked for a while
// when r emptied because a connection dropped.
func (o *office) endRoomLocked(r *room, park bool) {
	delete(o.rooms, r.id)
	if r.patient != nil {
		r.patient.room = nil
	}
	r.patient, r.doctor = nil, nil
	if park {
		o.svc.reg.park(r.id, o.ns)
	} else {
		o.svc.reg.free(r.id, o.ns)
		key := roomKey(o.ns.id, r.id)
		o.writeLocked(func() { o.svc.forgetRooms(key) })
	}
	o.stopRecordingLocked(r)
}

// shareRoom reports whether a and b are the two sides of one room.
func shareRoom(a, b *member) bool {
	return a.room != nil && a.room.doctor == b || b.room != nil && b.room.doctor == a
}

func bySeq(a, b *room) int { return cmp.Compare(a.seq, b.seq) }
