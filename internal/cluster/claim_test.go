package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/redisstore"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// claimEnv is a Redis with the session store the nodes share, whose
// running set the nodes are told of (as serve does).
type claimEnv struct {
	t     *testing.T
	srv   *redistest.Server
	rdb   *redis.Client
	store *redisstore.Store
}

func newClaimEnv(t *testing.T) *claimEnv {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	return &claimEnv{t: t, srv: srv, rdb: rdb, store: redisstore.New(rdb, "test")}
}

// join is the package's join with Config.Running set.
func (e *claimEnv) join(addr, id string) *Node {
	e.t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1,
		DialTimeout: testLease / 3, ReadTimeout: testLease / 3, WriteTimeout: testLease / 3})
	e.t.Cleanup(func() { rdb.Close() })
	n, err := Join(e.t.Context(), rdb, Config{Name: "test", NodeID: id, InternalAddr: id + ":7000",
		LeaseTime: testLease, Running: e.store.RunningKey()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

// put writes session records, running or not.
func (e *claimEnv) put(running bool, ids ...int64) {
	e.t.Helper()
	for _, id := range ids {
		if err := e.store.Put(e.t.Context(), &session.Record{ID: id, Name: "s", Running: running}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *claimEnv) exists(key string) bool {
	e.t.Helper()
	n, err := e.rdb.Exists(e.t.Context(), key).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return n == 1
}

func lost(t *testing.T, h *Homes) []int64 {
	t.Helper()
	ids, err := h.Lost(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// A node cut off (as if killed): the survivor's Lost returns the running
// sessions of its held set once their leases expire, through the set and
// not the sweep, skips those that ended or another node holds, and forgets
// the set once every session in it is held.
func TestLostNodesSessionsClaimedThroughItsSet(t *testing.T) {
	e := newClaimEnv(t)
	proxy := redistest.NewProxy(t, e.srv.Addr)
	a, b, c := e.join(proxy.Addr, "a"), e.join(e.srv.Addr, "b"), e.join(e.srv.Addr, "c")
	hb := b.Homes("secret")
	e.put(true, 1, 2, 3, 4, 9)
	e.put(false, 100, 101, 102) // history
	for _, id := range []int64{1, 2, 3, 4} {
		if _, err := a.Acquire(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Acquire(t.Context(), 9); err != nil { // a live node's: never a candidate
		t.Fatal(err)
	}
	// Before the loss: the first call sweeps (nothing lacks a lease), no set is lost.
	if got := lost(t, hb); len(got) != 0 {
		t.Fatalf("Lost with every node alive = %v", got)
	}
	if s := hb.ClaimStats(); s.Sweeps != 1 || s.Swept != 0 {
		t.Fatalf("first call's sweep: %+v", s)
	}
	held := a.keys.held(a.Info().Member())
	if !e.exists(held) {
		t.Fatal("a's held set is missing")
	}
	e.put(false, 4) // ended while a served it, a died before giving its lease back
	proxy.Cut()

	var got []int64
	testutil.Eventually(t, 4*testLease, func() error {
		got = lost(t, hb)
		return testutil.Until(slices.Equal(got, []int64{1, 2, 3}), "Lost = %v, want [1 2 3]", got)
	})
	if _, err := c.Acquire(t.Context(), 2); err != nil { // another survivor was quicker for one
		t.Fatal(err)
	}
	if got := lost(t, hb); !slices.Equal(got, []int64{1, 3}) {
		t.Fatalf("Lost after c took 2 = %v, want [1 3]", got)
	}
	for _, id := range []int64{1, 3} {
		if _, err := b.Acquire(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	if got := lost(t, hb); len(got) != 0 {
		t.Fatalf("Lost once all are held = %v", got)
	}
	if e.exists(held) {
		t.Fatal("the lost node's held set is kept after every session in it is held")
	}
	if m, _ := e.rdb.SIsMember(t.Context(), a.keys.holders(), a.Info().Member()).Result(); m {
		t.Fatal("the lost node is still listed as a holder")
	}
	s := hb.ClaimStats()
	if s.Sweeps != 1 || s.Swept != 0 || s.FromLostNodes < 3 {
		t.Fatalf("found %+v: want the lost node's set, no sweep", s)
	}
}

// A session running with no lease and in no set (the whole cluster
// stopped, or Redis lost the sets) is found by the sweep, which only one
// node of the cluster runs per period; the others claim it from the
// orphans too.
func TestSweepFindsSessionWithoutLeaseOrSet(t *testing.T) {
	e := newClaimEnv(t)
	a, b := e.join(e.srv.Addr, "a"), e.join(e.srv.Addr, "b")
	e.put(true, 7, 8)
	e.put(false, 100)
	if _, err := a.Acquire(t.Context(), 8); err != nil {
		t.Fatal(err)
	}
	ha, hb := a.Homes("secret"), b.Homes("secret")
	if got := lost(t, ha); !slices.Equal(got, []int64{7}) {
		t.Fatalf("a's Lost = %v, want [7]", got)
	}
	if got := lost(t, hb); !slices.Equal(got, []int64{7}) { // from the orphans: b did not sweep
		t.Fatalf("b's Lost = %v, want [7]", got)
	}
	sa, sb := ha.ClaimStats(), hb.ClaimStats()
	if sa.Sweeps != 1 || sa.Swept != 1 || sb.Sweeps != 0 || sb.Orphans != 1 {
		t.Fatalf("a %+v, b %+v: want one sweep, by a, and b to find 7 in the orphans", sa, sb)
	}
	if _, err := b.Acquire(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	if got := lost(t, ha); len(got) != 0 {
		t.Fatalf("Lost once 7 is held = %v", got)
	}
	if e.exists(a.keys.orphans()) {
		t.Fatal("orphans kept after being claimed")
	}
}

// A lease given back while its session still runs (a node stopping, a
// hand-over) leaves the session in the orphans, for any node to claim at
// once; one given back after its session ended leaves nothing behind.
func TestReleaseOfRunningSessionLeavesAnOrphan(t *testing.T) {
	e := newClaimEnv(t)
	a, b := e.join(e.srv.Addr, "a"), e.join(e.srv.Addr, "b")
	hb := b.Homes("secret")
	e.put(true, 1, 2, 3)
	ls := map[int64]*Lease{}
	for _, id := range []int64{1, 2, 3} {
		l, err := a.Acquire(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		ls[id] = l
	}
	lost(t, hb) // the sweep of b's first call, while a holds everything
	e.put(false, 1)
	if err := ls[1].Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.rdb.SMembers(t.Context(), a.keys.held(a.Info().Member())).Result(); !slices.Equal(m, []string{"2", "3"}) && !slices.Equal(m, []string{"3", "2"}) {
		t.Fatalf("a's held set after releasing ended session 1: %v", m)
	}
	if err := a.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := lost(t, hb); !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("Lost after a closed = %v, want [2 3]", got)
	}
	if s := hb.ClaimStats(); s.Orphans != 2 || s.Swept != 0 {
		t.Fatalf("found %+v: want two orphans, no sweep", s)
	}
	if e.exists(a.keys.held(a.Info().Member())) {
		t.Fatal("a closed node's held set is kept")
	}
	if m, _ := e.rdb.SMembers(t.Context(), a.keys.holders()).Result(); len(m) != 0 {
		t.Fatalf("holders after a closed: %v, want none (b holds nothing)", m)
	}
}

// Lost needs the running set: without it a node cannot tell a lost
// session from an ended one.
func TestLostWithoutRunningSet(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := join(t, srv.Addr, "a", nil)
	if _, err := n.Homes("secret").Lost(t.Context()); err == nil {
		t.Fatal("Lost without a running set succeeded")
	}
	if _, err := Join(t.Context(), srv.Client(t), Config{Name: "test", NodeID: "b", Running: "{other}:sessions:running"}); err == nil {
		t.Fatal("a running set of another hash tag was accepted")
	}
}

// The claim by lost node on a Redis Cluster of three masters: its scripts,
// the sweep's SSCAN and MGET and the store's running set share the {name}
// slot.
func TestClaimOnRedisCluster(t *testing.T) {
	rc := redistest.StartCluster(t, 3)
	rdb := rc.Client(t)
	store := redisstore.New(rdb, "test")
	a, err := Join(t.Context(), rdb, Config{Name: "test", NodeID: "a", LeaseTime: testLease, Running: store.RunningKey()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Join(t.Context(), rdb, Config{Name: "test", NodeID: "b", LeaseTime: testLease, Running: store.RunningKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	for _, id := range []int64{1, 2, 3} {
		if err := store.Put(t.Context(), &session.Record{ID: id, Running: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{1, 2} {
		if _, err := a.Acquire(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	hb := b.Homes("secret")
	if got := lost(t, hb); !slices.Equal(got, []int64{3}) { // the sweep: 3 has no lease
		t.Fatalf("Lost = %v, want [3]", got)
	}
	if err := a.Close(t.Context()); err != nil { // 1 and 2 to the orphans
		t.Fatal(err)
	}
	if got := lost(t, hb); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("Lost after a closed = %v, want [1 2 3]", got)
	}
}
