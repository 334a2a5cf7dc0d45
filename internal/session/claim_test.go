package session_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/cluster"
	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/redisstore"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// countingStore is the Redis store, counting the reads of records.
type countingStore struct {
	*redisstore.Store
	lists, gets atomic.Int64
}

func (s *countingStore) List(ctx context.Context) ([]*session.Record, error) {
	s.lists.Add(1)
	return s.Store.List(ctx)
}

func (s *countingStore) Get(ctx context.Context, id int64) (*session.Record, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, id)
}

// TestClaimReadsOnlyWhatWasLost: the Manager of a surviving node, on the
// real cluster and Redis store, restores the sessions of a node cut off
// (as if killed) on their ports with their keys, reading the records of
// those sessions only: never List, never the history.
func TestClaimReadsOnlyWhatWasLost(t *testing.T) {
	const lease = 1500 * time.Millisecond
	e := newEnv(t, 8)
	var views []*session.View
	for range 3 {
		views = append(views, e.start())
	}
	e.mgr.Shutdown(context.Background()) // the records say running

	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	store := &countingStore{Store: redisstore.New(rdb, "test")}
	recs, err := e.store.List(t.Context())
	if err != nil || len(recs) != 3 {
		t.Fatalf("records: %d, %v", len(recs), err)
	}
	for _, r := range recs {
		if err := store.Store.Put(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	for i := range int64(500) { // history
		old := *recs[0]
		old.ID, old.Running = 100+i, false
		if err := store.Store.Put(t.Context(), &old); err != nil {
			t.Fatal(err)
		}
	}

	join := func(addr, id string) *cluster.Node {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1,
			DialTimeout: lease / 3, ReadTimeout: lease / 3, WriteTimeout: lease / 3})
		t.Cleanup(func() { c.Close() })
		n, err := cluster.Join(t.Context(), c, cluster.Config{Name: "test", NodeID: id, LeaseTime: lease, Running: store.RunningKey()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = n.Close(ctx)
		})
		return n
	}
	proxy := redistest.NewProxy(t, srv.Addr)
	a, b := join(proxy.Addr, "a"), join(srv.Addr, "b")
	for _, v := range views { // a serves them (its Manager is not needed: only its leases)
		if _, err := a.Acquire(t.Context(), v.ID); err != nil {
			t.Fatal(err)
		}
	}
	homes := b.Homes("secret")
	m := session.NewManager(session.Config{
		Store: store, Runner: e.run, Ports: ports.New(8080, 8), ServiceKey: "VideoRehabService", Homes: homes,
		URLs: session.URLs{Scheme: "https", Host: "rehab.example", Port: 40075},
		Now:  func() time.Time { return e.now },
	})
	t.Cleanup(func() { m.Shutdown(context.Background()) })
	if err := m.Restore(t.Context()); err != nil || m.Running() != 0 { // a holds them all
		t.Fatalf("restore while a is alive: %v, %d running", err, m.Running())
	}

	proxy.Cut()
	claimed := 0
	testutil.Eventually(t, 4*lease, func() error {
		n, err := m.Claim(t.Context())
		claimed += n
		if err != nil {
			return err
		}
		return testutil.Until(m.Running() == 3, "%d of 3 claimed", m.Running())
	})
	if n, err := m.Claim(t.Context()); err != nil || n != 0 {
		t.Fatalf("claim once all are here: %d, %v", n, err)
	}
	for _, v := range views {
		key := keyOf(t, v, session.KindUser, userA)
		if _, err := e.run.gates[v.Port].Admit(t.Context(), key, userA); err != nil {
			t.Fatalf("session %d on port %d: old key after the claim: %v", v.ID, v.Port, err)
		}
	}
	if l, g := store.lists.Load(), store.gets.Load(); l != 0 || g != 3 {
		t.Fatalf("the claims read %d lists and %d records; want 0 and one per claimed session (3)", l, g)
	}
	if s := homes.ClaimStats(); s.FromLostNodes != 3 || s.Swept != 0 {
		t.Fatalf("claims found %+v: want the 3 through the lost node's set, none by the sweep", s)
	}
}
