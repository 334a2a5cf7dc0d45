// Package redistest starts a real redis-server for one test, on a free
// loopback port, with or without an append-only file, and can stop, kill
// and restart it (keeping its data directory) to test what a store or a
// lease does when Redis goes away; also a Redis Cluster of masters, a
// Sentinel watching a master, and a proxy that cuts one client from
// Redis. It is imported by tests only.
package redistest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// Options says how to run the server.
type Options struct {
	// AOF turns the append-only file on, fsynced on every write
	// (appendfsync always): what survives a crash of the server is what
	// was acknowledged.
	AOF bool
}

// Server is a redis-server owned by one test; t.Cleanup kills it.
type Server struct {
	Addr string

	t    testing.TB
	opts Options
	dir  string
	port int
	cmd  *exec.Cmd
}

// Start starts redis-server. When it is not installed the test is skipped,
// or fails under REHABRTC_REQUIRE_EXTERNAL or CI (testutil.Missing).
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		testutil.Missing(t, "redis-server is not installed (apt-get install redis-server)")
	}
	s := &Server{t: t, opts: opts, dir: t.TempDir(), port: testutil.FreePort(t)}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	t.Cleanup(s.Kill)
	s.start()
	return s
}

// Client returns a new client of the server, closed by t.Cleanup. Its
// timeouts are short, so a test of a lost server does not wait long.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *Server) start() {
	s.t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "",
		"--dir", s.dir, "--daemonize", "no", "--appendonly", "no"}
	if s.opts.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	s.cmd = exec.Command("redis-server", args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	waitPing(s.t, s.Addr)
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

// Stop stops the server gracefully (SIGTERM).
func (s *Server) Stop() { s.stop(syscall.SIGTERM) }

func (s *Server) stop(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart kills the server (if running) and starts it again on the same
// port and data directory: with AOF, every acknowledged write is back.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}
