package ehrc

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/rehabrtc/rehabrtc/internal/hub"
)

// office is the runtime of one namespace while someone is connected to it:
// its members (Socket.IO sockets and native peers alike), the doctor and
// the live rooms. It is the consultation "room policy": every event runs
// under its lock, and sending never blocks (both transports only queue),
// so the lock is never held for long.
type office struct {
	svc  *Service
	ns   *namespace
	hub  *hub.Hub // the native clients of this namespace
	log  *slog.Logger
	refs int   // connections using the office; guarded by the registry's lock
	num  int64 // the registry's number of this office (TURN credentials name it); set before use

	// storeMu is held by the one goroutine doing the office's store writes,
	// so that they keep the order in which they were decided.
	storeMu sync.Mutex

	mu      sync.Mutex // guards the following
	writes  []func()   // store writes decided under mu, done by flushWrites without it
	closed  bool
	members map[string]*member
	doctor  *member // the member that claimed the doctor role, if connected
	rooms   map[string]*room
	seq     uint64         // numbers rooms in creation order
	tokens  int            // members holding the doctor token
	anon    int            // the others
	byAddr  map[string]int // the others, by client address
}

// member is one connection to a namespace, whatever its transport.
type member struct {
	id     string
	link   link
	doctor bool   // holds the doctor token: may claim the doctor role
	compat bool   // no token, but compatibility mode lets it claim the role
	addr   string // client address; "" when unknown
	ticket string // a native patient's room (its join key); "" = any
	room   *room  // a patient's room, nil when in none
}

// link reaches a member's connection. Both methods only queue.
type link interface {
	// send delivers event with data; from is the sender's id ("" for the
	// server), which the native protocol shows and Socket.IO does not.
	send(event, from string, data json.RawMessage)
	// end disconnects: replaced by another doctor connection, or removed.
	end(replaced bool)
}

func (s *Service) newOffice(ns *namespace) *office {
	o := &office{svc: s, ns: ns, log: s.log.With(logKeyNamespace, ns.id),
		members: map[string]*member{}, rooms: map[string]*room{}, byAddr: map[string]int{}}
	hc := hub.Config{
		Admitter:   admitter{o},
		Policy:     nativePolicy{o},
		Counters:   s.cfg.Counters,
		ICEServers: s.cfg.ICEServers,
		Logger:     o.log,
	}
	if s.cfg.ICE != nil {
		hc.ICE, hc.ICEPolicy = officeICE{o}, s.cfg.ICE.Policy()
	}
	o.hub = hub.New(hc)
	return o
}

// join adds a member, unless the office is closed or full. Token holders
// and the others are counted apart, so that connections without the token
// can never fill the doctor's place; the others are also bounded per
// client address.
func (o *office) join(m *member) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	lim := &o.svc.cfg.Limits
	switch {
	case o.closed:
		return errGone
	case m.doctor && o.tokens >= lim.DoctorConns:
		return errDoctorsFull
	case m.doctor:
		o.tokens++
	case o.anon >= lim.Members:
		return errOfficeFull
	case m.addr != "" && o.byAddr[m.addr] >= lim.MembersPerAddress:
		return errAddressFull
	default:
		o.anon++
		if m.addr != "" {
			o.byAddr[m.addr]++
		}
	}
	o.members[m.id] = m
	return nil
}

// uncountLocked undoes join's counting for m.
func (o *office) uncountLocked(m *member) {
	if m.doctor {
		o.tokens--
		return
	}
	o.anon--
	if m.addr == "" {
		return
	}
	if n := o.byAddr[m.addr] - 1; n > 0 {
		o.byAddr[m.addr] = n
	} else {
		delete(o.byAddr, m.addr)
	}
}

// handle runs one event of member id.
func (o *office) handle(id, event string, raw json.RawMessage) error {
	h := handlerFor(event)
	if h == nil {
		return errUnknownEvent
	}
	p, err := parsePayload(raw)
	if err != nil {
		return err
	}
	defer o.flushWrites() // after the unlock below
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.members[id]
	if o.closed || m == nil {
		return errGone
	}
	return h(o, m, p)
}

// leave removes member id once its connection has ended: the other side
// of each of its rooms is told client-disconnected, and rooms left empty
// end.
func (o *office) leave(id string) {
	defer o.flushWrites() // after the unlock below
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.members[id]
	if m == nil {
		return
	}
	delete(o.members, id)
	o.uncountLocked(m)
	if o.doctor == m {
		o.doctor = nil
		o.dropDoctorLocked(m)
	}
	if r := m.room; r != nil {
		r.patient, m.room = nil, nil
		o.tell(o.doctor, "client-disconnected", object("client-id", m.id, "room-id", r.id))
		if r.doctor == nil {
			o.endRoomLocked(r, true)
		}
	}
}

// dropDoctorLocked takes doctor connection d out of its rooms: each
// patient is told client-disconnected, and rooms left empty are parked.
func (o *office) dropDoctorLocked(d *member) {
	for _, r := range o.roomsOf(d) {
		r.doctor = nil
		o.tell(r.patient, "client-disconnected", object("client-id", d.id, "room-id", r.id))
		if r.patient == nil {
			o.endRoomLocked(r, true)
		}
	}
}

// close ends the office for good (its namespace was removed, or the
// server stops): rooms end, every member is disconnected, and close
// returns when the native connections are done or ctx ends.
func (o *office) close(ctx context.Context, why hub.CloseReason) {
	o.mu.Lock()
	var ms []*member
	if !o.closed {
		o.closed = true
		for _, m := range o.members {
			ms = append(ms, m)
		}
		clear(o.members)
		clear(o.byAddr)
		o.tokens, o.anon, o.doctor = 0, 0, nil
		// At shutdown rooms are parked, as when connections drop: they
		// stay saved, and their patients come back to them after the
		// restart. A removed namespace's rooms are gone for good.
		park := why == hub.ServerShutdown
		for _, r := range o.rooms {
			o.endRoomLocked(r, park)
		}
	}
	o.mu.Unlock()
	o.flushWrites()
	for _, m := range ms {
		if _, native := m.link.(nativeLink); !native { // the hub tells its own
			m.link.end(false)
		}
	}
	if err := o.hub.Close(ctx, why); err != nil {
		o.log.Warn("native connections did not close in time", logKeyErr, err)
	}
}

// writeLocked queues a store write; the goroutine that holds mu does it
// with flushWrites once it has let mu go. o.mu must be held.
func (o *office) writeLocked(w func()) { o.writes = append(o.writes, w) }

// flushWrites does the queued store writes, in order, without mu: a slow
// store (an fsync, a Redis round trip, up to storeTimeout) must not stall
// every consultation of the namespace. One goroutine at a time drains the
// queue, which keeps a room's save before its removal.
func (o *office) flushWrites() {
	o.storeMu.Lock()
	defer o.storeMu.Unlock()
	for {
		o.mu.Lock()
		ws := o.writes
		o.writes = nil
		o.mu.Unlock()
		if len(ws) == 0 {
			return
		}
		for _, w := range ws {
			w()
		}
	}
}

// tell sends event from the server to m, if m is there.
func (o *office) tell(m *member, event string, data json.RawMessage) {
	if m != nil {
		m.link.send(event, "", data)
	}
}

// available reports whether the doctor is connected now.
func (o *office) available() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.doctor != nil
}
