package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Cluster makes this node one of several sharing sessions through Redis
// (docs/scale-out.md). Off by default: one node with the embedded store.
type Cluster struct {
	Enabled bool `json:"enabled"`
	// Name prefixes every key in Redis, so several deployments can share
	// one Redis; every node of one cluster uses the same name.
	Name string `json:"name"`
	// NodeID names this node, unique among the cluster's live nodes and
	// kept across restarts; "" = the host name.
	NodeID string `json:"node_id"`
	// InternalAddr is host:port where the other nodes reach this one.
	InternalAddr string `json:"internal_addr"`
	// PublicHost is the host name or IP address where pages reach this
	// node's media (its TURN server and SFU ports): a session's media goes
	// to its home node, while its signaling may come through any gateway.
	// "" = the host of internal_addr when it names one, else
	// WebRTC.hostname.
	PublicHost string `json:"public_host"`
	// LeaseTimeMS is how long a session lease and a node heartbeat last
	// unrenewed, in milliseconds: a lost node's sessions are free to move
	// after this.
	LeaseTimeMS int `json:"lease_time_ms"`
	// DrainOnStop: on SIGTERM/SIGINT the node hands each of its sessions
	// to the least loaded other node, which claims it at once, before it
	// exits. false: it only releases them, and the others claim them at
	// their next claim loop (up to a third of the lease time later).
	DrainOnStop bool         `json:"drain_on_stop"`
	Redis       ClusterRedis `json:"redis"`
}

// ClusterRedis is the Redis the nodes share. With no Addrs, it is the
// server of the Redis section (OpenTera's), with its db and credentials.
type ClusterRedis struct {
	// Addrs are host:port: one server; several = a Redis Cluster's seeds;
	// with MasterName, Sentinels.
	Addrs      []string `json:"addrs"`
	MasterName string   `json:"master_name"` // Sentinel's name of the master; "" = no Sentinel
	DB         int      `json:"db"`
	Username   string   `json:"username"`
	Password   string   `json:"password"` // secret: prefer REHABRTC_CLUSTER_REDIS_PASSWORD
}

// Limits of the cluster section.
const (
	DefaultLeaseTimeMS = 5000
	MinLeaseTimeMS     = 300   // a third of it is the heartbeat period
	MaxLeaseTimeMS     = 60000 // a lost node's sessions wait this long
	MaxClusterAddrs    = 64
)

// DefaultCluster is the cluster section of Default: disabled.
func DefaultCluster() Cluster {
	return Cluster{Name: "rehabrtc", LeaseTimeMS: DefaultLeaseTimeMS, DrainOnStop: true, Redis: ClusterRedis{Addrs: []string{}}}
}

// ClusterRedisServer is the Redis the cluster uses: its addresses, db and
// credentials, from RehabRTC.cluster.redis or else the Redis section.
func (c *Config) ClusterRedisServer() ClusterRedis {
	r := c.RehabRTC.Cluster.Redis
	if len(r.Addrs) == 0 && c.Redis.Hostname != "" {
		return ClusterRedis{Addrs: []string{net.JoinHostPort(c.Redis.Hostname, strconv.Itoa(c.Redis.Port))},
			DB: c.Redis.DB, Username: c.Redis.Username, Password: c.Redis.Password}
	}
	return r
}

func (v *checker) cluster(c *Config) {
	const f = "RehabRTC.cluster."
	cl := &c.RehabRTC.Cluster
	if cl.Name == "" || strings.ContainsAny(cl.Name, "{}: \t\r\n") {
		v.add(f+"name", "must be non-empty, without braces, colons or spaces (got %q)", cl.Name)
	}
	if strings.ContainsAny(cl.NodeID, "#{}: \t\r\n") {
		v.add(f+"node_id", "must not contain '#', braces, colons or spaces (got %q)", cl.NodeID)
	}
	if cl.LeaseTimeMS < MinLeaseTimeMS || cl.LeaseTimeMS > MaxLeaseTimeMS {
		v.add(f+"lease_time_ms", "must be between %d and %d (got %d)", MinLeaseTimeMS, MaxLeaseTimeMS, cl.LeaseTimeMS)
	}
	r := &cl.Redis
	if len(r.Addrs) > MaxClusterAddrs {
		v.add(f+"redis.addrs", "at most %d addresses (got %d)", MaxClusterAddrs, len(r.Addrs))
	}
	for i, a := range r.Addrs {
		if msg := hostPortProblem(a); msg != "" {
			v.add(fmt.Sprintf("%sredis.addrs[%d]", f, i), "%s (got %q)", msg, a)
		}
	}
	if r.DB < 0 {
		v.add(f+"redis.db", "must not be negative (got %d)", r.DB)
	}
	if r.DB != 0 && r.MasterName == "" && len(r.Addrs) > 1 {
		v.add(f+"redis.db", "must be 0 with several redis.addrs: a Redis Cluster has only database 0 (got %d)", r.DB)
	}
	if r.MasterName != "" && len(r.Addrs) == 0 {
		v.add(f+"redis.master_name", "needs redis.addrs (the Sentinels)")
	}
	if !cl.Enabled {
		return
	}
	if cl.InternalAddr == "" {
		v.add(f+"internal_addr", "must be set when the cluster is enabled: host:port where the other nodes reach this one")
	} else if msg := hostPortProblem(cl.InternalAddr); msg != "" {
		v.add(f+"internal_addr", "%s (got %q)", msg, cl.InternalAddr)
	}
	if len(r.Addrs) == 0 && c.Redis.Hostname == "" {
		v.add(f+"redis.addrs", "must be set when the cluster is enabled and the Redis section names no server")
	}
	if cl.PublicHost != "" {
		if msg := hostProblem(cl.PublicHost); msg != "" {
			v.add(f+"public_host", "%s (got %q)", msg, cl.PublicHost)
		} else if a, err := netip.ParseAddr(cl.PublicHost); err == nil && a.IsUnspecified() {
			v.add(f+"public_host", "must be an address pages can reach, not %s", cl.PublicHost)
		}
	}
}

// MediaHost is the host name or address written into the media addresses
// handed to pages (TURN URLs; the SFU's and the relay's addresses unless
// set otherwise): on a cluster node its own (RehabRTC.cluster.public_host,
// else the host of internal_addr), since a session's media goes to its
// home node whichever gateway its page came through; else WebRTC.hostname.
func (c *Config) MediaHost() string {
	cl := c.RehabRTC.Cluster
	if !cl.Enabled {
		return c.WebRTC.Hostname
	}
	if cl.PublicHost != "" {
		return cl.PublicHost
	}
	if h, _, err := net.SplitHostPort(cl.InternalAddr); err == nil && h != "" {
		if a, err := netip.ParseAddr(h); err != nil || !a.IsUnspecified() {
			return h
		}
	}
	return c.WebRTC.Hostname
}

// hostPortProblem says what is wrong with host:port (a host and a port
// from 1 to 65535), or "".
func hostPortProblem(a string) string {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "must be host:port such as 10.0.0.5:6379"
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "port must be between 1 and 65535"
	}
	return hostProblem(h)
}
