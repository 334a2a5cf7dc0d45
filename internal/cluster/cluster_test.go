package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// testLease is short, so that expiries happen within a test, and long
// enough for three beats of a loaded, -race machine (1.5 s was not: a
// live node's lease lapsed at a load average of 32).
const testLease = 2500 * time.Millisecond

// join starts a node on its own Redis client (each node of a cluster has
// its own connections) and closes it when the test ends.
func join(t *testing.T, addr, id string, load func() Load) *Node {
	t.Helper()
	// Timeouts as long as one beat (ttl/3): a loaded CI machine can take
	// more than 200 ms to answer, and a beat is bounded by ttl/3 anyway.
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1,
		DialTimeout: testLease / 3, ReadTimeout: testLease / 3, WriteTimeout: testLease / 3})
	t.Cleanup(func() { rdb.Close() })
	n, err := Join(t.Context(), rdb, Config{Name: "test", NodeID: id, InternalAddr: id + ":7000", LeaseTime: testLease, Load: load})
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

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Nodes racing for one session: exactly one wins each round, the others
// are told who holds it, and fencing tokens only grow.
func TestTwoHoldersNeverBothHold(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	nodes := []*Node{join(t, srv.Addr, "a", nil), join(t, srv.Addr, "b", nil), join(t, srv.Addr, "c", nil)}
	var last int64
	for round := range 15 {
		leases := make([]*Lease, len(nodes))
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Go(func() { leases[i], errs[i] = n.Acquire(t.Context(), 42) })
		}
		wg.Wait()
		var winner *Lease
		for i := range nodes {
			switch {
			case errs[i] == nil && winner != nil:
				t.Fatalf("round %d: two holders", round)
			case errs[i] == nil:
				winner = leases[i]
			case !errors.Is(errs[i], ErrHeld):
				t.Fatalf("round %d: %v", round, errs[i])
			}
		}
		if winner == nil {
			t.Fatalf("round %d: nobody holds the lease: %v", round, errs)
		}
		for i := range nodes {
			var he *HeldError
			if errors.As(errs[i], &he) && (he.Holder != winner.n.info.Member() || he.Token != winner.Token()) {
				t.Fatalf("round %d: told holder %s/%d, is %s/%d", round, he.Holder, he.Token, winner.n.info.Member(), winner.Token())
			}
		}
		if winner.Token() <= last {
			t.Fatalf("round %d: token %d after %d", round, winner.Token(), last)
		}
		last = winner.Token()
		if err := winner.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// A lease lives on while its node beats: several lease times later it is
// still held, and nobody else can take it.
func TestLeaseRenewedByHeartbeat(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := join(t, srv.Addr, "a", nil), join(t, srv.Addr, "b", nil)
	l, err := a.Acquire(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * testLease)
	for time.Now().Before(deadline) {
		if _, err := b.Acquire(t.Context(), 7); !errors.Is(err, ErrHeld) {
			t.Fatalf("b.Acquire while a beats: %v", err)
		}
		if closed(l.Lost()) {
			t.Fatalf("lease lost while renewed: %v", l.Err())
		}
		time.Sleep(testLease / 5)
	}
}

// A holder cut from Redis is told its lease is lost within the lease time,
// and before any other node can take it; then the other node takes it.
func TestCutHolderLosesLeaseBeforeTakeover(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.NewProxy(t, srv.Addr)
	a, b := join(t, proxy.Addr, "a", nil), join(t, srv.Addr, "b", nil)
	l, err := a.Acquire(t.Context(), 9)
	if err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	proxy.Cut()

	var lostAt, takenAt time.Time
	var lb *Lease
	testutil.Eventually(t, 3*testLease, func() error {
		if lostAt.IsZero() && closed(l.Lost()) {
			lostAt = time.Now()
		}
		if lb == nil {
			l2, err := b.Acquire(t.Context(), 9)
			if err == nil {
				takenAt, lb = time.Now(), l2
			} else if !errors.Is(err, ErrHeld) {
				return err
			}
		}
		return testutil.Until(!lostAt.IsZero() && lb != nil, "lost %v, taken over %v", !lostAt.IsZero(), lb != nil)
	})
	if !errors.Is(l.Err(), ErrExpired) {
		t.Fatalf("lost lease says %v, want ErrExpired", l.Err())
	}
	// lostAt is when this poll saw it, on a machine that may be starved:
	// some slack over the lease time. The order below is the safety.
	if d := lostAt.Sub(cut); d > testLease+testLease/2 {
		t.Fatalf("told %s after the cut, far later than the lease time %s", d, testLease)
	}
	if !lostAt.Before(takenAt) {
		t.Fatalf("taken over by b (%s after the cut) before a was told (%s)", takenAt.Sub(cut), lostAt.Sub(cut))
	}
	if lb.Token() <= l.Token() {
		t.Fatalf("new token %d not above %d", lb.Token(), l.Token())
	}
	t.Logf("cut → told %s, cut → taken over %s", lostAt.Sub(cut), takenAt.Sub(cut))
	// The cut node itself is lost too: its heartbeat expired.
	testutil.Eventually(t, testLease, func() error { return testutil.Until(closed(a.Lost()), "node a not lost") })
	if _, err := a.Acquire(t.Context(), 10); !errors.Is(err, ErrExpired) {
		t.Fatalf("a lost node acquires: %v", err)
	}
	// Counted once, whether the beat or the node's loss found it.
	testutil.Eventually(t, testLease, func() error {
		return testutil.Until(a.Stats().LeasesLost == 1, "leases lost %d, want 1", a.Stats().LeasesLost)
	})
}

// A lease whose value changes in Redis (deleted, or taken after an
// expiry Redis saw first) is lost at the next beat.
// TestReleaseLostLease: releasing a lease that was lost (its holder cut
// from Redis) asks nothing of Redis and succeeds at once: what was held
// there has expired or belongs to another node.
func TestReleaseLostLease(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.NewProxy(t, srv.Addr)
	a := join(t, proxy.Addr, "a", nil)
	l, err := a.Acquire(t.Context(), 9)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	testutil.Eventually(t, 3*testLease, func() error { return testutil.Until(closed(l.Lost()), "lease not lost") })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release of a lost lease: %v", err)
	}
	if d := time.Since(start); d > testLease {
		t.Fatalf("release of a lost lease took %s", d)
	}
}

func TestTakenOverIsToldAtNextBeat(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := join(t, srv.Addr, "a", nil)
	l, err := a.Acquire(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.LeasesHeld != 1 || st.LeasesLost != 0 {
		t.Fatalf("stats %+v, want one lease held, none lost", st)
	}
	rdb := srv.Client(t)
	if err := rdb.Set(t.Context(), a.keys.lease(3), "other#1 999", 0).Err(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, testLease, func() error { return testutil.Until(closed(l.Lost()), "not told") })
	if !errors.Is(l.Err(), ErrTakenOver) {
		t.Fatalf("err %v, want ErrTakenOver", l.Err())
	}
	if v := rdb.Get(t.Context(), a.keys.lease(3)).Val(); v != "other#1 999" {
		t.Fatalf("the new holder's lease was touched: %q", v)
	}
	if s := a.heldSessions(); len(s) != 0 {
		t.Fatalf("still listed as held: %v", s)
	}
	if st := a.Stats(); st.LeasesLost != 1 || st.LeasesHeld != 0 || st.HeartbeatAge > testLease {
		t.Fatalf("stats %+v, want one lease lost, none held, a heartbeat within the lease", st)
	}
}

// Release never deletes another holder's lease, and lets another node in
// at once.
func TestRelease(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := join(t, srv.Addr, "a", nil), join(t, srv.Addr, "b", nil)
	l, err := a.Acquire(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Acquire(t.Context(), 5)
	if err != nil {
		t.Fatalf("b after a's release: %v", err)
	}
	if err := l.Release(t.Context()); err != nil { // a second, stale release
		t.Fatal(err)
	}
	if _, err := a.Acquire(t.Context(), 5); !errors.Is(err, ErrHeld) {
		t.Fatalf("a stale release freed b's lease: %v", err)
	}
	if closed(l.Lost()) || closed(lb.Lost()) {
		t.Fatal("a release closed Lost")
	}
}

// Closing a node releases its leases and leaves: others take its sessions
// and ports at once, and the node's holders are told.
func TestCloseHandsOver(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	a, err := Join(t.Context(), rdb, Config{Name: "test", NodeID: "a", LeaseTime: testLease})
	if err != nil {
		t.Fatal(err)
	}
	b := join(t, srv.Addr, "b", nil)
	l, err := a.Acquire(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Ports(9000, 1).Claim(9000); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(l.Err(), ErrClosed) {
		t.Fatalf("lease after Close: %v", l.Err())
	}
	if _, err := b.Acquire(t.Context(), 1); err != nil {
		t.Fatalf("b after a closed: %v", err)
	}
	if err := b.Ports(9000, 1).Claim(9000); err != nil {
		t.Fatalf("b claims a's port after a closed: %v", err)
	}
	if _, err := a.Acquire(t.Context(), 2); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed node acquires: %v", err)
	}
}

// A node restarted after kill -9 within the lease time waits for its
// previous incarnation to expire; a second process with the same id (a
// configuration mistake) is refused when it cannot wait that long.
func TestJoinWaitsForPreviousIncarnation(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.NewProxy(t, srv.Addr)
	old := join(t, proxy.Addr, "a", nil)
	proxy.Cut() // the old process stops beating, as if killed

	rdb := srv.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), testLease/10)
	defer cancel()
	if _, err := Join(ctx, rdb, Config{Name: "test", NodeID: "a", LeaseTime: testLease}); err == nil {
		t.Fatal("a second live incarnation joined")
	}
	start := time.Now()
	n, err := Join(t.Context(), rdb, Config{Name: "test", NodeID: "a", LeaseTime: testLease})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if n.info.Incarnation <= old.info.Incarnation {
		t.Fatalf("incarnation %d after %d", n.info.Incarnation, old.info.Incarnation)
	}
	if d := time.Since(start); d > testLease {
		t.Fatalf("waited %s, more than the lease time", d)
	}
	nodes, err := Nodes(t.Context(), rdb, "test")
	if err != nil || len(nodes) != 1 || nodes[0].Member() != n.info.Member() {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
}

// Heartbeats carry each node's load and leases; Nodes lists the live
// ones; a node that stops beating drops out.
func TestNodesAndLoad(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.NewProxy(t, srv.Addr)
	a := join(t, srv.Addr, "a", func() Load { return Load{Peers: 6, Sessions: 2} })
	b := join(t, srv.Addr, "b", nil)
	join(t, proxy.Addr, "c", nil)
	for _, id := range []int64{11, 12} {
		if _, err := b.Acquire(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	rdb := srv.Client(t)
	testutil.Eventually(t, 2*testLease, func() error {
		nodes, err := Nodes(t.Context(), rdb, "test")
		if err != nil {
			return err
		}
		got := fmt.Sprint(nodes[0].ID, nodes[0].Load, nodes[0].InternalAddr, " ", nodes[1].ID, nodes[1].Load, nodes[1].Sessions, " ", len(nodes))
		return testutil.Until(got == "a{6 2}a:7000 b{0 2} [11 12] 3", "nodes: %s", got)
	})
	if best, _ := LeastLoaded(mustNodes(t, rdb), DefaultWeights()); best.ID != "c" {
		t.Fatalf("least loaded = %s, want c (idle)", best.ID)
	}
	proxy.Cut()
	testutil.Eventually(t, 2*testLease, func() error {
		nodes := mustNodes(t, rdb)
		return testutil.Until(len(nodes) == 2, "%d nodes listed", len(nodes))
	})
	if best, _ := LeastLoaded(mustNodes(t, rdb), DefaultWeights()); best.ID != "b" {
		t.Fatalf("least loaded = %s, want b", best.ID)
	}
	_ = a
}

func mustNodes(t *testing.T, rdb redis.UniversalClient) []NodeInfo {
	t.Helper()
	nodes, err := Nodes(t.Context(), rdb, "test")
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

func TestLeastLoaded(t *testing.T) {
	n := func(id string, inc int64, peers, sessions int) NodeInfo {
		return NodeInfo{ID: id, Incarnation: inc, Load: Load{Peers: peers, Sessions: sessions}}
	}
	for name, tc := range map[string]struct {
		nodes []NodeInfo
		w     Weights
		want  string
	}{
		"none":                             {nil, DefaultWeights(), ""},
		"one":                              {[]NodeInfo{n("a", 1, 100, 9)}, DefaultWeights(), "a#1"},
		"fewest peers":                     {[]NodeInfo{n("a", 1, 10, 1), n("b", 1, 3, 1)}, DefaultWeights(), "b#1"},
		"sessions weigh more":              {[]NodeInfo{n("a", 1, 4, 1), n("b", 1, 0, 3)}, DefaultWeights(), "a#1"},
		"peers only":                       {[]NodeInfo{n("a", 1, 4, 1), n("b", 1, 0, 3)}, Weights{Peers: 1}, "b#1"},
		"tie: lowest id":                   {[]NodeInfo{n("b", 1, 1, 1), n("a", 2, 1, 1)}, DefaultWeights(), "a#2"},
		"tie: same id, lowest incarnation": {[]NodeInfo{n("a", 3, 0, 0), n("a", 2, 0, 0)}, DefaultWeights(), "a#2"},
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := LeastLoaded(tc.nodes, tc.w)
			if ok != (tc.want != "") || (ok && got.Member() != tc.want) {
				t.Fatalf("LeastLoaded = %s, %v; want %q", got.Member(), ok, tc.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	for name, tc := range map[string]Config{
		"no name":         {NodeID: "a"},
		"brace in name":   {Name: "a}", NodeID: "a"},
		"no node id":      {Name: "r"},
		"# in node id":    {Name: "r", NodeID: "a#1"},
		"space in id":     {Name: "r", NodeID: "a b"},
		"lease too short": {Name: "r", NodeID: "a", LeaseTime: 10 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Join(t.Context(), nil, tc); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// Nodes taking ports at once from one pool never get the same port, and
// together get every port exactly once.
func TestPortsConcurrentNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	const base, count = 20000, 60
	var (
		mu  sync.Mutex
		got = map[int]string{}
		wg  sync.WaitGroup
	)
	for _, id := range []string{"a", "b", "c", "d"} {
		p := join(t, srv.Addr, id, nil).Ports(base, count)
		wg.Go(func() {
			for {
				port, err := p.Acquire()
				if errors.Is(err, session.ErrNoPort) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if other, dup := got[port]; dup {
					t.Errorf("port %d handed to %s and %s", port, other, id)
				}
				got[port] = id
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != count {
		t.Fatalf("%d ports handed out, want %d", len(got), count)
	}
	byNode := map[string]int{}
	for _, id := range got {
		byNode[id]++
	}
	t.Logf("ports per node: %v", byNode)
}

// Claim and Release across nodes: a live node's port cannot be claimed or
// released by another; a dead node's port is free; the round-robin cursor
// is shared.
func TestPortsAcrossNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.NewProxy(t, srv.Addr)
	a := join(t, srv.Addr, "a", nil).Ports(8080, 4)
	b := join(t, srv.Addr, "b", nil).Ports(8080, 4)
	cn := join(t, proxy.Addr, "c", nil)
	c := cn.Ports(8080, 4)

	acquire := func(p *Ports) int {
		t.Helper()
		port, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		return port
	}
	if pa, pb := acquire(a), acquire(b); pa != 8080 || pb != 8081 {
		t.Fatalf("round robin across nodes: %d, %d", pa, pb)
	}
	for name, tc := range map[string]struct {
		p    *Ports
		port int
		ok   bool
	}{
		"held by another": {b, 8080, false},
		"held by itself":  {a, 8080, false},
		"below the range": {a, 8079, false},
		"above the range": {a, 8084, false},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.p.Claim(tc.port)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, session.ErrPortInUse)) {
				t.Fatalf("Claim(%d) = %v", tc.port, err)
			}
		})
	}
	b.Release(8080) // not b's: ignored
	if err := b.Claim(8080); !errors.Is(err, session.ErrPortHeldByNode) || !errors.Is(err, session.ErrPortInUse) {
		t.Fatalf("another node's release freed a port: %v", err)
	}
	if err := c.Claim(8083); err != nil {
		t.Fatal(err)
	}
	a.Release(8080)
	if port := acquire(b); port != 8082 { // the cursor moved on past 8081
		t.Fatalf("after release: %d", port)
	}
	if port := acquire(b); port != 8080 { // 8083 is c's
		t.Fatalf("wrapped: %d", port)
	}
	if _, err := a.Acquire(); !errors.Is(err, session.ErrNoPort) {
		t.Fatalf("full pool: %v", err)
	}
	proxy.Cut() // c dies: its port comes back once its heartbeat expires
	testutil.Eventually(t, 2*testLease, func() error { return a.Claim(8083) })
	if _, err := c.Acquire(); err == nil {
		t.Fatal("a lost node took a port")
	}
}

// A release that cannot reach Redis is retried before the next call; the
// port stays this node's meanwhile.
func TestPortsReleaseRetried(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true})
	a, err := Join(t.Context(), srv.Client(t), Config{Name: "test", NodeID: "a", LeaseTime: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	p := a.Ports(8080, 1)
	if _, err := p.Acquire(); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	p.Release(8080)
	srv.Restart()
	if port, err := p.Acquire(); err != nil || port != 8080 {
		t.Fatalf("Acquire after a failed release: %d, %v", port, err)
	}
}

// A Redis restart (AOF) shorter than the lease time loses nothing: the
// leases, their holders and the ports are all there afterwards.
func TestRedisRestartWithAOFKeepsLeases(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	defer rdb.Close()
	const lease = 4 * time.Second
	a, err := Join(t.Context(), rdb, Config{Name: "test", NodeID: "a", LeaseTime: lease})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	l, err := a.Acquire(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Ports(8080, 2)
	if err := p.Claim(8080); err != nil {
		t.Fatal(err)
	}
	srv.Restart() // kill -9, then start on the same AOF
	other := srv.Client(t)
	if v := other.Get(t.Context(), a.keys.lease(1)).Val(); v != l.value {
		t.Fatalf("lease after restart = %q, want %q", v, l.value)
	}
	time.Sleep(lease) // a whole lease time: only renewals after the restart keep it
	if closed(l.Lost()) || closed(a.Lost()) {
		t.Fatalf("lost across a short Redis restart: lease %v, node %v", l.Err(), a.Err())
	}
	if err := p.Claim(8080); !errors.Is(err, session.ErrPortInUse) {
		t.Fatalf("port lost across the restart: %v", err)
	}
}

// Acquisitions racing Close either end up released by Close or give
// themselves back: no lease is left in Redis for its expiry.
func TestAcquireRacingClose(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	for round := range 10 {
		n, err := Join(t.Context(), rdb, Config{Name: "test", NodeID: "a", LeaseTime: testLease})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range int64(20) {
			wg.Go(func() { _, _ = n.Acquire(t.Context(), i+1) })
		}
		if err := n.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		keys, err := rdb.Keys(t.Context(), "{test}:lease:[0-9]*").Result()
		if err != nil || len(keys) != 0 {
			t.Fatalf("round %d: leases left after Close: %v, %v", round, keys, err)
		}
	}
}

// Nodes, leases and ports on a Redis Cluster of three masters: every
// script's keys share the {name} slot.
func TestOnRedisCluster(t *testing.T) {
	rc := redistest.StartCluster(t, 3)
	var nodes []*Node
	for _, id := range []string{"a", "b"} {
		n, err := Join(t.Context(), rc.Client(t), Config{Name: "test", NodeID: id, LeaseTime: testLease})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(context.Background()) })
		nodes = append(nodes, n)
	}
	l, err := nodes[0].Acquire(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[1].Acquire(t.Context(), 1); !errors.Is(err, ErrHeld) {
		t.Fatalf("second holder on a Redis Cluster: %v", err)
	}
	pa, pb := nodes[0].Ports(8080, 2), nodes[1].Ports(8080, 2)
	if _, err := pa.Acquire(); err != nil {
		t.Fatal(err)
	}
	if _, err := pb.Acquire(); err != nil {
		t.Fatal(err)
	}
	if _, err := pb.Acquire(); !errors.Is(err, session.ErrNoPort) {
		t.Fatalf("full pool: %v", err)
	}
	time.Sleep(testLease) // renewals go through the cluster client too
	if closed(l.Lost()) {
		t.Fatalf("lease lost on a Redis Cluster: %v", l.Err())
	}
	got, err := Nodes(t.Context(), rc.Client(t), "test")
	if err != nil || len(got) != 2 || !slices.Equal(got[0].Sessions, []int64{1}) {
		t.Fatalf("Nodes = %+v, %v", got, err)
	}
}

// With a probe, a port another process of this host holds is skipped and
// stays free for the other nodes (whose hosts may not hold it).
func TestPortsProbe(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	held := map[int]bool{8080: true, 8081: true}
	a := join(t, srv.Addr, "a", nil).Ports(8080, 3).WithProbe(func(port int) error {
		if held[port] {
			return fmt.Errorf("bind %d: address already in use", port)
		}
		return nil
	})
	if port, err := a.Acquire(); err != nil || port != 8082 {
		t.Fatalf("Acquire = %d, %v; want 8082", port, err)
	}
	if _, err := a.Acquire(); !errors.Is(err, session.ErrNoPort) {
		t.Fatalf("only held ports left: %v", err)
	}
	b := join(t, srv.Addr, "b", nil).Ports(8080, 3)
	for _, port := range []int{8080, 8081} {
		if err := b.Claim(port); err != nil {
			t.Fatalf("a skipped port was not given back: %v", err)
		}
	}
}

// Processes started at once with one node id: exactly one joins; the
// others wait for it, and fail when they cannot wait that long.
func TestJoinSameIDAtOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	const procs = 4
	nodes := make([]*Node, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), testLease/3)
			defer cancel()
			nodes[i], errs[i] = Join(ctx, srv.Client(t), Config{Name: "test", NodeID: "same", LeaseTime: testLease})
		})
	}
	wg.Wait()
	joined := 0
	for i, n := range nodes {
		if errs[i] == nil {
			joined++
			defer n.Close(context.Background())
		} else if !strings.Contains(errs[i].Error(), `node id "same" is in use by a live node`) {
			t.Errorf("join %d: %v", i, errs[i])
		}
	}
	if joined != 1 {
		t.Fatalf("%d processes joined with one id", joined)
	}
}
