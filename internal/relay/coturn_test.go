package relay

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// coturn runs Debian's turnserver on loopback with the shared-secret
// (TURN REST) scheme, from a configuration file this test writes; the
// secret is in the file, never on the command line.
func coturn(t *testing.T, secret string) string {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		testutil.NeedExternal(t, "coturn (turnserver)", err)
	}
	port := testutil.FreePorts(t, 1)
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
	out := &testutil.Buffer{}
	cmd := exec.Command(bin, "-c", path)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		testutil.NeedExternal(t, "coturn (turnserver)", err)
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
	for { // coturn listens on TCP and UDP together; TCP tells when it is up
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

// TestCoturnSharedSecret: credentials minted by NewRESTMinter are accepted
// by a real coturn configured with the same secret, which relays between
// two clients; a credential minted with another secret is refused.
func TestCoturnSharedSecret(t *testing.T) {
	secret := strings.Repeat("k", 16) + NewMinter(time.Minute).password("x")[:20]
	addr := coturn(t, secret)
	m := NewRESTMinter(secret, 10*time.Minute)
	f := &fixture{mint: m}
	a, err := f.allocate(t, overUDP, addr, m.Mint(alice))
	if err != nil {
		t.Fatalf("coturn refused our credential: %v", err)
	}
	b, err := f.allocate(t, overTCP, addr, m.Mint(bob))
	if err != nil {
		t.Fatalf("coturn refused our credential over TCP: %v", err)
	}
	if err := exchange(t, a, b, "through coturn"); err != nil {
		t.Fatal(err)
	}
	wrong := NewRESTMinter(strings.Repeat("w", 40), 10*time.Minute)
	if _, err := f.allocate(t, overUDP, addr, wrong.Mint(alice)); err == nil {
		t.Fatal("coturn accepted a credential minted with another secret")
	}
	expired := m.Mint(alice)
	expired.Username = "1000000000:" + alice.userID()
	expired.Password = m.password(expired.Username)
	if _, err := f.allocate(t, overUDP, addr, expired); err == nil {
		t.Fatal("coturn accepted an expired credential")
	}
}
