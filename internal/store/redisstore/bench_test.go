package redisstore

import (
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// BenchmarkPut writes a running session's record (four members, keys, a
// few events) to a local redis-server with AOF fsynced on every write:
// what each session action costs in storage.
func BenchmarkPut(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{AOF: true})
	s := New(srv.Client(b), "bench")
	at := time.Now().UTC()
	r := &session.Record{Name: "Session", Status: session.StatusInProgress, Running: true, Port: 8080, StartTime: at, LastStart: at,
		Members: session.Members{Users: []string{"u1", "u2"}, Participants: []string{"p1"}, Devices: []string{"d1"}}}
	for i := range 6 {
		r.Tokens = append(r.Tokens, session.Token{Kind: session.KindUser, UUID: "u1", Key: "0123456789abcdef0123456789abcdef"})
		r.Events = append(r.Events, session.Event{ID: int64(i + 1), Type: session.EventJoin, Time: at, Context: "VideoRehabService"})
	}
	if err := s.Create(b.Context(), r); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.Put(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}
