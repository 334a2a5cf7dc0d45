package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/cluster"
	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// testLeaseMS is the lease of the cluster tests: short, so a failover
// takes about 2 s, and long enough for a heartbeat on 2 shared cores.
const testLeaseMS = 1500

// clusterNodeProc is one `rehabrtc serve` process of a test cluster.
type clusterNodeProc struct {
	*serveProc
	id      string
	cfg     *config.Config
	service string // http://…, the API
	gateway string // http://…, the public gateway
	srv     *testServer
}

// clusterSpec is what the nodes of a test cluster share: Redis, the
// session port range, the public port of the links (a load balancer's).
type clusterSpec struct {
	redis       string
	base, count int
	public      int
	leaseMS     int // 0: testLeaseMS
}

// clusterConfig is a node's configuration: its own service, gateway and
// internal ports and data directory; the rest shared.
func clusterConfig(t *testing.T, id string, cs clusterSpec) *config.Config {
	p := freePorts(t, 3)
	cfg := config.Default()
	cfg.Service.Port = p
	cfg.WebRTC.ExternalPort = cs.public
	cfg.WebRTC.LocalBasePort, cfg.WebRTC.MaxSessions = cs.base, cs.count
	cfg.RehabRTC.DataDir = t.TempDir()
	cfg.RehabRTC.APIKeys = []string{testKey}
	cfg.RehabRTC.Gateway.Listen = fmt.Sprintf("127.0.0.1:%d", p+1)
	cfg.RehabRTC.LogLevel = "info"
	cfg.RehabRTC.TURN.Listen = "127.0.0.1:0" // each node its own TURN port
	cfg.RehabRTC.TURN.RelayIP = "127.0.0.1"
	cfg.RehabRTC.SFU.UDPPort, cfg.RehabRTC.SFU.TCPPort = 0, 0 // each node its own media ports
	cl := &cfg.RehabRTC.Cluster
	cl.Enabled, cl.Name, cl.NodeID = true, "t", id
	cl.InternalAddr = fmt.Sprintf("127.0.0.1:%d", p+2)
	cl.LeaseTimeMS = cmp.Or(cs.leaseMS, testLeaseMS)
	cl.Redis.Addrs = []string{cs.redis}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startClusterNode(t *testing.T, bin, id string, cs clusterSpec) *clusterNodeProc {
	t.Helper()
	return startClusterNodeWith(t, bin, id, cs, nil)
}

// startClusterNodeWith is startClusterNode with edit applied to the
// node's configuration first (then validated again).
func startClusterNodeWith(t *testing.T, bin, id string, cs clusterSpec, edit func(*config.Config)) *clusterNodeProc {
	t.Helper()
	cfg := clusterConfig(t, id, cs)
	if edit != nil {
		edit(cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := cfg.JSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), id+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	service := "http://" + cfg.ServiceAddr()
	n := &clusterNodeProc{serveProc: startServe(t, bin, path, service), id: id, cfg: cfg,
		service: service, gateway: "http://" + cfg.GatewayAddr()}
	// The API helpers of the in-process tests, pointed at this process.
	n.srv = &testServer{t: t, cfg: cfg, service: service, gateway: n.gateway}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node %s log:\n%s", id, n.log())
		}
	})
	return n
}

// clusterOf starts redis-server (AOF, fsync always) and n nodes sharing a
// range of session ports.
func clusterOf(t *testing.T, n, sessions, leaseMS int) (clusterSpec, string, []*clusterNodeProc) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{AOF: true})
	bin := buildRehabRTC(t)
	base := freePorts(t, sessions+1)
	cs := clusterSpec{redis: srv.Addr, base: base + 1, count: sessions, public: base, leaseMS: leaseMS}
	nodes := make([]*clusterNodeProc, n)
	for i := range nodes {
		nodes[i] = startClusterNode(t, bin, string(rune('a'+i)), cs)
	}
	return cs, bin, nodes
}

// TestClusterThreeNodes: a session started on node a is joined through the
// gateways of b and c (real WebSocket clients, proxied to a); remove
// through c kicks the peer on a; invites through all three at once run
// once each; a new session started through c goes to the least loaded
// node, b; a kill -9 of a brings the session back on b or c, same
// links, within 10 s, and a client joining again through a surviving
// gateway is admitted.
func TestClusterThreeNodes(t *testing.T) {
	cs, bin, nodes := clusterOf(t, 3, 4, 0)
	a, b, c := nodes[0], nodes[1], nodes[2]
	const patient, doctor = "7b0f40c5-8b7f-4d3b-9c39-6a1f2e3d4c5b", "5d1c6a33-2a44-4e0e-8f5e-7a0b9c8d7e6f"
	code, r := a.srv.manage(map[string]any{"action": "start", "session_participants": []string{patient}, "session_users": []string{doctor}})
	if code != http.StatusOK || r.Status != "started" {
		t.Fatalf("start on a: %d %+v", code, r)
	}
	s := r.Session
	pLink, dLink := s.link(t, patient), s.link(t, doctor)

	pc, _ := join(t, b.gateway, pLink, patient, "Patient") // through b, home a
	dc, _ := join(t, c.gateway, dLink, doctor, "Doctor")   // through c, home a
	pc.expect("peer-joined")
	_ = dc

	var v sessionJSON
	if code := a.srv.api(http.MethodGet, fmt.Sprintf("/api/sessions/%d", s.ID), nil, &v); code != 200 || len(v.Peers) != 2 {
		t.Fatalf("home a sees %d peers (HTTP %d), want 2", len(v.Peers), code)
	}

	// remove through c: forwarded to a, which kicks the patient off.
	if code, r := c.srv.manage(map[string]any{"action": "remove", "id_session": s.ID, "session_participants": []string{patient}}); code != 200 || r.Status != "removed" {
		t.Fatalf("remove through c: %d %+v", code, r)
	}
	if cc := pc.closed(); cc == websocket.StatusNormalClosure || cc == -1 {
		t.Fatalf("removed patient's close code %d", cc)
	}

	// Invites through all three nodes at once: each runs once.
	guests := []string{"0e1a2b3c-4d5e-4f60-8a1b-2c3d4e5f6a7b", "1e1a2b3c-4d5e-4f60-8a1b-2c3d4e5f6a7b", "2e1a2b3c-4d5e-4f60-8a1b-2c3d4e5f6a7b"}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			code, r := n.srv.manage(map[string]any{"action": "invite", "id_session": s.ID, "session_users": []string{guests[i]}})
			if code != 200 || r.Status != "invited" {
				t.Errorf("invite through %s: %d %+v", n.id, code, r)
			}
		})
	}
	wg.Wait()
	if code := b.srv.api(http.MethodGet, fmt.Sprintf("/api/sessions/%d", s.ID), nil, &v); code != 200 {
		t.Fatalf("get through b: %d", code)
	}
	for _, g := range guests {
		if n := countJoins(v.View, g); n != 1 || !slices.Contains(v.Users, g) {
			t.Fatalf("guest %s: %d join events, users %v", g, n, v.Users)
		}
	}

	// A new session goes to the least loaded node: b (a has one; b and c
	// none, ties to the lowest id), whichever node's API was asked.
	rdb := redis.NewClient(&redis.Options{Addr: cs.redis})
	defer rdb.Close()
	testutil.Eventually(t, 5*time.Second, func() error { // a's heartbeat reports its session
		nodes, err := cluster.Nodes(t.Context(), rdb, "t")
		return cmp.Or(err, testutil.Until(len(nodes) == 3 && nodes[0].Load.Sessions == 1, "loads %+v", nodes))
	})
	if code, r2 := c.srv.manage(map[string]any{"action": "start", "session_users": []string{doctor}}); code != 200 || r2.Status != "started" {
		t.Fatalf("second start through c: %d %+v", code, r2)
	} else if v, _ := rdb.Get(t.Context(), fmt.Sprintf("{t}:lease:%d", r2.Session.ID)).Result(); !strings.HasPrefix(v, "b#") {
		t.Fatalf("second session's home %q, want b", v)
	}

	// kill -9 of the home: the session comes back elsewhere, same links.
	killed := time.Now()
	a.kill()
	var back time.Duration
	var rejoined *wsClient
	testutil.Eventually(t, 10*time.Second, func() error {
		w, err := tryJoin(c.gateway, dLink, doctor)
		if err != nil {
			return err
		}
		rejoined, back = w, time.Since(killed)
		return nil
	})
	t.Cleanup(func() { rejoined.c.CloseNow() })
	t.Logf("kill -9 of the home → doctor admitted again through c: %s", back.Round(time.Millisecond))
	if back > 10*time.Second {
		t.Fatalf("failover took %s", back)
	}
	var after sessionJSON
	b.srv.api(http.MethodGet, fmt.Sprintf("/api/sessions/%d", s.ID), nil, &after)
	if after.Port != s.Port || after.link(t, doctor) != dLink {
		t.Fatalf("links changed: port %d → %d", s.Port, after.Port)
	}
	// A node that comes back does not take the session back.
	a2 := startClusterNode(t, bin, "a", cs)
	time.Sleep(3 * testLeaseMS * time.Millisecond / 2) // a claim loop would have run several times
	if strings.Contains(a2.log(), "session restored") {
		t.Fatalf("the node that came back took a session:\n%s", a2.log())
	}
}

func countJoins(v session.View, uuid string) int {
	n := 0
	for _, e := range v.Events {
		if e.Type == session.EventJoin && strings.Contains(e.Text, uuid) {
			n++
		}
	}
	return n
}

// tryJoin dials a session through base and joins; it fails rather than
// failing the test, for polling.
func tryJoin(base, link, uuid string) (*wsClient, error) {
	var port int
	fmt.Sscanf(link[strings.Index(link, "/webrtc/")+len("/webrtc/"):], "%d", &port)
	u := strings.Replace(base, "http://", "ws://", 1) + fmt.Sprintf("/websocket/%d/", port)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf(`{"type":"join","key":%q,"uuid":%q,"name":"again"}`, keyOf(link), uuid)
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		c.CloseNow()
		return nil, err
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			c.CloseNow()
			return nil, err
		}
		if strings.Contains(string(data), `"welcome"`) {
			return &wsClient{c: c}, nil
		}
	}
}

// TestClusterHomeCutFromRedis: the home of a session cut from Redis (a
// proxy in between) stops serving its peers before another node holds
// the session's lease; then the session runs on the other node, whose
// gateway admits the peer again.
func TestClusterHomeCutFromRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true})
	rdb := srv.Client(t)
	proxy := redistest.NewProxy(t, srv.Addr)
	bin := buildRehabRTC(t)
	base := freePorts(t, 3)
	cs := clusterSpec{redis: srv.Addr, base: base + 1, count: 2, public: base}
	cut := cs
	cut.redis = proxy.Addr
	x := startClusterNode(t, bin, "x", cut)
	y := startClusterNode(t, bin, "y", cs)
	const doctor = "5d1c6a33-2a44-4e0e-8f5e-7a0b9c8d7e6f"
	code, r := x.srv.manage(map[string]any{"action": "start", "session_users": []string{doctor}})
	if code != http.StatusOK || r.Status != "started" {
		t.Fatalf("start on x: %d %+v", code, r)
	}
	link := r.Session.link(t, doctor)
	dc, _ := join(t, y.gateway, link, doctor, "Doctor") // through y, home x
	leaseKey := fmt.Sprintf("{t}:lease:%d", r.Session.ID)
	if v, err := rdb.Get(t.Context(), leaseKey).Result(); err != nil || !strings.HasPrefix(v, "x#") {
		t.Fatalf("lease %q = %q, %v; want x's", leaseKey, v, err)
	}

	proxy.Cut()
	cutAt := time.Now()
	var closedAt, takenAt time.Time
	var wg sync.WaitGroup
	wg.Go(func() {
		<-dc.done // the peer is told (server shutdown: reconnect)
		closedAt = time.Now()
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		v, err := rdb.Get(t.Context(), leaseKey).Result()
		if err == nil && strings.HasPrefix(v, "y#") {
			takenAt = time.Now()
			return nil
		}
		return fmt.Errorf("lease still %q (%v)", v, err)
	})
	wg.Wait()
	t.Logf("cut → home stopped serving: %s; cut → y holds the lease: %s",
		closedAt.Sub(cutAt).Round(time.Millisecond), takenAt.Sub(cutAt).Round(time.Millisecond))
	if !closedAt.Before(takenAt) {
		t.Fatalf("x served the session until %s after y took it", closedAt.Sub(takenAt))
	}
	if cc := websocket.CloseStatus(dc.err); cc == websocket.StatusNormalClosure {
		t.Fatalf("peer closed with %d, want a reconnect code", cc)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		w, err := tryJoin(y.gateway, link, doctor)
		if err == nil {
			w.c.CloseNow()
		}
		return err
	})
}

// TestClusterFailoverTrials measures, over REHABRTC_FAILOVER_TRIALS trials
// (default 3) and with a lease of REHABRTC_FAILOVER_LEASE_MS (default
// 1500), the time from a kill -9 of a session's home node to a
// WebSocket client admitted again through a surviving node's gateway with
// the same link (lease 1.5 s), and reports p50 and p99. The killed node is
// started again (it takes nothing back) before the next trial.
func TestClusterFailoverTrials(t *testing.T) {
	trials := 3
	if v, err := strconv.Atoi(os.Getenv("REHABRTC_FAILOVER_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	lease, _ := strconv.Atoi(os.Getenv("REHABRTC_FAILOVER_LEASE_MS"))
	cs, bin, nodes := clusterOf(t, 3, 2, lease)
	byID := map[string]*clusterNodeProc{}
	for _, n := range nodes {
		byID[n.id] = n
	}
	const doctor = "5d1c6a33-2a44-4e0e-8f5e-7a0b9c8d7e6f"
	_, r := nodes[0].srv.manage(map[string]any{"action": "start", "session_users": []string{doctor}})
	if r.Status != "started" {
		t.Fatalf("start: %+v", r)
	}
	link := r.Session.link(t, doctor)
	rdb := redis.NewClient(&redis.Options{Addr: cs.redis})
	defer rdb.Close()
	leaseKey := fmt.Sprintf("{t}:lease:%d", r.Session.ID)
	var times []time.Duration
	for i := range trials {
		v, err := rdb.Get(t.Context(), leaseKey).Result()
		if err != nil {
			t.Fatalf("trial %d: lease: %v", i, err)
		}
		home := byID[strings.SplitN(v, "#", 2)[0]]
		var other *clusterNodeProc
		for _, n := range byID {
			if n != home {
				other = n
				break
			}
		}
		killed := time.Now()
		home.kill()
		testutil.Eventually(t, 10*time.Second, func() error {
			w, err := tryJoin(other.gateway, link, doctor)
			if err == nil {
				w.c.CloseNow()
			}
			return err
		})
		times = append(times, time.Since(killed))
		byID[home.id] = startClusterNode(t, bin, home.id, cs)
	}
	slices.Sort(times)
	p := func(q float64) time.Duration { return times[min(len(times)-1, int(q*float64(len(times))))] }
	t.Logf("failover over %d trials (lease %d ms): p50 %s, p99 %s, max %s, all %v", trials, cmp.Or(lease, testLeaseMS),
		p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), times)
	if times[len(times)-1] > 10*time.Second {
		t.Fatalf("a failover took %s", times[len(times)-1])
	}
}

// TestClientFromNode: on a node's internal listener, the patient's address
// is the last X-Forwarded-For hop the proxying gateway wrote.
func TestClientFromNode(t *testing.T) {
	for _, tc := range []struct{ remote, xff, want string }{
		{"10.0.0.2:5555", "203.0.113.9", "203.0.113.9:0"},
		{"10.0.0.2:5555", "198.51.100.1, 203.0.113.9", "203.0.113.9:0"},
		{"10.0.0.2:5555", "", "10.0.0.2:5555"},
		{"10.0.0.2:5555", "garbage", "10.0.0.2:5555"},
		{"10.0.0.2:5555", "2001:db8::1", "[2001:db8::1]:0"},
	} {
		t.Run(tc.remote+" "+tc.xff, func(t *testing.T) {
			var got string
			h := clientFromNode(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
			r, _ := http.NewRequest(http.MethodGet, "/websocket/1/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			h.ServeHTTP(nil, r)
			if got != tc.want {
				t.Fatalf("remote %q, want %q", got, tc.want)
			}
		})
	}
}
