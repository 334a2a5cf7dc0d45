package ports

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

func TestPool(t *testing.T) {
	p := New(8080, 3)
	var got []int
	for range 3 {
		port, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, port)
	}
	if got[0] != 8080 || got[1] != 8081 || got[2] != 8082 {
		t.Fatalf("ports = %v", got)
	}
	if _, err := p.Acquire(); !errors.Is(err, session.ErrNoPort) {
		t.Fatalf("exhausted pool: err = %v", err)
	}
	p.Release(8081)
	if port, _ := p.Acquire(); port != 8081 {
		t.Fatalf("after release got %d", port)
	}
	p.Release(8080)
	p.Release(8082)
	// Round-robin: the port after the last one handed out comes first.
	if port, _ := p.Acquire(); port != 8082 {
		t.Fatalf("round robin: got %d, want 8082", port)
	}
	if p.InUse() != 2 {
		t.Fatalf("InUse = %d", p.InUse())
	}
}

func TestClaim(t *testing.T) {
	for name, tc := range map[string]struct {
		port    int
		wantErr bool
	}{
		"free":  {8081, false},
		"taken": {8080, true},
		"below": {8079, true},
		"above": {8083, true},
	} {
		t.Run(name, func(t *testing.T) {
			p := New(8080, 3)
			if err := p.Claim(8080); err != nil {
				t.Fatal(err)
			}
			err := p.Claim(tc.port)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Claim(%d) = %v", tc.port, err)
			}
			if err != nil && !errors.Is(err, session.ErrPortInUse) {
				t.Fatalf("error %v is not ErrPortInUse", err)
			}
		})
	}
	p := New(8080, 1)
	p.Release(9999) // foreign: ignored
	p.Release(8080) // free: ignored
	if _, err := p.Acquire(); err != nil {
		t.Fatal(err)
	}
}

// holdPort makes an outgoing connection whose local port is port, as the
// kernel does when the pool overlaps its ephemeral range.
func holdPort(t *testing.T, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

// TestProbedPoolSkipsHeldPorts is issue 12 item 12: a pool port held by
// an outgoing connection is skipped (and logged) instead of failing the
// start; the start fails only when no port is free.
func TestProbedPoolSkipsHeldPorts(t *testing.T) {
	base := testutil.FreePorts(t, 3)
	var logs testutil.Buffer
	p := NewProbed(base, 3, BindProbe("127.0.0.1"), slog.New(slog.NewTextHandler(&logs, nil)))
	holdPort(t, base)
	port, err := p.Acquire()
	if err != nil || port != base+1 {
		t.Fatalf("Acquire = %d, %v; want %d (port %d is held)", port, err, base+1, base)
	}
	if want := fmt.Sprintf("skipped=1 ports=[%d] took=%d", base, base+1); !strings.Contains(logs.String(), want) {
		t.Fatalf("the skip is not logged:\n%s", logs.String())
	}
	if p.InUse() != 1 {
		t.Fatalf("InUse = %d after one start: the skipped port stayed taken", p.InUse())
	}
	holdPort(t, base+2)
	if port, err := p.Acquire(); !errors.Is(err, session.ErrNoPort) {
		t.Fatalf("every other port held: Acquire = %d, %v, want ErrNoPort", port, err)
	}
	p.Release(base + 1)
	if port, err := p.Acquire(); err != nil || port != base+1 {
		t.Fatalf("after release: %d, %v", port, err)
	}
}

// An unprobed pool hands held ports out as before (in-process sessions
// without a listener need no probe).
func TestUnprobedPoolTakesAnyFreePort(t *testing.T) {
	base := testutil.FreePorts(t, 2)
	holdPort(t, base)
	if port, err := New(base, 2).Acquire(); err != nil || port != base {
		t.Fatalf("%d %v", port, err)
	}
}

func TestEphemeralOverlap(t *testing.T) {
	file := filepath.Join(t.TempDir(), "range")
	os.WriteFile(file, []byte("32768\t60999\n"), 0o600)
	for _, tc := range []struct {
		base, count int
		want        string // substring; "" = no warning
	}{
		{8080, 50, ""},
		{32700, 68, ""},
		{32700, 69, "session ports 32700-32768 overlap the kernel's ephemeral port range 32768-60999"},
		{58080, 50, "session ports 58080-58129 overlap"},
		{60999, 1, "overlap"},
		{61000, 100, ""},
	} {
		got := EphemeralOverlap(file, tc.base, tc.count)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%d+%d: %q, want %q", tc.base, tc.count, got, tc.want)
		}
	}
	if got := EphemeralOverlap(filepath.Join(t.TempDir(), "none"), 58080, 50); got != "" {
		t.Errorf("no file: %q", got)
	}
	os.WriteFile(file, []byte("garbage"), 0o600)
	if got := EphemeralOverlap(file, 58080, 50); got != "" {
		t.Errorf("garbage: %q", got)
	}
}
