// Package testutil holds helpers shared by the tests of several packages:
// free loopback ports, polling with a deadline (Eventually), a log buffer
// that several goroutines write to, and the rule for tests that need
// something outside Go (a browser, Node.js, redis-server). Only tests and
// test helper packages import it.
package testutil

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvRequireExternal, when set (to anything but "" or "0"), turns the skip
// of a test that needs an external program (Chromium, Node.js,
// redis-server) into a failure; scripts/test.sh and CI set it.
const EnvRequireExternal = "REHABRTC_REQUIRE_EXTERNAL"

// envRequireBrowser is the old name of EnvRequireExternal, still accepted:
// it always governed Redis and Node.js too, not only the browser.
const envRequireBrowser = "REHABRTC_REQUIRE_BROWSER"

// RequireExternal reports whether tests must fail, not skip, when an
// external program is missing: $REHABRTC_REQUIRE_EXTERNAL (or its old name
// $REHABRTC_REQUIRE_BROWSER) is set, or CI=true.
func RequireExternal() bool {
	for _, name := range []string{EnvRequireExternal, envRequireBrowser} {
		if v := os.Getenv(name); v != "" && v != "0" {
			return true
		}
	}
	return os.Getenv("CI") == "true"
}

// Missing ends a test that cannot run because an external program is
// missing: it fails when RequireExternal, and skips otherwise.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if RequireExternal() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FreePorts finds n consecutive free loopback TCP ports below the kernel's
// ephemeral range, so that no outgoing connection (a browser's, a
// client's) takes one of them before the server listens on it: a session's
// port is bound only when the session starts.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 11000+n {
				low = v
			}
		}
	}
	for range 200 {
		base := 10000 + rand.IntN(low-10000-n)
		if rangeFree(base, n) {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func rangeFree(base, n int) bool {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		held = append(held, l)
	}
	return true
}

// Eventually polls cond until it returns nil, failing the test with cond's
// last error if that has not happened within timeout. Polls start 5 ms
// apart and back off to 50 ms; the last one is at the deadline. A deadline
// is not a sleep: a test waits only as long as the condition takes.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("not within %s: %v", timeout, err)
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// Until is a condition for Eventually: nil when ok, else an error that
// says (format, args) what was seen instead.
func Until(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// FreePort returns a free loopback TCP port the kernel picks, in its
// ephemeral range, for a server the test starts at once. It never meets the
// ranges FreePorts hands out (below the ephemeral range) to tests whose
// sessions bind their ports later, in other packages running alongside.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Buffer is a bytes.Buffer safe for concurrent writers, for logs.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
