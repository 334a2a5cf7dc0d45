package feed

import (
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

func TestBrokerFansOutAndNeverBlocks(t *testing.T) {
	var b Broker
	a, err := b.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := b.Subscribe()
	b.SessionEvent(session.Change{Type: session.ChangeStarted, Session: &session.View{ID: 3}})
	b.PeerJoined(3, session.Peer{UUID: "u"})
	for _, want := range []Event{{KindSession, 3, "started"}, {KindPresence, 3, "joined"}} {
		if got := <-a.C; got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	// a keeps up; slow never reads: once its queue is full it is dropped,
	// and the publisher never waits.
	for i := 0; i < QueueLen; i++ {
		b.PeerLeft(3, session.Peer{})
		<-a.C
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != QueueLen {
		t.Fatalf("slow subscriber got %d events before being dropped, want %d", n, QueueLen)
	}
	if b.Subscribers() != 1 {
		t.Fatalf("%d subscribers, want 1", b.Subscribers())
	}
	b.Close()
	if _, ok := <-a.C; ok {
		t.Fatal("subscription open after Close")
	}
	a.Close() // twice is fine
	if _, err := b.Subscribe(); err != ErrClosed {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

func TestSinksSkipsNil(t *testing.T) {
	var b Broker
	s, _ := b.Subscribe()
	Sinks{nil, &b}.SessionEvent(session.Change{Type: session.ChangeStopped, Session: &session.View{ID: 1}})
	Sinks{&b}.SessionEvent(session.Change{Type: session.ChangeStopped}) // no session: nothing
	if got := <-s.C; got != (Event{KindSession, 1, "stopped"}) {
		t.Fatalf("%+v", got)
	}
	if len(s.C) != 0 {
		t.Fatal("an event without a session was published")
	}
}
