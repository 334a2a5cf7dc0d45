package main

import (
	"bytes"
	"cmp"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rehabrtc/rehabrtc/internal/cluster"
	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// drainLeaseMS is long on purpose: the claim loop then runs every 10 s and
// a lease would expire after 30 s, so a session back within a few seconds
// of the SIGTERM can only have been handed over.
const drainLeaseMS = 30000

// TestClusterDrain: SIGTERM to a node serving two sessions (drain_on_stop,
// the default): each session is handed to the least loaded other node (one
// to b, one to c), which claims it at once; the clients are told to
// reconnect and are admitted again, with the same links, through the
// other gateways within 3 s; the drained node exits cleanly.
func TestClusterDrain(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true})
	rdb := srv.Client(t)
	bin := buildRehabRTC(t)
	base := freePorts(t, 4)
	cs := clusterSpec{redis: srv.Addr, base: base + 1, count: 3, public: base, leaseMS: drainLeaseMS}
	a := startClusterNode(t, bin, "a", cs)
	const doctor, patient = "5d1c6a33-2a44-4e0e-8f5e-7a0b9c8d7e6f", "7b0f40c5-8b7f-4d3b-9c39-6a1f2e3d4c5b"
	var sessions []sessionJSON
	for range 2 { // both on a: it is alone
		code, r := a.srv.manage(map[string]any{"action": "start", "session_users": []string{doctor}, "session_participants": []string{patient}})
		if code != http.StatusOK || r.Status != "started" {
			t.Fatalf("start on a: %d %+v", code, r)
		}
		sessions = append(sessions, r.Session)
	}
	b := startClusterNode(t, bin, "b", cs)
	c := startClusterNode(t, bin, "c", cs)
	testutil.Eventually(t, 10*time.Second, func() error {
		nodes, err := cluster.Nodes(t.Context(), rdb, "t")
		if err != nil {
			return err
		}
		return testutil.Until(len(nodes) == 3, "%d live nodes", len(nodes))
	})
	s1, s2 := sessions[0], sessions[1]
	c1, _ := join(t, b.gateway, s1.link(t, patient), patient, "Patient") // through b, home a
	c2, _ := join(t, a.gateway, s2.link(t, doctor), doctor, "Doctor")    // through a itself

	term := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*wsClient{c1, c2} {
		if code := cl.closed(); code == websocket.StatusNormalClosure || code == -1 {
			t.Fatalf("client closed with %d, want a reconnect code", code)
		}
	}
	for _, tc := range []struct {
		s             sessionJSON
		uuid, gateway string
	}{{s1, patient, c.gateway}, {s2, doctor, b.gateway}} {
		var back time.Duration
		testutil.Eventually(t, 10*time.Second, func() error {
			w, err := tryJoin(tc.gateway, tc.s.link(t, tc.uuid), tc.uuid)
			if err != nil {
				return err
			}
			back = time.Since(term)
			w.c.CloseNow()
			return nil
		})
		t.Logf("session %d: client admitted again through another gateway %s after the SIGTERM", tc.s.ID, back.Round(time.Millisecond))
		if back > 3*time.Second {
			t.Errorf("session %d back after %s: not handed over (the claim loop runs every %d s)", tc.s.ID, back, drainLeaseMS/3000)
		}
	}
	select {
	case <-a.done:
		if !a.cmd.ProcessState.Success() {
			t.Errorf("drained node exited with %v:\n%s", a.cmd.ProcessState, a.log())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("drained node still running:\n%s", a.log())
	}
	var homes []string
	for _, s := range sessions {
		v, err := rdb.Get(t.Context(), fmt.Sprintf("{t}:lease:%d", s.ID)).Result()
		if err != nil {
			t.Fatalf("session %d has no home after the drain: %v", s.ID, err)
		}
		homes = append(homes, v[:1])
		var after sessionJSON
		if code := b.srv.api(http.MethodGet, fmt.Sprintf("/api/sessions/%d", s.ID), nil, &after); code != 200 || after.Port != s.Port ||
			after.link(t, doctor) != s.link(t, doctor) || after.link(t, patient) != s.link(t, patient) {
			t.Fatalf("session %d after the drain: HTTP %d, port %d → %d, links changed?", s.ID, code, s.Port, after.Port)
		}
	}
	slices.Sort(homes)
	if strings.Join(homes, "") != "bc" {
		t.Fatalf("sessions went to %v, want one to b and one to c (least loaded)", homes)
	}
	if n := strings.Count(a.log(), "session handed over"); n != 2 {
		t.Fatalf("%d sessions handed over, want 2:\n%s", n, a.log())
	}
}

// TestClusterDrainCommand: `rehabrtc cluster drain a` makes node a hand its
// session to b at once and exit; the command returns once a has left; a
// node id that is not live is a clear error.
func TestClusterDrainCommand(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true})
	rdb := srv.Client(t)
	bin := buildRehabRTC(t)
	base := freePorts(t, 3)
	cs := clusterSpec{redis: srv.Addr, base: base + 1, count: 2, public: base, leaseMS: drainLeaseMS}
	a := startClusterNode(t, bin, "a", cs)
	const doctor = "5d1c6a33-2a44-4e0e-8f5e-7a0b9c8d7e6f"
	code, r := a.srv.manage(map[string]any{"action": "start", "session_users": []string{doctor}})
	if code != http.StatusOK || r.Status != "started" {
		t.Fatalf("start on a: %d %+v", code, r)
	}
	b := startClusterNode(t, bin, "b", cs)
	testutil.Eventually(t, 10*time.Second, func() error {
		nodes, err := cluster.Nodes(t.Context(), rdb, "t")
		return cmp.Or(err, testutil.Until(len(nodes) == 2, "%d live nodes", len(nodes)))
	})
	link := r.Session.link(t, doctor)
	cl, _ := join(t, b.gateway, link, doctor, "Doctor") // through b, home a

	c := config.Default() // what an operator's machine needs: the cluster's name and Redis
	c.RehabRTC.DataDir = t.TempDir()
	c.RehabRTC.Cluster.Name, c.RehabRTC.Cluster.Redis.Addrs = "t", []string{srv.Addr}
	path := filepath.Join(t.TempDir(), "ops.json")
	if data, err := c.JSON(); err != nil || os.WriteFile(path, data, 0o600) != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"cluster", "drain", "--config", path, "nope"}, &out, &errb); err == nil ||
		!strings.Contains(err.Error(), `no live node "nope"`) {
		t.Fatalf("drain of an unknown node: %v", err)
	}
	start := time.Now()
	if err := run(t.Context(), []string{"cluster", "drain", "--config", path, "a"}, &out, &errb); err != nil {
		t.Fatalf("cluster drain a: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "drained and left the cluster") {
		t.Fatalf("output: %s", out.String())
	}
	select {
	case <-a.done:
		if !a.cmd.ProcessState.Success() {
			t.Fatalf("drained node exited with %v:\n%s", a.cmd.ProcessState, a.log())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("drained node still running:\n%s", a.log())
	}
	if code := cl.closed(); code == websocket.StatusNormalClosure || code == -1 {
		t.Fatalf("client closed with %d, want a reconnect code", code)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		w, err := tryJoin(b.gateway, link, doctor)
		if err == nil {
			w.c.CloseNow()
		}
		return err
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("session back %s after the drain command: not handed over (claim loop every %d s)", took, drainLeaseMS/3000)
	}
	if v, _ := rdb.Get(t.Context(), fmt.Sprintf("{t}:lease:%d", r.Session.ID)).Result(); !strings.HasPrefix(v, "b#") {
		t.Fatalf("home after the drain %q, want b", v)
	}
}
