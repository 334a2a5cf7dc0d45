package ehrc

import (
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
// never the other way round.
type registry struct {
	lim Limits
	now func() time.Time

	mu      sync.Mutex // guards the following, and namespace.office and office.refs
	closed  bool
	nss     map[string]*namespace
	rooms   map[string]*reservation
	pending int // reservations not yet bound to a namespace
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
// after RoomTTL; it is deleted when its room ends on purpose.
type reservation struct {
	expires time.Time  // while not live
	ns      *namespace // nil until a patient enters it
	live    bool       // a room runs under this id: it does not expire
}

func newRegistry(lim Limits, now func() time.Time) *registry {
	return &registry{lim: lim, now: now, nss: map[string]*namespace{}, rooms: map[string]*reservation{}}
}

// addNamespace registers id with the hash of its doctor token; it reports
// false (and changes nothing) when id exists.
func (g *registry) addNamespace(id, token, doctorUUID string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return false, errShuttingDown
	case g.nss[id] != nil:
		return false, nil
	case len(g.nss) >= g.lim.Namespaces:
		return false, errTooManyNamespaces
	}
	g.nss[id] = &namespace{id: id, tokenHash: sha256.Sum256([]byte(token)), doctorUUID: doctorUUID}
	return true, nil
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

// reserve records a new room id for create-room.
func (g *registry) reserve(id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errShuttingDown
	}
	if g.pending >= g.lim.PendingRooms {
		g.sweepLocked()
	}
	if g.pending >= g.lim.PendingRooms {
		return errTooManyPending
	}
	g.rooms[id] = &reservation{expires: g.now().Add(g.lim.RoomTTL)}
	g.pending++
	return nil
}

// sweepLocked drops the reservations that have expired.
func (g *registry) sweepLocked() {
	now := g.now()
	for id, r := range g.rooms {
		if !r.live && now.After(r.expires) {
			g.deleteLocked(id, r)
		}
	}
}

func (g *registry) deleteLocked(id string, r *reservation) {
	delete(g.rooms, id)
	if !r.live {
		g.pending--
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

// bind marks room id live in ns when a patient enters it; false if it
// does not exist or belongs to another namespace.
func (g *registry) bind(id string, ns *namespace) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.liveLocked(id)
	if r == nil || r.ns != nil && r.ns != ns {
		return false
	}
	r.ns = ns
	if !r.live {
		r.live = true
		g.pending--
	}
	return true
}

// park keeps room id of ns for RoomTTL after its room emptied because a
// connection dropped, so that the patient can come back with it.
func (g *registry) park(id string, ns *namespace) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := g.rooms[id]; r != nil && r.ns == ns && r.live {
		r.live, r.expires = false, g.now().Add(g.lim.RoomTTL)
		g.pending++
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
