package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// clusterLeaseMS is the lease of the browser failover test: 2.5 s, so the
// claim (lease expiry plus up to a third of a lease) takes 1.7–3.3 s and
// the pages' reconnect, SFU renegotiation and first frames keep a margin
// within the 10 s of issue 15 on a loaded 2-core machine, while a node
// whose heartbeat is late by up to 2 s (a loaded machine with Chromium,
// fsync on every Redis write) keeps its membership: with 1.5 s, nodes
// sometimes lost theirs and exited before the test began. The default 5 s
// lease alone takes 3.3–6.7 s to fail over (TestClusterFailoverTrials);
// REHABRTC_E2E_CLUSTER_LEASE_MS=5000 runs this test with it.
const clusterLeaseMS = 2500

// clusterNode is one `rehabrtc serve` of a test cluster.
type clusterNode struct {
	*server
	id string
}

// startCluster starts n nodes on one redis-server (AOF, fsync always),
// sharing a session port range and the public port of the links (a load
// balancer's, which nobody listens on: the pages open a node's gateway).
// Sessions are forced to the SFU, so media goes through the home node.
func startCluster(t *testing.T, n, leaseMS int) []*clusterNode {
	t.Helper()
	rs := redistest.Start(t, redistest.Options{AOF: true})
	buildBinary(t)
	const sessions = 3
	shared := testutil.FreePorts(t, sessions+1) // public port, then the session ports
	nodes := make([]*clusterNode, n)
	for i := range nodes {
		id := string(rune('a' + i))
		own := testutil.FreePorts(t, 3) // service, gateway, internal
		dir := t.TempDir()
		cfg := map[string]any{
			"Service": map[string]any{"name": "VideoRehabService", "hostname": "127.0.0.1", "port": own},
			"WebRTC": map[string]any{
				"hostname": "127.0.0.1", "external_port": shared, "local_base_port": shared + 1, "max_sessions": sessions,
			},
			"RehabRTC": map[string]any{
				"data_dir": dir, "api_keys": []string{apiKey}, "url_scheme": "http", "media_mode": "sfu",
				"gateway": map[string]any{"enabled": true, "listen": fmt.Sprintf("127.0.0.1:%d", own+1)},
				"turn":    map[string]any{"listen": "127.0.0.1:0"},
				"sfu":     map[string]any{"udp_port": 0, "tcp_port": 0}, // three nodes on one host: free media ports
				"cluster": map[string]any{
					"enabled": true, "name": "e2e", "node_id": id, "lease_time_ms": leaseMS,
					"internal_addr": fmt.Sprintf("127.0.0.1:%d", own+2), "redis": map[string]any{"addrs": []string{rs.Addr}},
				},
			},
		}
		s := &server{t: t, dir: dir, cfgPath: dir + "/config.json",
			service: fmt.Sprintf("http://127.0.0.1:%d", own), gateway: fmt.Sprintf("http://127.0.0.1:%d", own+1)}
		b, _ := json.MarshalIndent(cfg, "", "  ")
		if err := os.WriteFile(s.cfgPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s.start()
		t.Cleanup(s.stop)
		t.Cleanup(func() { // before stop, which says nothing of a node that has exited
			select {
			case <-s.exited:
				if t.Failed() {
					t.Logf("node %s exited before the end; its output:\n%s", id, s.out)
				}
			default:
			}
		})
		nodes[i] = &clusterNode{server: s, id: id}
	}
	return nodes
}

// through is link opened through gateway instead of the public host:port.
func through(t *testing.T, link, gateway string) string {
	t.Helper()
	i := strings.Index(link, "/webrtc/")
	if i < 0 {
		t.Fatalf("not a session link: %s", link)
	}
	return gateway + link[i:]
}

// connCounter counts, before the page's own scripts run, the WebSockets and RTCPeerConnections the
// page makes (window.__ws, window.__pcs).
const connCounter = pcCounter + `;(() => {
	const Real = window.WebSocket; window.__ws = 0;
	window.WebSocket = function (...a) { window.__ws++; return new Real(...a); };
	window.WebSocket.prototype = Real.prototype;
	Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})()`

// backWatch records in the page, every 100 ms, the first time after the page reconnected (a new
// WebSocket) and built new media connections (to the new home's SFU) that the frames it decodes
// from its remote peers grow: when its person sees video again. The page's outage may be shorter
// than one sample (a drain), so it is not watched for.
const backWatch = `(() => {
	window.__back = 0; const ws0 = window.__ws, pcs0 = window.__pcs.length; let last = -1;
	const iv = setInterval(async () => {
		if (window.__ws === ws0 || window.__pcs.length === pcs0 || window.rehab.state.connection !== 'joined') { last = -1; return; }
		const s = await window.rehab.stats();
		const f = Object.values(s).reduce((sum, v) => sum + (v.framesDecoded || 0), 0);
		if (last >= 0 && f > last && Object.keys(s).length > 0) { window.__back = Date.now(); clearInterval(iv); }
		last = f;
	}, 100);
})()`

// waitBack waits for backWatch to fire and returns when it did; on a timeout it logs what the page
// holds (connection, media mode, peer connections, decoded frames) before failing.
func waitBack(p *page, timeout time.Duration) time.Time {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ms, err := eval[int64](p, `window.__back`); err == nil && ms > 0 {
			return time.UnixMilli(ms)
		}
		time.Sleep(200 * time.Millisecond)
	}
	state, err := eval[string](p, `(async () => JSON.stringify({conn: window.rehab.state.connection, mode: window.rehab.mediaMode,
		id: window.rehab.state.id, peers: window.rehab.peers.map((x) => x.id), ws: window.__ws,
		pcs: window.__pcs.map((pc) => pc.connectionState + '/' + pc.signalingState + '/' + pc.getTransceivers().length),
		stats: await window.rehab.stats()}))()`)
	p.shot("no-video-again")
	p.t.Fatalf("%s: video not back within %v; page: %s (%v)", p.name, timeout, state, err)
	return time.Time{}
}

// twoPagesThrough opens the therapist's page through b's gateway and the patient's through c's
// (the session's own links), waits until both decode each other's video through the SFU, and
// marks them so that waitBack can see video come back and a reload shows (__sameDocument).
func twoPagesThrough(t *testing.T, sess Session, b, c *clusterNode) []*page {
	t.Helper()
	pages := []*page{
		openPageWith(t, "therapist", through(t, sess.link(t, therapistUUID), b.gateway)+"&name=Dr%20Roy&lang=en", pageSetup{script: connCounter}),
		openPageWith(t, "patient", through(t, sess.link(t, patient1UUID), c.gateway)+"&name=Alice&lang=en", pageSetup{script: connCounter}),
	}
	for _, p := range pages {
		p.waitJS("joined with the other, on the SFU", `window.rehab && window.rehab.state.connection === 'joined' && window.rehab.peers.length === 1 && window.rehab.mediaMode === 'sfu'`, 20*time.Second)
	}
	for _, p := range pages {
		p.waitVideoFlowing(1, 20*time.Second)
		p.js(backWatch)
		p.js(`window.__sameDocument = true`) // gone if the page reloads
	}
	return pages
}

// Issue 15: a session started on node a, two pages joined through the gateways of b and c (the
// same links), both decoding each other's video through a's SFU; kill -9 of a: the session is
// restored on b or c on the same port with the same links, and both pages, without a reload,
// decode video again within 10 s of the kill.
func TestClusterBrowsersSurviveHomeKill(t *testing.T) {
	needBrowser(t)
	lease := clusterLeaseMS
	if v, err := strconv.Atoi(os.Getenv("REHABRTC_E2E_CLUSTER_LEASE_MS")); err == nil && v > 0 {
		lease = v
	}
	nodes := startCluster(t, 3, lease)
	a, b, c := nodes[0], nodes[1], nodes[2]
	sess := a.manage("start", 0, []string{therapistUUID}, []string{patient1UUID})
	pages := twoPagesThrough(t, sess, b, c)
	if home := a.session(sess.ID); len(home.Peers) != 2 {
		t.Fatalf("home a sees %d peers, want 2", len(home.Peers))
	}

	killed := time.Now()
	a.kill()
	for _, p := range pages {
		p.waitJS("reconnecting", `window.rehab.state.connection !== 'joined'`, 5*time.Second)
	}
	var worst time.Duration
	for _, p := range pages {
		took := waitBack(p, 20*time.Second).Sub(killed) // measured below against 10 s
		t.Logf("%s: video again %v after the kill -9 of the home (lease %d ms)", p.name, took.Round(time.Millisecond), lease)
		worst = max(worst, took)
	}
	if worst > 10*time.Second {
		t.Errorf("video came back %v after the kill, want within 10 s", worst)
	}
	after := b.session(sess.ID)
	if after.Port != sess.Port || after.link(t, therapistUUID) != sess.link(t, therapistUUID) || after.link(t, patient1UUID) != sess.link(t, patient1UUID) {
		t.Fatalf("links changed after the failover: port %d → %d", sess.Port, after.Port)
	}
	if peers := len(b.session(sess.ID).Peers) + len(c.session(sess.ID).Peers); peers != 2 {
		t.Fatalf("the new home sees %d peers, want 2", peers)
	}
	for _, p := range pages {
		p.waitVideoFlowing(1, 10*time.Second) // and keeps decoding
		if same, _ := eval[bool](p, `window.__sameDocument === true`); !same {
			t.Errorf("%s: the page was reloaded", p.name)
		}
	}
}

// Issue 15: a node drained by SIGTERM (drain_on_stop, the default) hands its session to another
// node at once: both pages, opened through the other nodes' gateways, decode video again without
// a reload, and the drained node exits.
func TestClusterBrowsersThroughDrain(t *testing.T) {
	needBrowser(t)
	// A long lease: the claim loop (every 10 s) cannot be what brings the session back quickly.
	nodes := startCluster(t, 3, 30000)
	a, b, c := nodes[0], nodes[1], nodes[2]
	sess := a.manage("start", 0, []string{therapistUUID}, []string{patient1UUID})
	pages := twoPagesThrough(t, sess, b, c)
	term := time.Now()
	a.stop() // SIGTERM; waits for the process to exit (10 s at most)
	t.Logf("drained node exited %v after SIGTERM", time.Since(term).Round(time.Millisecond))
	for _, p := range pages {
		took := waitBack(p, 20*time.Second).Sub(term)
		t.Logf("%s: video again %v after the SIGTERM of the home", p.name, took.Round(time.Millisecond))
		if took > 10*time.Second {
			t.Errorf("%s: video came back %v after the drain began, want within 10 s", p.name, took)
		}
		if same, _ := eval[bool](p, `window.__sameDocument === true`); !same {
			t.Errorf("%s: the page was reloaded", p.name)
		}
	}
	if after := b.session(sess.ID); after.Port != sess.Port || after.link(t, patient1UUID) != sess.link(t, patient1UUID) {
		t.Fatalf("links changed after the drain: port %d → %d", sess.Port, after.Port)
	}
}
