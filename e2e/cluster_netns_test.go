package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// The partition test runs two cluster nodes, x and y, and redis-server,
// each in a network namespace of its own, on one bridge; the test's clients
// dial from the bridge's namespace ("hub"), like patients on the Internet:
//
//	hub: bridge 10.78.0.1 ─┬─ x 10.78.0.2   (gateway :8000, internal :4071)
//	                       ├─ y 10.78.0.3
//	                       └─ redis 10.78.0.10:6379
//
// The cut is nftables in x's namespace dropping everything to and from
// Redis and y, while the clients still reach x: the partition where a home
// could go on serving the pages it can still see.

const (
	partHub   = "10.78.0.1"
	partRedis = "10.78.0.10"
	partLease = 2500 // ms: long enough that no node loses its membership on a loaded machine before the cut; what is checked is an order, not a time
)

type clusterNet struct {
	*netns
	hub    string
	ns     map[string]string // x, y, redis → namespace
	hubDir string
}

// newClusterNet builds the namespaces; t.Cleanup removes them, also on failure.
func newClusterNet(t *testing.T) *clusterNet {
	t.Helper()
	n := &clusterNet{netns: newNetns(t, "cl3p", "ip", "nft", "redis-server"), ns: map[string]string{}}
	n.hub = n.add("hub")
	n.run("ip", "-n", n.hub, "link", "add", "br0", "type", "bridge")
	n.run("ip", "-n", n.hub, "addr", "add", partHub+"/24", "dev", "br0")
	n.run("ip", "-n", n.hub, "link", "set", "br0", "up")
	for i, m := range []struct{ name, ip string }{{"x", "10.78.0.2"}, {"y", "10.78.0.3"}, {"redis", partRedis}} {
		ns := n.add(m.name)
		n.ns[m.name] = ns
		a, b := fmt.Sprintf("%s%da", n.id, i), fmt.Sprintf("%s%db", n.id, i)
		n.run("ip", "link", "add", a, "netns", n.hub, "type", "veth", "peer", "name", b, "netns", ns)
		n.run("ip", "-n", n.hub, "link", "set", a, "master", "br0", "up")
		n.run("ip", "-n", ns, "addr", "add", m.ip+"/24", "dev", b)
		n.run("ip", "-n", ns, "link", "set", b, "up")
	}
	return n
}

// hubDial dials from the hub namespace, where the clients are.
func (n *clusterNet) hubDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialFrom(n.hub, 3*time.Second)(ctx, network, addr)
}

func (n *clusterNet) startRedis() *redis.Client {
	n.t.Helper()
	dir := n.t.TempDir()
	n.process("redis-server", n.ns["redis"], os.Kill, "redis-server", "--bind", partRedis, "--port", "6379", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no") // reached from the other namespaces
	rdb := redis.NewClient(&redis.Options{Addr: partRedis + ":6379", Dialer: n.hubDial,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	n.t.Cleanup(func() { rdb.Close() })
	testutil.Eventually(n.t, 10*time.Second, func() error { return rdb.Ping(n.t.Context()).Err() })
	return rdb
}

// partNode is a node of the partition test.
type partNode struct {
	name, ip string
	out      *testutil.Buffer
	exited   <-chan struct{}
	api      *http.Client // from the node's own namespace, to 127.0.0.1:4070
}

func (n *clusterNet) startNode(name, ip string) *partNode {
	n.t.Helper()
	p := &partNode{name: name, ip: ip}
	p.api, p.out, p.exited = n.serve("node "+name, n.ns[name], os.Kill,
		map[string]any{"hostname": "rehab.test", "external_port": 8000, "local_base_port": 9000, "max_sessions": 4},
		map[string]any{
			"url_scheme": "http",
			"gateway":    map[string]any{"enabled": true, "listen": ":8000", "hosts": []string{"10.78.0.2", "10.78.0.3"}},
			"turn":       map[string]any{"listen": ":3478"},
			"cluster": map[string]any{"enabled": true, "name": "part", "node_id": name, "lease_time_ms": partLease,
				"internal_addr": ip + ":4071", "redis": map[string]any{"addrs": []string{partRedis + ":6379"}}},
		})
	return p
}

// start starts a session of the therapist and both patients on this node.
func (p *partNode) start(t *testing.T) Session {
	return startSessionVia(t, p.api, patient1UUID, patient2UUID)
}

// admission is one WebSocket client admitted (welcome received) through a
// gateway, and when its connection ended.
type admission struct {
	via      string
	admitted time.Time
	ended    chan struct{}
	endedAt  time.Time
	conn     *websocket.Conn
}

// admit dials the session through gateway (from the hub) and joins with
// link's key; it returns an error when the client is not admitted.
func (n *clusterNet) admit(ctx context.Context, via, gateway string, port int, link, uuid string) (*admission, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: n.hubDial}}
	c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/websocket/%d/", gateway, port), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	_, key, _ := strings.Cut(link, "key=")
	msg, _ := json.Marshal(map[string]any{"type": "join", "key": key, "uuid": uuid, "name": "partition"})
	if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
		c.CloseNow()
		return nil, err
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			c.CloseNow()
			return nil, err
		}
		if bytes.Contains(data, []byte(`"welcome"`)) {
			break
		}
	}
	a := &admission{via: via, admitted: time.Now(), ended: make(chan struct{}), conn: c}
	go func() {
		defer close(a.ended)
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				a.endedAt = time.Now()
				return
			}
		}
	}()
	n.t.Cleanup(func() { c.CloseNow(); <-a.ended })
	return a, nil
}

// Issue 15: the home of a session cut from Redis and from the other node (while its clients still
// reach it) stops serving the session, closing its clients' WebSockets, before the other node
// holds the session's lease; no client is admitted through the cut node once the session stopped
// there, and every client admitted by the cut home had its connection ended before the other node
// took the session, which then admits the clients through its gateway.
func TestClusterPartition(t *testing.T) {
	n := newClusterNet(t)
	rdb := n.startRedis()
	x := n.startNode("x", "10.78.0.2")
	y := n.startNode("y", "10.78.0.3")
	sess := x.start(t)
	leaseKey := fmt.Sprintf("{part}:lease:%d", sess.ID)
	if v, err := rdb.Get(t.Context(), leaseKey).Result(); err != nil || !strings.HasPrefix(v, "x#") {
		t.Fatalf("lease %q = %q, %v; want x's", leaseKey, v, err)
	}
	ctx := t.Context()
	tLink, pLink, probeLink := sess.link(t, therapistUUID), sess.link(t, patient1UUID), sess.link(t, patient2UUID)
	direct, err := n.admit(ctx, "x", "10.78.0.2:8000", sess.Port, tLink, therapistUUID) // home's own gateway
	if err != nil {
		t.Fatalf("therapist through x: %v", err)
	}
	proxied, err := n.admit(ctx, "y→x", "10.78.0.3:8000", sess.Port, pLink, patient1UUID) // through y, home x
	if err != nil {
		t.Fatalf("patient through y: %v", err)
	}
	_ = proxied // its path to x is cut with x; x's side of it ends with the session there

	// The cut: x keeps its clients, loses Redis and y.
	rules := fmt.Sprintf(`table inet cl3cut {
	chain in { type filter hook input priority 0; policy accept; ip saddr { %[1]s, 10.78.0.3 } drop; }
	chain out { type filter hook output priority 0; policy accept; ip daddr { %[1]s, 10.78.0.3 } drop; }
}`, partRedis)
	n.nft(n.ns["x"], rules)
	cutAt := time.Now()

	// Clients keep trying x's gateway, every 100 ms, until y holds the lease and 2 s more.
	var (
		mu       sync.Mutex
		throughX []*admission
		probing  sync.WaitGroup
	)
	stopProbe := make(chan struct{})
	probing.Go(func() {
		for {
			select {
			case <-stopProbe:
				return
			case <-time.After(100 * time.Millisecond):
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			a, err := n.admit(pctx, "x", "10.78.0.2:8000", sess.Port, probeLink, patient2UUID)
			cancel()
			if err == nil {
				a.conn.CloseNow() // the next probe would replace it anyway (same person)
				mu.Lock()
				throughX = append(throughX, a)
				mu.Unlock()
			}
		}
	})
	var takenAt time.Time
	testutil.Eventually(t, 15*time.Second, func() error {
		v, err := rdb.Get(ctx, leaseKey).Result()
		if err == nil && strings.HasPrefix(v, "y#") {
			takenAt = time.Now()
			return nil
		}
		return fmt.Errorf("lease still %q (%v)", v, err)
	})
	select {
	case <-direct.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("x's client still connected 5 s after y took the session")
	}
	// y admits the patient through its own gateway (retrying while it restores the session).
	var again *admission
	testutil.Eventually(t, 10*time.Second, func() error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		a, err := n.admit(pctx, "y", "10.78.0.3:8000", sess.Port, pLink, patient1UUID)
		again = a
		return err
	})
	time.Sleep(2 * time.Second) // the probes go on through x while y serves the session: none may get in
	close(stopProbe)
	probing.Wait()

	t.Logf("cut → x closed its client: %v; cut → y holds the lease: %v; cut → y admits the patient: %v",
		direct.endedAt.Sub(cutAt).Round(time.Millisecond), takenAt.Sub(cutAt).Round(time.Millisecond),
		again.admitted.Sub(cutAt).Round(time.Millisecond))
	if !direct.endedAt.Before(takenAt) {
		t.Errorf("x served its client until %v after y took the lease", direct.endedAt.Sub(takenAt))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(throughX) == 0 {
		t.Error("no client was admitted through x after the cut: the probes did not run")
	}
	for _, a := range throughX {
		if !a.admitted.Before(direct.endedAt) {
			t.Errorf("a client admitted through x %v after the cut, after x stopped serving the session (%v after the cut; y took it at %v)",
				a.admitted.Sub(cutAt), direct.endedAt.Sub(cutAt), takenAt.Sub(cutAt))
		}
	}
	t.Logf("%d clients admitted through x between the cut and x stopping the session, none after", len(throughX))
	if !again.admitted.After(takenAt) {
		t.Errorf("y admitted the patient before it held the lease")
	}
	select {
	case <-y.exited:
		t.Errorf("y exited:\n%s", y.out)
	default:
	}
	// The cut node, having lost its membership, exits for its supervisor to restart it.
	select {
	case <-x.exited:
		t.Logf("cut → x exited: %v", time.Since(cutAt).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Errorf("the cut node x did not exit")
	}
}
