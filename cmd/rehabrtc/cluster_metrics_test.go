package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// TestClusterMetrics: the cluster metrics of two nodes move with what
// they do: a start placed on the other node, a page and a WebSocket
// proxied to the home, an action forwarded to it, the home's sessions and
// leases, the one node serving the consultations, and after a kill -9 of
// the home, the session claimed by the survivor.
func TestClusterMetrics(t *testing.T) {
	cs, _, nodes := clusterOf(t, 2, 2, 0)
	rdb := redis.NewClient(&redis.Options{Addr: cs.redis})
	defer rdb.Close()
	const doctor = "5d1c6a33-2a44-4e0e-8f5e-7a0b9c8d7e6f"
	// Both idle: placement ties to the lowest id, a; asked through b.
	a, b := nodes[0], nodes[1]
	code, r := b.srv.manage(map[string]any{"action": "start", "session_users": []string{doctor}})
	if code != http.StatusOK || r.Status != "started" {
		t.Fatalf("start through b: %d %+v", code, r)
	}
	if v, _ := rdb.Get(t.Context(), fmt.Sprintf("{t}:lease:%d", r.Session.ID)).Result(); !strings.HasPrefix(v, "a#") {
		t.Fatalf("session's home %q, want a (placement ties to the lowest id)", v)
	}
	link := r.Session.link(t, doctor)
	if code, err := httpGet(b.gateway + link[strings.Index(link, "/webrtc/"):]); err != nil || code != 200 {
		t.Fatalf("page through b: %d %v", code, err)
	}
	join(t, b.gateway, link, doctor, "Doctor") // proxied to a
	if code, r := b.srv.manage(map[string]any{"action": "invite", "id_session": r.Session.ID,
		"session_users": []string{"0e1a2b3c-4d5e-4f60-8a1b-2c3d4e5f6a7b"}}); code != 200 || r.Status != "invited" {
		t.Fatalf("invite through b: %d %+v", code, r)
	}
	mb, ma := scrape(t, b.service), scrape(t, a.service)
	for _, want := range []struct {
		m    map[string]float64
		name string
		min  float64
	}{
		{mb, "rehabrtc_cluster_starts_placed_total", 1},
		{mb, `rehabrtc_cluster_proxied_requests_total{route="session"}`, 1},
		{mb, `rehabrtc_cluster_proxied_websockets_total{route="session"}`, 1},
		{mb, "rehabrtc_cluster_actions_forwarded_total", 1},
		{ma, "rehabrtc_cluster_sessions_homed", 1},
		{ma, "rehabrtc_cluster_leases_held", 1},
	} {
		if got, ok := want.m[want.name]; !ok || got < want.min {
			t.Errorf("%s = %v (present %v), want ≥ %v", want.name, got, ok, want.min)
		}
	}
	if ma["rehabrtc_cluster_sessions_homed"] != 1 || mb["rehabrtc_cluster_sessions_homed"] != 0 {
		t.Errorf("sessions homed a %v b %v, want 1 and 0", ma["rehabrtc_cluster_sessions_homed"], mb["rehabrtc_cluster_sessions_homed"])
	}
	if served := ma["rehabrtc_cluster_consultations_served"] + mb["rehabrtc_cluster_consultations_served"]; served != 1 {
		t.Errorf("nodes serving the consultations: %v, want 1", served)
	}
	for name, m := range map[string]map[string]float64{"a": ma, "b": mb} {
		if age, ok := m["rehabrtc_cluster_heartbeat_age_seconds"]; !ok || age < 0 || age > float64(testLeaseMS)/1000 {
			t.Errorf("%s heartbeat age %v s (present %v), want within the lease", name, age, ok)
		}
	}

	a.kill()
	testutil.Eventually(t, 10*time.Second, func() error {
		m := scrape(t, b.service)
		return testutil.Until(m["rehabrtc_cluster_sessions_claimed_total"] >= 1 && m["rehabrtc_cluster_sessions_homed"] == 1 &&
			m["rehabrtc_cluster_consultations_served"] == 1,
			"b after the kill: claimed %v, homed %v, consultations %v", m["rehabrtc_cluster_sessions_claimed_total"],
			m["rehabrtc_cluster_sessions_homed"], m["rehabrtc_cluster_consultations_served"])
	})
	// Found through a's held set: the claim by lost node, not the sweep.
	if m := scrape(t, b.service); m[`rehabrtc_cluster_claim_found_total{found="lost_node"}`] < 1 ||
		m[`rehabrtc_cluster_claim_found_total{found="sweep"}`] != 0 {
		t.Errorf("b found the session: lost node %v, sweep %v; want it through a's set", m[`rehabrtc_cluster_claim_found_total{found="lost_node"}`],
			m[`rehabrtc_cluster_claim_found_total{found="sweep"}`])
	}
}

// scrape reads the unlabelled and labelled samples of /metrics on the
// service port: name or name{labels} → value.
func scrape(t *testing.T, service string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(service + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
