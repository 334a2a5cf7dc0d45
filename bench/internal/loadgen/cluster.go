package loadgen

// The cluster of W9: one redis-server and three `rehabrtc serve` nodes on
// loopback, sharing the session port range (docs/scale-out.md).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// clusterName is the cluster's key prefix in Redis ({bench}:…).
const clusterName = "bench"

// Cluster is a Redis and the rehabrtc nodes on it.
type Cluster struct {
	env       *Env
	Nodes     []*Server // node i has id "a"+i
	RedisAddr string
	LeaseMS   int
	redis     *exec.Cmd
	redisPid  int
	redisDone chan error
	rc        *redisConn // the load generator's own connection (GET, INFO)
}

// StartCluster starts redis-server (AOF with appendfsync always, as
// docs/scale-out.md requires for durability) and n nodes with room for
// maxSessions sessions in their shared pool.
func StartCluster(ctx context.Context, env *Env, n, maxSessions, leaseMS int) (c *Cluster, err error) {
	c = &Cluster{env: env, LeaseMS: leaseMS}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if err := c.startRedis(ctx); err != nil {
		return c, err
	}
	// public port (links), the shared session range, then service,
	// gateway and internal port of each node.
	base, err := freeRange(1 + maxSessions + 3*n)
	if err != nil {
		return c, err
	}
	for i := range n {
		id := string(rune('a' + i))
		dir, err := os.MkdirTemp(env.Dir, "node-"+id+"-")
		if err != nil {
			return c, err
		}
		p := base + 1 + maxSessions + 3*i
		cfg := serverConfig(env, dir, p, p+1, base+1, maxSessions)
		cfg["WebRTC"].(map[string]any)["external_port"] = base // a load balancer's port: links name no node
		cfg["RehabRTC"].(map[string]any)["cluster"] = map[string]any{"enabled": true, "name": clusterName, "node_id": id,
			"internal_addr": fmt.Sprintf("127.0.0.1:%d", p+2), "lease_time_ms": leaseMS,
			"redis": map[string]any{"addrs": []string{c.RedisAddr}}}
		s, err := launchServer(ctx, env, dir, cfg, p, p+1)
		if err != nil {
			return c, fmt.Errorf("node %s: %w", id, err)
		}
		c.Nodes = append(c.Nodes, s)
	}
	return c, nil
}

func (c *Cluster) startRedis(ctx context.Context) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("W9 needs redis-server (Debian: apt-get install redis-server)")
	}
	port, err := freeRange(1)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(c.env.Dir, "redis-")
	if err != nil {
		return err
	}
	c.RedisAddr = "127.0.0.1:" + strconv.Itoa(port)
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	c.redis = launchCmd(c.env, c.env.ServerCPUs, nil, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no")
	c.redis.Stdout, c.redis.Stderr = logf, logf
	if err := c.redis.Start(); err != nil {
		return err
	}
	c.redisPid = c.redis.Process.Pid
	if c.env.ServerCPUs != nil && c.env.Taskset == "" {
		_ = PinProcess(c.redisPid, c.env.ServerCPUs)
	}
	c.redisDone = make(chan error, 1)
	go func() { c.redisDone <- c.redis.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ctx.Err() != nil {
			return errStopped
		}
		rc, err := dialRedis(ctx, c.RedisAddr)
		if err != nil {
			continue
		}
		if v, err := rc.do("PING"); err == nil && v == "PONG" {
			c.rc = rc
			return nil
		}
		rc.Close()
	}
	b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	return fmt.Errorf("redis-server not answering within 10 s: %s", strings.TrimSpace(string(b)))
}

// Home is the index of the node holding session id's lease, or -1.
func (c *Cluster) Home(id int64) (int, error) {
	v, err := c.rc.get(fmt.Sprintf("{%s}:lease:%d", clusterName, id))
	if errors.Is(err, errNil) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	if len(v) == 0 || v[0] < 'a' || int(v[0]-'a') >= len(c.Nodes) {
		return -1, fmt.Errorf("lease of session %d: unexpected value %q", id, v)
	}
	return int(v[0] - 'a'), nil
}

// awaitHeartbeat waits until a node's heartbeat lists session id among
// its leases (the heartbeats carry the loads placement reads).
func (c *Cluster) awaitHeartbeat(ctx context.Context, id int64) error {
	want := regexp.MustCompile(`"sessions":\[[^\]]*\b` + strconv.FormatInt(id, 10) + `\b`)
	deadline := time.Now().Add(2 * time.Duration(c.LeaseMS) * time.Millisecond)
	for {
		v, err := c.rc.do("HVALS", "{"+clusterName+"}:nodes:info")
		if err != nil {
			return err
		}
		vals, _ := v.([]any)
		for _, hb := range vals {
			if s, _ := hb.(string); want.MatchString(s) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("session %d in no heartbeat after two lease times", id)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// RedisCommands is Redis's count of commands processed so far.
func (c *Cluster) RedisCommands() (int64, error) { return c.rc.commandsProcessed() }

// cpuTicks is the CPU time of every node and of Redis.
func (c *Cluster) cpuTicks() int64 {
	t := cpuTicksOr0(c.redisPid)
	for _, n := range c.Nodes {
		if n.cmd != nil {
			t += cpuTicksOr0(n.Pid)
		}
	}
	return t
}

// check fails when a node (not killed on purpose) or Redis died.
func (c *Cluster) check() error {
	for _, n := range c.Nodes {
		if n.cmd != nil && !n.Alive() {
			return fmt.Errorf("node died: %s", n.LogTail())
		}
	}
	select {
	case err := <-c.redisDone:
		c.redisDone <- err
		return fmt.Errorf("redis-server died: %v", err)
	default:
	}
	return nil
}

// Stop stops every node, then Redis.
func (c *Cluster) Stop() error {
	var errs []error
	for _, n := range c.Nodes {
		if n.cmd != nil {
			errs = append(errs, n.Stop())
		}
	}
	if c.rc != nil {
		c.rc.Close()
	}
	if c.redis != nil && c.redis.Process != nil {
		_ = c.redis.Process.Kill()
		<-c.redisDone
		c.redis = nil
	}
	return errors.Join(errs...)
}
