package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// Sentinel is one redis-server in Sentinel mode watching a master of the
// test, under the master name MasterName; t.Cleanup kills both.
type Sentinel struct {
	Addr       string // the Sentinel's
	MasterName string
	Master     *Server
	cmd        *exec.Cmd
}

// StartSentinel starts a master and a Sentinel that monitors it.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	m := Start(t, Options{})
	s := &Sentinel{MasterName: "rehabrtc-test", Master: m}
	dir := t.TempDir()
	port := testutil.FreePort(t)
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it: in a directory of its own
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n",
		port, dir, s.MasterName, m.port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "sentinel.log"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	s.cmd = exec.Command("redis-server", conf, "--sentinel")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis sentinel: %v", err)
	}
	waitPing(t, s.Addr)
	return s
}
