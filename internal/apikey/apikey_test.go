package apikey

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/clientaddr"
)

const key = "0123456789abcdef0123456789abcdef"

// clock is a settable time for the backoff.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func req(addr, auth string) *http.Request {
	r := httptest.NewRequest("GET", "/api/sessions", nil)
	r.RemoteAddr = addr
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

func TestMatch(t *testing.T) {
	g := New([]string{key, "another-key-of-some-length-00000"}, Limits{}, nil)
	for tok, want := range map[string]bool{
		key:                                true,
		"another-key-of-some-length-00000": true,
		"":                                 false,
		key[:31]:                           false,
		key + "0":                          false,
		"0123456789ABCDEF0123456789ABCDEF": false,
	} {
		if got := g.Match(tok); got != want {
			t.Errorf("Match(%q) = %v, want %v", tok, got, want)
		}
	}
	if New(nil, Limits{}, nil).Match("") {
		t.Error("no keys: the empty token matched")
	}
	if New([]string{""}, Limits{}, nil).Match("") {
		t.Error("an empty key matched the empty token")
	}
}

func TestCheckVerdicts(t *testing.T) {
	g := New([]string{key}, Limits{}, nil)
	for _, tc := range []struct {
		auth string
		want Verdict
	}{
		{"", Missing},
		{"Basic " + key, Missing},
		{"Bearer ", Missing},
		{"Bearer " + key, Granted},
		{"Bearer nope", Wrong},
		{"bearer " + key, Missing}, // the scheme is case-sensitive here, as before
	} {
		if v, _ := g.Check(req("192.0.2.1:1234", tc.auth)); v != tc.want {
			t.Errorf("%q: %v, want %v", tc.auth, v, tc.want)
		}
	}
}

// TestBackoff is issue 12 item 8: wrong keys from one address lead to a
// wait that doubles, other addresses are unaffected, the wait ends, and a
// right key cleans the slate. Before the Guard, every wrong key got 401.
func TestBackoff(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	g := New([]string{key}, Limits{Free: 3, Base: time.Second, Max: 8 * time.Second, Forget: time.Minute}, c.now)
	bad := req("198.51.100.7:5000", "Bearer guess")
	for i := range 3 {
		if v, _ := g.Check(bad); v != Wrong {
			t.Fatalf("guess %d: %v, want Wrong", i, v)
		}
	}
	// The third wrong key used the free ones up; the fourth sets a 1 s wait.
	if v, _ := g.Check(bad); v != Wrong {
		t.Fatalf("guess 4: %v", v)
	}
	v, retry := g.Check(bad)
	if v != Blocked || retry != time.Second {
		t.Fatalf("during the wait: %v %v, want Blocked 1s", v, retry)
	}
	// Blocked even with the right key: the key is not looked at.
	if v, _ := g.Check(req("198.51.100.7:6000", "Bearer "+key)); v != Blocked {
		t.Fatalf("right key during the wait: %v", v)
	}
	// Another address is not affected.
	if v, _ := g.Check(req("198.51.100.8:5000", "Bearer "+key)); v != Granted {
		t.Fatalf("another address: %v", v)
	}
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		c.add(8 * time.Second) // past any wait so far
		if v, _ := g.Check(bad); v != Wrong {
			t.Fatalf("after the wait: %v", v)
		}
		if _, retry := g.Check(bad); retry != want {
			t.Fatalf("wait %v, want %v", retry, want)
		}
	}
	c.add(9 * time.Second)
	if v, _ := g.Check(req("198.51.100.7:1", "Bearer "+key)); v != Granted {
		t.Fatalf("right key after the wait: %v", v)
	}
	if v, _ := g.Check(bad); v != Wrong { // a clean slate: free again
		t.Fatalf("after success: %v", v)
	}
	if _, blocked := g.Waiting(bad); blocked {
		t.Fatal("blocked after one failure on a clean slate")
	}
}

func TestForget(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	g := New([]string{key}, Limits{Free: 2, Forget: time.Minute}, c.now)
	bad := req("203.0.113.9:1", "Bearer guess")
	g.Check(bad)
	g.Check(bad)
	c.add(2 * time.Minute)
	g.Check(bad)
	g.Check(bad)
	if _, blocked := g.Waiting(bad); blocked {
		t.Fatal("failures older than Forget still counted")
	}
}

func TestIPv6CountsBySlash64(t *testing.T) {
	g := New([]string{key}, Limits{Free: 1}, nil)
	for i := range 3 {
		g.Check(req(fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1), "Bearer guess"))
	}
	if _, blocked := g.Waiting(req("[2001:db8:1:2::ffff]:1", "")); !blocked {
		t.Fatal("the /64 is not blocked")
	}
	if _, blocked := g.Waiting(req("[2001:db8:1:3::1]:1", "")); blocked {
		t.Fatal("another /64 is blocked")
	}
	// IPv4-mapped IPv6 is the IPv4 address.
	g.Check(req("192.0.2.50:1", "Bearer guess"))
	g.Check(req("[::ffff:192.0.2.50]:1", "Bearer guess"))
	if _, blocked := g.Waiting(req("192.0.2.50:2", "")); !blocked {
		t.Fatal("::ffff:192.0.2.50 and 192.0.2.50 counted apart")
	}
}

func TestMemoryIsBounded(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	g := New([]string{key}, Limits{Free: 1, Addresses: 100}, c.now)
	for i := range 1000 {
		c.add(time.Millisecond)
		g.Check(req(fmt.Sprintf("10.0.%d.%d:1", i/256, i%256), "Bearer guess"))
	}
	g.mu.Lock()
	n := len(g.fails)
	g.mu.Unlock()
	if n > 100 {
		t.Fatalf("%d addresses tracked, bound is 100", n)
	}
	// The most recent failing addresses are the ones kept.
	g.Check(req("10.0.3.231:1", "Bearer guess"))
	if _, blocked := g.Waiting(req("10.0.3.231:1", "")); !blocked {
		t.Fatal("the most recent address was forgotten")
	}
}

func TestUnparsableAddressIsNotTracked(t *testing.T) {
	g := New([]string{key}, Limits{Free: 1}, nil)
	for range 5 {
		if v, _ := g.Check(req("@", "Bearer guess")); v != Wrong {
			t.Fatalf("%v", v)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1", time.Millisecond: "1", time.Second: "1", 1500 * time.Millisecond: "2", 5 * time.Minute: "300",
	} {
		if got := RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	g := New([]string{key}, Limits{Free: 2}, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				g.Check(req(fmt.Sprintf("10.1.%d.%d:1", i, j%20), "Bearer guess"))
				g.Check(req(fmt.Sprintf("10.1.%d.%d:1", i, j%20), "Bearer "+key))
			}
		})
	}
	wg.Wait()
}

// Each wait is logged once, with the address and never the key.
func TestWaitIsLogged(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	g := New([]string{key}, Limits{Free: 1}, nil)
	g.SetLogger(slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil)))
	for range 10 {
		g.Check(req("192.0.2.77:1", "Bearer secret-guess"))
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if strings.Count(out, "must wait") != 1 || !strings.Contains(out, "192.0.2.77/32") || strings.Contains(out, "secret-guess") {
		t.Fatalf("log:\n%s", out)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Behind a trusted reverse proxy, clients count apart by the address it
// forwards (the service's one rule, internal/clientaddr); from any other
// peer the headers are ignored; without a rule set, the TCP peer counts.
func TestClientAddressBehindProxy(t *testing.T) {
	g := New([]string{key}, Limits{Free: 1}, nil)
	g.SetClientAddress(clientaddr.New(clientaddr.Loopback()).Addr)
	viaProxy := func(header, client string) *http.Request {
		r := req("127.0.0.1:5555", "Bearer guess")
		r.Header.Set(header, client)
		return r
	}
	for _, h := range []string{"X-Forwarded-For", "X-Real-IP"} {
		t.Run(h, func(t *testing.T) {
			g.Check(viaProxy(h, "203.0.113.1"))
			g.Check(viaProxy(h, "203.0.113.1"))
			if _, blocked := g.Waiting(viaProxy(h, "203.0.113.1")); !blocked {
				t.Fatal("the guesser behind the proxy is not blocked")
			}
			if _, blocked := g.Waiting(viaProxy(h, "203.0.113.2")); blocked {
				t.Fatal("another client behind the same proxy is blocked")
			}
			g.Succeeded(viaProxy(h, "203.0.113.1"))
		})
	}
	// A remote client cannot choose its address with the headers.
	spoof := func() *http.Request {
		r := req("198.51.100.9:1", "Bearer guess")
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("10.9.9.%d", time.Now().UnixNano()%200))
		r.Header.Set("X-Real-IP", fmt.Sprintf("10.9.8.%d", time.Now().UnixNano()%200))
		return r
	}
	g.Check(spoof())
	g.Check(spoof())
	if _, blocked := g.Waiting(req("198.51.100.9:2", "")); !blocked {
		t.Fatal("a remote client escaped the count with forwarding headers")
	}
	// A proxy that sets no header: the proxy's address.
	g.Check(req("[::1]:1", "Bearer guess"))
	g.Check(req("[::1]:2", "Bearer guess"))
	if _, blocked := g.Waiting(req("[::1]:3", "")); !blocked {
		t.Fatal("loopback without a forwarding header not counted")
	}
	// No rule set: the TCP peer, whatever the headers say.
	plain := New([]string{key}, Limits{Free: 1}, nil)
	plain.Check(viaProxy("X-Forwarded-For", "203.0.113.1"))
	plain.Check(viaProxy("X-Forwarded-For", "203.0.113.1"))
	if _, blocked := plain.Waiting(viaProxy("X-Forwarded-For", "203.0.113.2")); !blocked {
		t.Fatal("without a rule, the forwarded address was used")
	}
}

// A stream of new failing addresses into a full table: each costs an
// amortised fraction of a scan, not a scan of the whole table.
func BenchmarkNewAddressesWhenFull(b *testing.B) {
	c := &clock{t: time.Unix(1e9, 0)}
	g := New([]string{key}, Limits{Free: 1}, c.now) // 10,000 addresses
	addr := func(i int) *http.Request {
		return req(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255), "Bearer guess")
	}
	for i := range 10000 {
		g.Check(addr(i))
	}
	b.ResetTimer()
	for i := range b.N {
		c.add(time.Microsecond)
		g.Check(addr(10000 + i))
	}
}
