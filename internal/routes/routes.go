// Package routes is the table from a session's port to what serves it,
// kept by a session Runner as it starts and stops endpoints and read by the
// gateway on every request. Readers never wait: the map is copied on each
// change and swapped atomically, as the token table of a session is.
package routes

import (
	"net/http"
	"sync"
	"sync/atomic"
)

// Table maps ports to handlers. The zero value is an empty table ready to
// use; a Table must not be copied after first use.
type Table struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[int]*entry]
}

// entry is one route; its address identifies it, so a late removal cannot
// drop the route of the next session on the same port.
type entry struct{ h http.Handler }

// Add routes port to h until remove is called. A nil h means "no handler
// in this process": the gateway proxies to the port (a child process
// serves it). remove may be called more than once.
func (t *Table) Add(port int, h http.Handler) (remove func()) {
	e := &entry{h: h}
	t.update(func(m map[int]*entry) { m[port] = e })
	return func() {
		t.update(func(m map[int]*entry) {
			if m[port] == e {
				delete(m, port)
			}
		})
	}
}

func (t *Table) update(change func(map[int]*entry)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := map[int]*entry{}
	if cur := t.m.Load(); cur != nil {
		for p, e := range *cur {
			next[p] = e
		}
	}
	change(next)
	t.m.Store(&next)
}

// Handler returns the handler of port. ok is false when nothing is routed
// there; a nil handler with ok means "proxy to the port".
func (t *Table) Handler(port int) (h http.Handler, ok bool) {
	cur := t.m.Load()
	if cur == nil {
		return nil, false
	}
	e, ok := (*cur)[port]
	if !ok {
		return nil, false
	}
	return e.h, true
}

// Len reports how many ports are routed.
func (t *Table) Len() int {
	if cur := t.m.Load(); cur != nil {
		return len(*cur)
	}
	return 0
}
