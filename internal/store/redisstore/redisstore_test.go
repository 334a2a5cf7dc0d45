package redisstore

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/storetest"
)

// store is a Store under a prefix of its own on srv, with a client of its
// own (so reopen can close it).
type store struct {
	*Store
	name string
	rdb  *redis.Client
}

func TestContract(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true})
	n := 0
	open := func(t *testing.T) session.Store {
		n++
		name := fmt.Sprintf("contract%d", n)
		rdb := srv.Client(t)
		return store{New(rdb, name), name, rdb}
	}
	// Reopen is a new client after a restart of redis-server itself (kill
	// -9, AOF fsynced on every write): what a node sees after a Redis crash.
	reopen := func(t *testing.T, old session.Store) session.Store {
		o := old.(store)
		o.rdb.Close()
		srv.Restart()
		rdb := srv.Client(t)
		return store{New(rdb, o.name), o.name, rdb}
	}
	storetest.Run(t, open, reopen)
}

// Nodes creating sessions at once never get the same id.
func TestConcurrentCreateFromSeveralNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	const nodes, each = 4, 25
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[int64]bool{}
	)
	for range nodes {
		s := New(srv.Client(t), "rehabrtc") // one client per node
		wg.Go(func() {
			for range each {
				r := &session.Record{Name: "x", Members: session.Members{Users: []string{}}}
				if err := s.Create(t.Context(), r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if ids[r.ID] {
					t.Errorf("id %d handed out twice", r.ID)
				}
				ids[r.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	all, err := New(srv.Client(t), "rehabrtc").List(t.Context())
	if err != nil || len(all) != nodes*each {
		t.Fatalf("List: %d records, %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Fatalf("List not in id order at %d: %d then %d", i, all[i-1].ID, all[i].ID)
		}
	}
}

// A record put with an id of its own is never overwritten by a Create.
func TestCreateAfterPutSkipsItsID(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := New(srv.Client(t), "rehabrtc")
	if err := s.Put(t.Context(), &session.Record{ID: 5, Name: "imported"}); err != nil {
		t.Fatal(err)
	}
	r := &session.Record{Name: "new"}
	if err := s.Create(t.Context(), r); err != nil || r.ID != 6 {
		t.Fatalf("Create after Put(5): id %d, %v", r.ID, err)
	}
	if got, _ := s.Get(t.Context(), 5); got.Name != "imported" {
		t.Fatalf("record 5 = %q", got.Name)
	}
}

// Two deployments on one Redis see only their own sessions.
func TestPrefixesAreSeparate(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	a, b := New(rdb, "a"), New(rdb, "b")
	ra := &session.Record{Name: "a"}
	if err := a.Create(t.Context(), ra); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(t.Context(), ra.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("b sees a's session: %v", err)
	}
	if all, err := b.List(t.Context()); err != nil || len(all) != 0 {
		t.Fatalf("b.List = %d records, %v", len(all), err)
	}
}

// List reads histories longer than one batch, in order.
func TestListManyBatches(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := New(srv.Client(t), "rehabrtc")
	const n = 2*listBatch + 3
	for i := n; i >= 1; i-- { // written backwards: the index orders them
		if err := s.Put(t.Context(), &session.Record{ID: int64(i), Name: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.List(t.Context())
	if err != nil || len(all) != n {
		t.Fatalf("List: %d, %v", len(all), err)
	}
	for i, r := range all {
		if r.ID != int64(i+1) || r.Name != fmt.Sprint(i+1) {
			t.Fatalf("record %d = %d %q", i, r.ID, r.Name)
		}
	}
}

// What another program wrote under our keys is a clear error, not a panic
// or a half-read record.
func TestDamagedRecords(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	s := New(rdb, "rehabrtc")
	ctx := t.Context()
	for name, tc := range map[string]struct {
		setup func()
		want  string
	}{
		"not JSON": {func() {
			rdb.Set(ctx, s.recordKey(1), "{oops", 0)
			rdb.ZAdd(ctx, s.indexKey(), redis.Z{Score: 1, Member: "1"})
		}, "decode session 1"},
		"indexed, no record": {func() { rdb.ZAdd(ctx, s.indexKey(), redis.Z{Score: 2, Member: "2"}) }, "session 2 is indexed but has no record"},
		"bad index entry":    {func() { rdb.ZAdd(ctx, s.indexKey(), redis.Z{Score: 3, Member: "three"}) }, `bad id "three"`},
	} {
		t.Run(name, func(t *testing.T) {
			rdb.FlushAll(ctx)
			tc.setup()
			_, err := s.List(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("List error = %v, want %q", err, tc.want)
			}
		})
	}
	rdb.FlushAll(ctx)
	rdb.Set(ctx, s.recordKey(9), "[]", 0)
	if _, err := s.Get(ctx, 9); err == nil || !strings.Contains(err.Error(), "decode session 9") {
		t.Fatalf("Get of damaged record: %v", err)
	}
}

// With Redis gone, every call fails with an error (bounded by the
// client's timeouts), and works again once Redis is back, with the data
// written before (AOF).
func TestRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true})
	s := New(srv.Client(t), "rehabrtc")
	ctx := t.Context()
	r := &session.Record{Name: "before", Members: session.Members{Users: []string{}, Participants: []string{}, Devices: []string{}}}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	start := time.Now()
	if err := s.Put(ctx, r); err == nil {
		t.Fatal("Put with Redis down succeeded")
	}
	if _, err := s.Get(ctx, r.ID); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get with Redis down: %v (must be an error, not 'not found')", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("calls with Redis down took %s", d)
	}
	srv.Restart()
	got, err := s.Get(ctx, r.ID)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("after Redis restart: %+v, %v", got, err)
	}
}

// A write with an older fencing token than the last one seen is refused
// and changes nothing; equal and newer tokens write.
func TestPutFenced(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := New(srv.Client(t), "rehabrtc")
	ctx := t.Context()
	put := func(name string, token int64) error {
		return s.PutFenced(ctx, &session.Record{ID: 4, Name: name}, token)
	}
	for _, step := range []struct {
		name    string
		token   int64
		fenced  bool
		current string
	}{
		{"first home", 10, false, "first home"},
		{"first home again", 10, false, "first home again"},
		{"new home", 12, false, "new home"},
		{"old home, late", 10, true, "new home"},
		{"new home again", 12, false, "new home again"},
	} {
		err := put(step.name, step.token)
		if step.fenced != errors.Is(err, ErrFenced) || (!step.fenced && err != nil) {
			t.Fatalf("%s (token %d): %v", step.name, step.token, err)
		}
		got, err := s.Get(ctx, 4)
		if err != nil || got.Name != step.current {
			t.Fatalf("after %s: %q, %v", step.name, got.Name, err)
		}
	}
	if err := s.PutFenced(ctx, &session.Record{}, 1); err == nil {
		t.Fatal("PutFenced of id 0 succeeded")
	}
	if all, _ := s.List(ctx); len(all) != 1 { // the fence is not a record
		t.Fatalf("List = %d records", len(all))
	}
}

// The same contract on a Redis Cluster of three masters: every key of a
// store shares one slot (the {name} hash tag), so the scripts and MGET
// work there as on one server.
func TestContractOnRedisCluster(t *testing.T) {
	rc := redistest.StartCluster(t, 3)
	rdb := rc.Client(t)
	n := 0
	storetest.Run(t, func(t *testing.T) session.Store {
		n++
		return New(rdb, fmt.Sprintf("cluster%d", n))
	}, nil)
	s := New(rdb, "fenced")
	if err := s.PutFenced(t.Context(), &session.Record{ID: 1}, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFenced(t.Context(), &session.Record{ID: 1}, 1); !errors.Is(err, ErrFenced) {
		t.Fatalf("older token on a Redis Cluster: %v", err)
	}
	tr := s.Tree("ehrc")
	if err := tr.Put(t.Context(), "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := tr.DeleteTree(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
}

// The contract through a Sentinel: the client finds the master by name.
func TestContractThroughSentinel(t *testing.T) {
	sen := redistest.StartSentinel(t)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{sen.Addr}, MasterName: sen.MasterName})
	t.Cleanup(func() { rdb.Close() })
	n := 0
	storetest.Run(t, func(t *testing.T) session.Store {
		n++
		return New(rdb, fmt.Sprintf("sentinel%d", n))
	}, nil)
	// What the Sentinel client wrote is on the master.
	if keys := sen.Master.Client(t).Keys(t.Context(), "{sentinel1}:*").Val(); len(keys) == 0 {
		t.Fatal("nothing written on the master")
	}
}
