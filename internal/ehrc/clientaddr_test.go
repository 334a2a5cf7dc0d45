package ehrc

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/clientaddr"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address src (all of 127.0.0.0/8 is this host's), so that a test over
// real TCP can play a proxy and a direct client with different peers.
func clientFrom(t *testing.T, src string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Behind a trusted proxy, create-room's rate limit counts each forwarded
// client apart (before, everyone behind OpenTera's nginx shared one bucket
// and one flooder starved every patient); a client that is not a trusted
// proxy cannot escape its own bucket by sending X-Forwarded-For.
func TestCreateRoomLimitBehindProxy(t *testing.T) {
	base := time.Now()
	rule := clientaddr.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")})
	e := newTestEnv(t, Config{Now: func() time.Time { return base }, ClientAddress: rule.String})
	proxy, direct := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
	create := func(c *http.Client, xff string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/create-room", nil)
		req.Header.Set("X-Forwarded-For", xff)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	burst := func(c *http.Client, xff func(i int) string) (ok, limited int) {
		for i := range 30 {
			switch code := create(c, xff(i)); code {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				limited++
			default:
				t.Fatalf("create-room: %d", code)
			}
		}
		return ok, limited
	}
	if ok, limited := burst(proxy, func(int) string { return "198.51.100.7, 203.0.113.1" }); ok != 20 || limited != 10 {
		t.Fatalf("flooder behind the proxy: %d created, %d limited; want 20 and 10", ok, limited)
	}
	for _, patient := range []string{"203.0.113.2", "2001:db8::9"} {
		if code := create(proxy, patient); code != http.StatusOK {
			t.Fatalf("patient %s behind the same proxy: %d, want 200", patient, code)
		}
	}
	spoofed := func(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }
	if ok, limited := burst(direct, spoofed); ok != 20 || limited != 10 {
		t.Fatalf("direct client with a forged X-Forwarded-For: %d created, %d limited; want 20 and 10", ok, limited)
	}
}
