package config

import (
	"slices"
	"strings"
	"testing"
)

func TestClusterValidation(t *testing.T) {
	t.Parallel()
	on := func(c *Config) {
		c.RehabRTC.Cluster.Enabled = true
		c.RehabRTC.Cluster.InternalAddr = "10.0.0.2:4071"
		c.RehabRTC.Cluster.Redis.Addrs = []string{"10.0.0.9:6379"}
	}
	const f = "RehabRTC.cluster."
	for name, tt := range map[string]struct {
		edit  func(*Config)
		field string // "" = valid
		msg   string
	}{
		"default (off)": {func(c *Config) {}, "", ""},
		"on":            {on, "", ""},
		"on, Redis section": {func(c *Config) {
			on(c)
			c.RehabRTC.Cluster.Redis.Addrs = nil
			c.Redis.Hostname, c.Redis.Port = "cache", 6379
		}, "", ""},
		"on, several addrs": {func(c *Config) { on(c); c.RehabRTC.Cluster.Redis.Addrs = []string{"a:7000", "b:7000", "[::1]:7000"} }, "", ""},
		"on, no Redis": {func(c *Config) { on(c); c.RehabRTC.Cluster.Redis.Addrs = nil }, f + "redis.addrs",
			"must be set when the cluster is enabled and the Redis section names no server"},
		"on, no internal_addr": {func(c *Config) { on(c); c.RehabRTC.Cluster.InternalAddr = "" }, f + "internal_addr",
			"must be set when the cluster is enabled: host:port where the other nodes reach this one"},
		"internal_addr without port": {func(c *Config) { on(c); c.RehabRTC.Cluster.InternalAddr = "10.0.0.2" }, f + "internal_addr",
			`must be host:port such as 10.0.0.5:6379 (got "10.0.0.2")`},
		"internal_addr port 0": {func(c *Config) { on(c); c.RehabRTC.Cluster.InternalAddr = "a:0" }, f + "internal_addr",
			`port must be between 1 and 65535 (got "a:0")`},
		"addr with scheme": {func(c *Config) { on(c); c.RehabRTC.Cluster.Redis.Addrs = []string{"redis://a:6379"} }, f + "redis.addrs[0]",
			`must be host:port such as 10.0.0.5:6379 (got "redis://a:6379")`},
		"empty name":      {func(c *Config) { c.RehabRTC.Cluster.Name = "" }, f + "name", `must be non-empty, without braces, colons or spaces (got "")`},
		"brace in name":   {func(c *Config) { c.RehabRTC.Cluster.Name = "a}b" }, f + "name", `must be non-empty, without braces, colons or spaces (got "a}b")`},
		"# in node_id":    {func(c *Config) { c.RehabRTC.Cluster.NodeID = "n#1" }, f + "node_id", `must not contain '#', braces, colons or spaces (got "n#1")`},
		"lease too short": {func(c *Config) { c.RehabRTC.Cluster.LeaseTimeMS = 100 }, f + "lease_time_ms", "must be between 300 and 60000 (got 100)"},
		"lease too long":  {func(c *Config) { c.RehabRTC.Cluster.LeaseTimeMS = 600000 }, f + "lease_time_ms", "must be between 300 and 60000 (got 600000)"},
		"negative db":     {func(c *Config) { c.RehabRTC.Cluster.Redis.DB = -1 }, f + "redis.db", "must not be negative (got -1)"},
		"db in a Redis Cluster": {func(c *Config) {
			c.RehabRTC.Cluster.Redis.Addrs, c.RehabRTC.Cluster.Redis.DB = []string{"a:1", "b:1"}, 1
		}, f + "redis.db",
			"must be 0 with several redis.addrs: a Redis Cluster has only database 0 (got 1)"},
		"sentinel no addrs": {func(c *Config) { c.RehabRTC.Cluster.Redis.MasterName = "m" }, f + "redis.master_name", "needs redis.addrs (the Sentinels)"},
		"public_host":       {func(c *Config) { on(c); c.RehabRTC.Cluster.PublicHost = "node-a.example.org" }, "", ""},
		"public_host with port": {func(c *Config) { on(c); c.RehabRTC.Cluster.PublicHost = "node-a:443" }, f + "public_host",
			`must not include a port (got "node-a:443")`},
		"public_host with scheme": {func(c *Config) { on(c); c.RehabRTC.Cluster.PublicHost = "https://a" }, f + "public_host",
			`must be a host name or IP address, without scheme (got "https://a")`},
		"public_host unspecified": {func(c *Config) { on(c); c.RehabRTC.Cluster.PublicHost = "0.0.0.0" }, f + "public_host",
			"must be an address pages can reach, not 0.0.0.0"},
		"too many addrs": {func(c *Config) {
			c.RehabRTC.Cluster.Redis.Addrs = slices.Repeat([]string{"a:1"}, MaxClusterAddrs+1)
		}, f + "redis.addrs", "at most 64 addresses (got 65)"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.edit(c)
			errs := fieldErrors(t, c.Validate())
			if tt.field == "" {
				if len(errs) != 0 {
					t.Fatalf("rejected: %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tt.field || errs[0].Msg != tt.msg {
				t.Fatalf("errors = %v, want %s: %s", errs, tt.field, tt.msg)
			}
		})
	}
}

// TestMediaHost: the host in the media addresses a node hands out.
func TestMediaHost(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		enabled                bool
		internal, public, want string
	}{
		"single node":           {false, "10.0.0.2:4071", "n.example.org", "video.example.org"},
		"public_host":           {true, "10.0.0.2:4071", "n.example.org", "n.example.org"},
		"internal address":      {true, "10.0.0.2:4071", "", "10.0.0.2"},
		"internal name":         {true, "node-b:4071", "", "node-b"},
		"internal, unspecified": {true, "0.0.0.0:4071", "", "video.example.org"},
		"internal, no host":     {true, ":4071", "", "video.example.org"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.WebRTC.Hostname = "video.example.org"
			cl := &c.RehabRTC.Cluster
			cl.Enabled, cl.InternalAddr, cl.PublicHost = tt.enabled, tt.internal, tt.public
			if got := c.MediaHost(); got != tt.want {
				t.Fatalf("MediaHost() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDrainOnStopDefault: a cluster node drains on SIGTERM unless told not to.
func TestDrainOnStopDefault(t *testing.T) {
	t.Parallel()
	if !Default().RehabRTC.Cluster.DrainOnStop {
		t.Fatal("drain_on_stop is off by default")
	}
}

// TestClusterEnv: one file for every node, each node's own settings from
// its environment.
func TestClusterEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{EnvClusterNodeID: "node-b", EnvClusterInternalAddr: "10.0.0.3:4071", EnvClusterPublicHost: "b.example.org"}
	c, err := LoadEnv("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cl := c.RehabRTC.Cluster; cl.NodeID != "node-b" || cl.InternalAddr != "10.0.0.3:4071" || cl.PublicHost != "b.example.org" {
		t.Fatalf("cluster %+v", cl)
	}
	env[EnvClusterNodeID] = "a#b"
	if _, err := LoadEnv("", func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "(from "+EnvClusterNodeID+")") {
		t.Fatalf("bad node id from the environment: %v", err)
	}
}

func TestClusterRedisServer(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Redis = Redis{Hostname: "cache", Port: 6380, DB: 3, Username: "u", Password: "p"}
	if got := c.ClusterRedisServer(); strings.Join(got.Addrs, ",") != "cache:6380" || got.DB != 3 || got.Username != "u" || got.Password != "p" {
		t.Fatalf("from the Redis section: %+v", got)
	}
	c.RehabRTC.Cluster.Redis = ClusterRedis{Addrs: []string{"a:1", "b:2"}, MasterName: "m", DB: 1}
	if got := c.ClusterRedisServer(); strings.Join(got.Addrs, ",") != "a:1,b:2" || got.MasterName != "m" || got.DB != 1 || got.Password != "" {
		t.Fatalf("its own: %+v", got)
	}
}

func TestClusterPasswordFromEnv(t *testing.T) {
	t.Parallel()
	c, err := LoadEnv("", func(k string) string {
		if k == EnvClusterRedisPassword {
			return "s3cret"
		}
		return ""
	})
	if err != nil || c.RehabRTC.Cluster.Redis.Password != "s3cret" {
		t.Fatalf("password %q, %v", c.RehabRTC.Cluster.Redis.Password, err)
	}
}
