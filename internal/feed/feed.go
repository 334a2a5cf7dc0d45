// Package feed tells dashboards what changed, as it happens: session starts,
// stops, invitations and removals (from the session Manager's EventSink)
// and joins and leaves (from each session's hub, through its endpoint). The
// Broker fans them out to subscribers (the API's event stream) without ever
// blocking the publisher: the Manager calls it holding a session's lock and
// the hubs from a peer's goroutine.
//
// An event only says what changed, never who: a subscriber reads the
// sessions again through the API, so no personal data and no key travels
// in an event, and a subscriber that misses events loses nothing but time.
package feed

import (
	"errors"
	"sync"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Event is one change a dashboard hears about.
type Event struct {
	Kind    string `json:"type"`       // "session" or "presence"
	Session int64  `json:"id_session"` // the session it happened in
	Change  string `json:"change"`     // started, invited, removed, replied, stopped; joined, left
}

// Event kinds.
const (
	KindSession  = "session"
	KindPresence = "presence"
)

// QueueLen is how many events a subscriber may fall behind before it is
// dropped (its channel closed): it then reconnects and reads everything
// again, which costs less than holding up a publisher.
const QueueLen = 64

// ErrClosed: the broker has been closed (the server is stopping).
var ErrClosed = errors.New("feed closed")

// Broker fans events out. The zero value is ready to use.
type Broker struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// Subscription is one subscriber's queue. C is closed when the
// subscription ends: Close, a subscriber that fell behind, or Broker.Close.
type Subscription struct {
	C <-chan Event
	c chan Event
	b *Broker
}

// Subscribe starts a subscription; the caller must Close it.
func (b *Broker) Subscribe() (*Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	c := make(chan Event, QueueLen)
	s := &Subscription{C: c, c: c, b: b}
	if b.subs == nil {
		b.subs = map[*Subscription]struct{}{}
	}
	b.subs[s] = struct{}{}
	return s, nil
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.drop(s)
}

// drop removes s and closes its channel; b.mu is held.
func (b *Broker) drop(s *Subscription) {
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.c)
	}
}

// Publish queues e for every subscriber without blocking; one whose queue
// is full is dropped.
func (b *Broker) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			b.drop(s)
		}
	}
}

// Close ends every subscription and refuses new ones, so long-lived
// streams end before the HTTP servers wait for their connections.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.drop(s)
	}
}

// Subscribers reports how many subscriptions are open.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// SessionEvent makes the Broker a session.EventSink.
func (b *Broker) SessionEvent(c session.Change) {
	if c.Session == nil {
		return
	}
	b.Publish(Event{Kind: KindSession, Session: c.Session.ID, Change: c.Type.String()})
}

// PeerJoined and PeerLeft make the Broker the presence sink of the
// endpoints (endpoint.Presence).
func (b *Broker) PeerJoined(id int64, _ session.Peer) {
	b.Publish(Event{Kind: KindPresence, Session: id, Change: "joined"})
}

// PeerLeft: see PeerJoined.
func (b *Broker) PeerLeft(id int64, _ session.Peer) {
	b.Publish(Event{Kind: KindPresence, Session: id, Change: "left"})
}

// Sinks hands each session change to every non-nil sink in turn, so the
// Manager's one EventSink can feed OpenTera and the dashboards alike.
type Sinks []session.EventSink

// SessionEvent implements session.EventSink.
func (s Sinks) SessionEvent(c session.Change) {
	for _, sink := range s {
		if sink != nil {
			sink.SessionEvent(c)
		}
	}
}
