package hub

import (
	"net/http"
	"strings"
	"testing"
)

// Config.ClientAddress names the client for the per-address cap (the
// service passes its one rule, internal/clientaddr); the hub still counts
// an IPv6 client by its /64, and "" only in the total.
func TestPendingCapUsesClientAddress(t *testing.T) {
	e := newEnv(t, Config{MaxPendingPerAddr: 1, MaxPending: 10,
		ClientAddress: func(r *http.Request) string { return r.Header.Get("X-Test-Client") }})
	pending := func() int64 { return e.hub.cfg.Counters.Pending.Load() }
	from := func(addr string) http.Header { return http.Header{"X-Test-Client": {addr}} }
	var open []*rawConn
	admit := func(addr string) {
		t.Helper()
		n := pending()
		open = append(open, dialRaw(t, e, "/", from(addr)))
		waitFor(t, func() bool { return pending() == n+1 })
	}
	refused := func(addr string) {
		t.Helper()
		texts, code := dialRaw(t, e, "/", from(addr)).readUntilClose(t)
		if code != int(CloseTryAgainLater) || len(texts) != 1 || !strings.Contains(texts[0], `"code":"busy"`) {
			t.Fatalf("from %q: got %q then close %d, want busy and %d", addr, texts, code, CloseTryAgainLater)
		}
	}
	admit("192.0.2.1")
	refused("192.0.2.1")
	admit("192.0.2.2") // another client of the same proxy
	admit("2001:db8:1:2::5")
	refused("2001:db8:1:2::6") // the same /64
	admit("")                  // unknown: the total only
	admit("")
	for _, c := range open {
		_ = c.Close()
	}
	waitFor(t, func() bool { return pending() == 0 })
}
