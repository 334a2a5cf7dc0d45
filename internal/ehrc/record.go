package ehrc

import (
	"context"
	"encoding/json"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Sessions is what recording a consultation needs of session.Manager: the
// session_manage actions, so that a promoted room gets exactly the
// records, events and duration accounting of any other session.
type Sessions interface {
	Manage(ctx context.Context, req *session.Request) (*session.Reply, error)
}

// recording is a room promoted to a session_manage session. Its fields are
// guarded by the office lock.
type recording struct {
	id    int64 // 0 while the start is in flight
	uuid  string
	ended bool // the room ended: stop as soon as the start is done
}

// promoteRoom records the room as a session: start now, stop when the room
// ends. The doctor gets room-promoted once the session runs.
func (o *office) promoteRoom(m *member, p payload) error {
	r, err := o.doctorsRoom(m, p, "room-id")
	switch {
	case err != nil:
		return err
	case o.svc.cfg.Sessions == nil:
		return errNoRecording
	case r.rec != nil:
		return nil // already recorded
	}
	rec := &recording{}
	req := startRequest(o.ns, r.id)
	if !o.svc.background(func(ctx context.Context) {
		reply, err := o.svc.cfg.Sessions.Manage(ctx, req)
		if id := o.promoted(r, rec, reply, err); id != 0 {
			o.stopSession(ctx, id) // the room ended meanwhile
		}
	}) {
		return errRecordFailed
	}
	r.rec = rec
	return nil
}

// startRequest is the session_manage start of a consultation: the doctor
// is the creator and the user, the patient a participant named by the
// room id (a UUID), the namespace and room are in the parameters.
func startRequest(ns *namespace, roomID string) *session.Request {
	params, _ := json.Marshal(map[string]map[string]string{"ehrc": {"namespace": ns.id, "room": roomID}})
	return &session.Request{
		Action:  session.ActionStart,
		Name:    "Consultation " + ns.id,
		Creator: session.Creator{UUID: ns.doctorUUID, Kind: session.KindUser},
		Lists: map[session.Kind][]string{
			session.KindUser:        {ns.doctorUUID},
			session.KindParticipant: {roomID},
			session.KindDevice:      {},
		},
		Parameters: params,
	}
}

// promoted takes the result of a start. It returns the id of a session to
// stop at once because its room ended meanwhile, or 0.
func (o *office) promoted(r *room, rec *recording, reply *session.Reply, err error) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil && (reply == nil || reply.Session == nil) {
		err = errRecordFailed
	}
	if err != nil {
		o.log.Error("cannot record consultation", logKeyRoom, r.id, logKeyErr, err)
		if r.rec == rec {
			r.rec = nil
			o.tell(o.doctor, "error", errorEvent(errRecordFailed, "promote-room"))
		}
		return 0
	}
	rec.id, rec.uuid = reply.Session.ID, reply.Session.UUID
	o.log.Info("consultation recorded", logKeyRoom, r.id, logKeySession, rec.id)
	if rec.ended {
		return rec.id
	}
	data, _ := json.Marshal(map[string]any{"room-id": r.id, "id_session": rec.id, "session_uuid": rec.uuid})
	o.tell(o.doctor, "room-promoted", data)
	return 0
}

// stopRecordingLocked stops the recording of a room that ends.
func (o *office) stopRecordingLocked(r *room) {
	rec := r.rec
	if rec == nil {
		return
	}
	r.rec, rec.ended = nil, true
	if rec.id != 0 {
		o.stopRecording(rec)
	}
}

// stopRecording stops the session of rec in the background.
func (o *office) stopRecording(rec *recording) {
	id := rec.id
	if !o.svc.background(func(ctx context.Context) { o.stopSession(ctx, id) }) {
		o.log.Error("recorded consultation left running: shutting down", logKeySession, id)
	}
}

// stopSession stops a recorded consultation's session.
func (o *office) stopSession(ctx context.Context, id int64) {
	req := &session.Request{Action: session.ActionStop, SessionID: id}
	if _, err := o.svc.cfg.Sessions.Manage(ctx, req); err != nil {
		o.log.Error("cannot stop recorded consultation", logKeySession, id, logKeyErr, err)
	}
}

// errorEvent is the payload of an "error" event: the refusal and the event
// it answers.
func errorEvent(e *Error, event string) json.RawMessage {
	b, _ := json.Marshal(struct {
		*Error
		Event string `json:"event"`
	}{e, event})
	return b
}
