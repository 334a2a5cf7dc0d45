package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// Cluster is a Redis Cluster of masters only, each a redis-server of the
// test on loopback, killed by t.Cleanup.
type Cluster struct {
	Addrs []string
	cmds  []*exec.Cmd
}

// StartCluster starts n (at least 3) masters and joins them with
// redis-cli --cluster create, then waits until the cluster is ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	for _, prog := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(prog); err != nil {
			testutil.Missing(t, prog+" is not installed (apt-get install redis-server)")
		}
	}
	c := &Cluster{}
	t.Cleanup(c.kill)
	for i := range n {
		dir := t.TempDir()
		port, bus := testutil.FreePort(t), testutil.FreePort(t)
		logf, err := os.OpenFile(filepath.Join(dir, "redis.log"), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(bus),
			"--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no")
		cmd.Stdout, cmd.Stderr = logf, logf
		err = cmd.Start()
		logf.Close()
		if err != nil {
			t.Fatalf("start redis-server %d: %v", i, err)
		}
		c.cmds = append(c.cmds, cmd)
		c.Addrs = append(c.Addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	for _, a := range c.Addrs {
		waitPing(t, a)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	out, err := exec.Command("redis-cli", append(args, "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range c.Addrs {
		rdb := redis.NewClient(&redis.Options{Addr: a})
		testutil.Eventually(t, 20*time.Second, func() error {
			info, err := rdb.ClusterInfo(context.Background()).Result()
			if err != nil {
				return err
			}
			return testutil.Until(strings.Contains(info, "cluster_state:ok"), "%s: cluster not ok yet", a)
		})
		rdb.Close()
	}
	return c
}

// Client returns a cluster client, closed by t.Cleanup.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func (c *Cluster) kill() {
	for _, cmd := range c.cmds {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	c.cmds = nil
}

func waitPing(t testing.TB, addr string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	testutil.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return rdb.Ping(ctx).Err()
	})
}
