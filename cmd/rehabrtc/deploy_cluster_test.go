package main

import (
	"fmt"
	"slices"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/config"
)

// TestDeployClusterConfigs: the three files of the README's "three nodes
// on one machine" (deploy/cluster) load and validate, share the cluster
// (name, Redis, session port pool, links' port), and differ in everything
// one machine cannot share (node id, service, gateway, internal and TURN
// addresses, SFU media ports, data directory). TestClusterThreeNodes runs the same layout
// on free ports.
func TestDeployClusterConfigs(t *testing.T) {
	env := func(k string) string {
		if k == "REHABRTC_API_KEYS" {
			return "0123456789abcdef0123456789abcdef0123456789abcdef" // as the README exports it
		}
		return ""
	}
	var cfgs []*config.Config
	for _, n := range []string{"a", "b", "c"} {
		cfg, err := config.LoadEnv("../../deploy/cluster/node-"+n+".json", env)
		if err != nil {
			t.Fatalf("node %s: %v", n, err)
		}
		cfgs = append(cfgs, cfg)
	}
	a := cfgs[0]
	seen := map[string]bool{}
	for i, c := range cfgs {
		cl := c.RehabRTC.Cluster
		if !cl.Enabled || cl.Name != a.RehabRTC.Cluster.Name || !slices.Equal(c.ClusterRedisServer().Addrs, a.ClusterRedisServer().Addrs) {
			t.Errorf("node %d: cluster %+v, want enabled and the same name and Redis as node a", i, cl)
		}
		if c.WebRTC.LocalBasePort != a.WebRTC.LocalBasePort || c.WebRTC.MaxSessions != a.WebRTC.MaxSessions || c.WebRTC.ExternalPort != a.WebRTC.ExternalPort {
			t.Errorf("node %d: port pool %d+%d, links' port %d: not node a's", i, c.WebRTC.LocalBasePort, c.WebRTC.MaxSessions, c.WebRTC.ExternalPort)
		}
		if len(c.RehabRTC.APIKeys) == 0 {
			t.Errorf("node %d: no API key from REHABRTC_API_KEYS", i)
		}
		media := []string{fmt.Sprintf("udp %d", c.RehabRTC.SFU.UDPPort), fmt.Sprintf("tcp %d", c.RehabRTC.SFU.TCPPort)}
		for _, v := range append([]string{"id " + cl.NodeID, cl.InternalAddr, c.ServiceAddr(), c.GatewayAddr(), c.RehabRTC.TURN.Listen, "dir " + c.RehabRTC.DataDir}, media...) {
			if seen[v] {
				t.Errorf("node %d: %q is also another node's", i, v)
			}
			seen[v] = true
		}
	}
}
