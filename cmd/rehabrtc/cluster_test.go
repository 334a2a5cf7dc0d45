package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/cluster"
	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// clusterConfigFile writes a configuration naming srv as the cluster's
// Redis.
func clusterConfigFile(t *testing.T, srv *redistest.Server, enabled bool) string {
	t.Helper()
	return writeClusterConfig(t, enabled, config.ClusterRedis{Addrs: []string{srv.Addr}})
}

func writeClusterConfig(t *testing.T, enabled bool, r config.ClusterRedis) string {
	t.Helper()
	c := config.Default()
	c.RehabRTC.DataDir = t.TempDir()
	c.RehabRTC.SFU.UDPPort, c.RehabRTC.SFU.TCPPort = 0, 0 // free media ports: tests run side by side
	c.RehabRTC.Cluster.Enabled = enabled
	c.RehabRTC.Cluster.Name = "clitest"
	c.RehabRTC.Cluster.InternalAddr = "127.0.0.1:4071"
	c.RehabRTC.Cluster.Redis = r
	return writeCfg(t, c)
}

// `cluster status` shows every live node from its heartbeat: its load and
// the sessions whose leases it holds.
func TestClusterStatus(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	path := clusterConfigFile(t, srv, false)
	status := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(t.Context(), append([]string{"cluster", "status", "--config", path}, args...), &out, &errb); err != nil {
			t.Fatalf("cluster status: %v\n%s", err, errb.String())
		}
		return out.String()
	}
	if got := status(); got != "cluster \"clitest\": 0 live nodes, 0 sessions, 0 peers\n" {
		t.Fatalf("empty cluster: %q", got)
	}
	for _, n := range []struct {
		id   string
		load cluster.Load
	}{{"node-a", cluster.Load{Peers: 5, Sessions: 2}}, {"node-b", cluster.Load{Peers: 1, Sessions: 1}}} {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rdb.Close() })
		node, err := cluster.Join(t.Context(), rdb, cluster.Config{Name: "clitest", NodeID: n.id,
			InternalAddr: "10.0.0.1:4071", LeaseTime: time.Second, Load: func() cluster.Load { return n.load }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close(context.Background()) })
		if n.id == "node-b" {
			if _, err := node.Acquire(t.Context(), 17); err != nil {
				t.Fatal(err)
			}
		}
	}
	testutil.Eventually(t, 3*time.Second, func() error { // node-b's next beat lists its lease
		out := status()
		return testutil.Until(strings.Contains(out, "2 live nodes, 3 sessions, 6 peers") &&
			strings.Contains(out, "node-a") && lineHas(out, "node-b", "10.0.0.1:4071", " 17"), "status:\n%s", out)
	})
	t.Logf("status:\n%s", status())
	var got struct {
		Nodes []struct {
			ID       string       `json:"id"`
			Load     cluster.Load `json:"load"`
			Sessions []int64      `json:"sessions"`
			Expires  int64        `json:"heartbeat_expires_in_ms"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(status("--json")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 2 || got.Nodes[0].ID != "node-a" || got.Nodes[0].Load.Peers != 5 || len(got.Nodes[0].Sessions) != 0 ||
		got.Nodes[1].Sessions[0] != 17 || got.Nodes[1].Expires <= 0 || got.Nodes[1].Expires > 1000 {
		t.Fatalf("--json: %+v", got)
	}
}

// With redis.master_name, status finds the master through the Sentinels.
func TestClusterStatusThroughSentinel(t *testing.T) {
	sen := redistest.StartSentinel(t)
	path := writeClusterConfig(t, false, config.ClusterRedis{Addrs: []string{sen.Addr}, MasterName: sen.MasterName})
	node, err := cluster.Join(t.Context(), sen.Master.Client(t), cluster.Config{Name: "clitest", NodeID: "on-master"})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close(context.Background())
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"cluster", "status", "--config", path}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	if !lineHas(out.String(), "on-master") {
		t.Fatalf("status through the Sentinel:\n%s", out.String())
	}
}

func lineHas(out string, parts ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestClusterCLIErrors(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	enabled := clusterConfigFile(t, srv, true)
	srv.Kill()
	for name, tc := range map[string]struct {
		args    []string
		wantErr string
	}{
		"no subcommand":   {[]string{"cluster"}, "missing subcommand"},
		"unknown":         {[]string{"cluster", "grow"}, `unknown subcommand "grow"`},
		"no Redis":        {[]string{"cluster", "status"}, "no Redis configured"},
		"Redis down":      {[]string{"cluster", "status", "--config", enabled}, "cluster status: list nodes"},
		"serve as a node": {[]string{"serve", "--config", enabled}, "cluster secret"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(t.Context(), tc.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
