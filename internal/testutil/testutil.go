// Package testutil holds helpers shared by the tests of several packages:
// free loopback ports and a log buffer that several goroutines write to.
// Only _test.go files import it.
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
)

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
