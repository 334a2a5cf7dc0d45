package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Coturn runs Debian's coturn (turnserver) on 127.0.0.1 with the
// shared-secret scheme (use-auth-secret), from a configuration file
// written in t.TempDir(): the secret is never on a command line. Loopback
// peers are allowed, since the tests' clients live there. It returns
// host:port (UDP and TCP); the server stops when the test ends.
func Coturn(t testing.TB, secret string) string {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		Missing(t, "coturn (turnserver) unavailable: "+err.Error())
	}
	port := FreePorts(t, 1)
	dir := t.TempDir()
	conf := fmt.Sprintf(`listening-ip=127.0.0.1
listening-port=%d
relay-ip=127.0.0.1
min-port=41000
max-port=41999
realm=rehabrtc
use-auth-secret
static-auth-secret=%s
fingerprint
no-tls
no-dtls
no-cli
no-multicast-peers
allow-loopback-peers
pidfile=%s
log-file=stdout
simple-log
`, port, secret, filepath.Join(dir, "turnserver.pid"))
	path := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &Buffer{}
	cmd := exec.Command(bin, "-c", path)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		Missing(t, "coturn (turnserver) unavailable: "+err.Error())
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("turnserver output:\n%s", out)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for { // coturn opens TCP and UDP together; TCP tells when it is up
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("turnserver did not listen on %s:\n%s", addr, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
