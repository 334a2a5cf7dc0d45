package ehrc

import (
	"container/list"
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"time"
)

// registry holds the namespaces (one per doctor) and the rooms handed out
// by create-room. It is the only state that lives without connections:
// a namespace's runtime (its office) exists only while someone is
// connected to it.
//
// Lock order: an office's lock may be held while taking the registry's,
// never the other way round. The registry does no I/O: callers save to
// the Store after it answers.
type registry struct {
	lim Limits
	now func() time.Time

	mu         sync.Mutex // guards the following, and namespace.office and office.refs
	closed     bool
	nss        map[string]*namespace
	rooms      map[string]*reservation
	fresh      list.List // reservations never entered, oldest first (*reservation values)
	lastSweep  time.Time
	expired    []string          // store keys of entered rooms dropped by a sweep
	offices    map[int64]*office // the offices with a connection, by number (TURN credentials name them)
	lastOffice int64
}

// namespace is one doctor's office as registered; immutable but for office.
type namespace struct {
	id         string
	tokenHash  [32]byte // sha256 of the doctor token; the token itself is not kept
	doctorUUID string   // names the doctor in recorded sessions
	office     *office  // nil while nobody is connected
}

// checkToken reports, in constant time, whether tok is the doctor token.
func (ns *namespace) checkToken(tok string) bool {
	h := sha256.Sum256([]byte(tok))
	return tok != "" && subtle.ConstantTimeCompare(h[:], ns.tokenHash[:]) == 1
}

// reservation is a room id from create-room. The first patient to enter
// it binds it to its namespace for good. While no room runs under it (not
// entered yet, or left by a patient whose connection dropped) it expires
// after RoomTTL; it is deleted when its room ends on purpose. Reservations
// never entered are also the first to go when PendingRooms of them exist:
// a flood of create-room pushes out its own oldest ids, never a room a
// patient is in or may come back to.
type reservation struct {
	id      string
	expires time.Time     // while not live
	ns      *namespace    // nil until a patient enters it
	live    bool          // a room runs under this id: it does not expire
	elem    *list.Element // in registry.fresh while never entered
}

func newRegistry(lim Limits, now func() time.Time) *registry {
	return &registry{lim: lim, now: now, nss: map[string]*namespace{}, rooms: map[string]*reservation{},
		offices: map[int64]*office{}}
}

// addNamespace registers id with the hash of its doctor token; it reports
// false (and changes nothing) when id exists.
func (g *registry) addNamespace(id string, tokenHash [32]byte, doctorUUID string) (*namespace, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return nil, false, errShuttingDown
	case g.nss[id] != nil:
		return g.nss[id], false, nil
	case len(g.nss) >= g.lim.Namespaces:
		return nil, false, errTooManyNamespaces
	}
	ns := &namespace{id: id, tokenHash: tokenHash, doctorUUID: doctorUUID}
	g.nss[id] = ns
	return ns, true, nil
}

// lookup returns the namespace id, or nil.
func (g *registry) lookup(id string) *namespace {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nss[id]
}

// removeNamespace unregisters ns (if it is still registered) and the rooms
// bound to it, and returns its office, which the caller closes.
func (g *registry) removeNamespace(ns *namespace) (*office, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nss[ns.id] != ns {
		return nil, false
	}
	delete(g.nss, ns.id)
	for id, r := range g.rooms {
		if r.ns == ns {
			g.deleteLocked(id, r)
		}
	}
	o := ns.office
	ns.office = nil
	return o, true
}

// reserve records a new room id for create-room, pushing out the oldest
// never-entered one when PendingRooms of them exist.
func (g *registry) reserve(id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errShuttingDown
	}
	now := g.now()
	if now.Sub(g.lastSweep) > time.Minute || g.fresh.Len() >= g.lim.PendingRooms {
		g.sweepLocked(now)
	}
	for g.fresh.Len() >= g.lim.PendingRooms {
		old := g.fresh.Front().Value.(*reservation)
		g.deleteLocked(old.id, old)
	}
	r := &reservation{id: id, expires: now.Add(g.lim.RoomTTL)}
	r.elem = g.fresh.PushBack(r)
	g.rooms[id] = r
	return nil
}

// restoreRoom records room id of ns from the store as parked: its patient
// may come back to it for RoomTTL.
func (g *registry) restoreRoom(id string, ns *namespace) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rooms[id] = &reservation{id: id, ns: ns, expires: g.now().Add(g.lim.RoomTTL)}
}

// sweepLocked drops the reservations that have expired.
func (g *registry) sweepLocked(now time.Time) {
	g.lastSweep = now
	for id, r := range g.rooms {
		if !r.live && now.After(r.expires) {
			g.deleteLocked(id, r)
			if r.ns != nil {
				g.expired = append(g.expired, roomKey(r.ns.id, id))
			}
		}
	}
}

// takeExpired returns the store keys of the entered rooms that expired
// since the last call.
func (g *registry) takeExpired() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := g.expired
	g.expired = nil
	return ids
}

func (g *registry) deleteLocked(id string, r *reservation) {
	delete(g.rooms, id)
	if r.elem != nil {
		g.fresh.Remove(r.elem)
		r.elem = nil
	}
}

// liveLocked returns the reservation of id unless it expired.
func (g *registry) liveLocked(id string) *reservation {
	r := g.rooms[id]
	if r == nil || !r.live && g.now().After(r.expires) {
		return nil
	}
	return r
}

// exists reports whether id names a room: handed out and not expired, or
// entered and not ended.
func (g *registry) exists(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.liveLocked(id) != nil
}

// usable reports whether a patient of ns may enter room id.
func (g *registry) usable(id string, ns *namespace) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.liveLocked(id)
	return r != nil && (r.ns == nil || r.ns == ns)
}

// bind marks room id live in ns when a patient enters it; ok is false if
// it does not exist or belongs to another namespace, first is true when it
// was never entered before (the caller saves it).
func (g *registry) bind(id string, ns *namespace) (ok, first bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.liveLocked(id)
	if r == nil || r.ns != nil && r.ns != ns {
		return false, false
	}
	first = r.ns == nil
	r.ns, r.live = ns, true
	if r.elem != nil {
		g.fresh.Remove(r.elem)
		r.elem = nil
	}
	return true, first
}

// park keeps room id of ns for RoomTTL after its room emptied because a
// connection dropped, so that the patient can come back with it.
func (g *registry) park(id string, ns *namespace) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := g.rooms[id]; r != nil && r.ns == ns && r.live {
		r.live, r.expires = false, g.now().Add(g.lim.RoomTTL)
	}
}

// free deletes room id of ns when its room ends on purpose.
func (g *registry) free(id string, ns *namespace) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := g.rooms[id]; r != nil && r.ns == ns {
		g.deleteLocked(id, r)
	}
}

// counts returns how many namespaces and rooms are registered (for tests
// and metrics).
func (g *registry) counts() (namespaces, rooms int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.nss), len(g.rooms)
}
