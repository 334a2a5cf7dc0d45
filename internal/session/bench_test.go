package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/endpoint"
	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// remoteStore stands in for OpenTera's main server, which cannot run here:
// records kept in memory, each call taking a fixed round trip. (bbolt is
// not used: its fsync, serialised and slower than the round trip on a
// shared disk, would hide what the benchmark measures.)
type remoteStore struct {
	rtt  time.Duration
	mu   sync.Mutex
	recs map[int64][]byte
}

func (s *remoteStore) Create(ctx context.Context, r *session.Record) error {
	s.mu.Lock()
	r.ID = int64(len(s.recs) + 1)
	s.mu.Unlock()
	return s.Put(ctx, r)
}

func (s *remoteStore) Put(_ context.Context, r *session.Record) error {
	time.Sleep(s.rtt)
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[r.ID] = b
	return nil
}

func (s *remoteStore) Get(_ context.Context, id int64) (*session.Record, error) {
	time.Sleep(s.rtt)
	s.mu.Lock()
	b, ok := s.recs[id]
	s.mu.Unlock()
	if !ok {
		return nil, session.ErrNotFound
	}
	var r session.Record
	return &r, json.Unmarshal(b, &r)
}

func (s *remoteStore) List(ctx context.Context) ([]*session.Record, error) {
	s.mu.Lock()
	n := len(s.recs)
	s.mu.Unlock()
	var out []*session.Record
	for id := range int64(n) {
		r, err := s.Get(ctx, id+1)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// BenchmarkInviteManySessions: invitations and removals on 16 running
// sessions at once, each store call taking 2 ms. With one lock held
// across the write, they queue behind each other (about 2 ms per
// operation whatever the parallelism); with a lock per session, sessions
// proceed side by side. It uses only the API that did not change, so it
// runs on older commits too, for comparison.
func BenchmarkInviteManySessions(b *testing.B) {
	mgr := session.NewManager(session.Config{
		Store: &remoteStore{rtt: 2 * time.Millisecond, recs: map[int64][]byte{}}, Runner: &endpoint.Runner{},
		Ports: ports.New(8080, 16), ServiceKey: "VideoRehabService",
	})
	defer mgr.Shutdown(context.Background())
	do := func(body string) {
		req, err := session.ParseManage([]byte(`{"session_manage":` + body + `}`))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mgr.Manage(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	for range 16 {
		do(`{"action":"start","session_participants":["` + partB + `"]}`)
	}
	var next atomic.Int64
	b.SetParallelism(8) // 16 goroutines on 2 cores: they mostly wait for the store
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := next.Add(1)%16 + 1
		for i := 0; pb.Next(); i++ {
			action := "invite"
			if i%2 == 1 {
				action = "remove"
			}
			do(fmt.Sprintf(`{"action":"%s","id_session":%d,"session_users":["%s"]}`, action, id, userA))
		}
	})
}
