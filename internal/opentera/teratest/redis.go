// Package teratest holds test helpers for OpenTera interop: a real
// redis-server per test, a RedisRPCClient that calls exactly as OpenTera's
// does, an event listener, and a fake of the main server's service REST
// API written from the spec. It is imported by tests only.
package teratest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// Redis is a redis-server started for one test, on a free loopback port,
// with no persistence; it is stopped by t.Cleanup.
type Redis struct {
	Port   int
	Addr   string
	Client *redis.Client // the test's own client

	t   testing.TB
	dir string
	cmd *exec.Cmd
}

// StartRedis starts redis-server. When it is not installed the test is
// skipped, except in CI (CI=true or REHABRTC_REQUIRE_EXTERNAL=1), where
// that is a failure.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return StartRedisOn(t, 0)
}

// StartRedisOn is StartRedis on a given loopback port (0: a free one), e.g.
// OpenTera's 6379 inside a network namespace of the test's own.
func StartRedisOn(t testing.TB, port int) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		testutil.Missing(t, "redis-server is not installed (the test script installs it: ./scripts/test.sh)")
	}
	if port == 0 {
		port = testutil.FreePort(t)
	}
	r := &Redis{t: t, dir: t.TempDir(), Port: port}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port))
	r.start()
	r.Client = redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() {
		r.Client.Close()
		r.Kill()
	})
	return r
}

func (r *Redis) start() {
	r.t.Helper()
	logf, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	defer logf.Close()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no")
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	r.Kill()
	r.t.Fatalf("redis-server on port %d did not answer:\n%s", r.Port, log)
}

// Kill stops redis-server at once (SIGKILL), as a crash would.
func (r *Redis) Kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Restart kills redis-server and starts a new one on the same port, with
// an empty dataset.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Kill()
	r.start()
}

// Set writes a key, failing the test on error.
func (r *Redis) Set(key, value string) {
	r.t.Helper()
	if err := r.Client.Set(context.Background(), key, value, 0).Err(); err != nil {
		r.t.Fatalf("SET %s: %v", key, err)
	}
}

// SetService writes service.<key> as the main server's
// ServiceLauncherModule does (TeraService.to_json()).
func (r *Redis) SetService(key, uuid, host string, port int) {
	r.t.Helper()
	r.Set("service."+key, fmt.Sprintf(`{"id_service": 3, "service_uuid": %q, "service_name": "Télé-réadaptation vidéo", "service_key": %q, "service_hostname": %q, "service_port": %d, "service_endpoint": "/", "service_clientendpoint": "/rehab", "service_endpoint_participant": "/participant", "service_enabled": true, "service_system": true, "service_editable_config": true, "service_default_config": "{}", "service_has_assets": false, "service_has_tests": false, "service_roles": [], "service_projects": []}`, uuid, key, host, port))
}
