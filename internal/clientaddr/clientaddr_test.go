package clientaddr

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestAddr(t *testing.T) {
	loop := New(Loopback())
	chain := New(append(Loopback(), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")))
	for name, c := range map[string]struct {
		rule   Rule
		remote string
		xff    []string // one entry per header line
		real   string
		want   string // "" = no address
	}{
		"direct client":                  {loop, "203.0.113.7:4000", nil, "", "203.0.113.7"},
		"direct client spoofs XFF":       {loop, "203.0.113.7:4000", []string{"198.51.100.1"}, "", "203.0.113.7"},
		"direct client spoofs X-Real-IP": {loop, "203.0.113.7:4000", nil, "198.51.100.1", "203.0.113.7"},
		"local proxy, XFF":               {loop, "127.0.0.1:4000", []string{"203.0.113.7"}, "", "203.0.113.7"},
		"local proxy, X-Real-IP":         {loop, "127.0.0.1:4000", nil, "203.0.113.7", "203.0.113.7"},
		"XFF wins over X-Real-IP":        {loop, "127.0.0.1:4000", []string{"203.0.113.7"}, "203.0.113.8", "203.0.113.7"},
		"local proxy, no header":         {loop, "127.0.0.1:4000", nil, "", "127.0.0.1"},
		"IPv6 loopback proxy":            {loop, "[::1]:4000", []string{"2001:db8::5"}, "", "2001:db8::5"},
		"client's own XFF entry ignored": {loop, "127.0.0.1:4000", []string{"198.51.100.1, 203.0.113.7"}, "", "203.0.113.7"},
		"client's XFF line ignored":      {loop, "127.0.0.1:4000", []string{"198.51.100.1", "203.0.113.7"}, "", "203.0.113.7"},
		"chain of trusted proxies":       {chain, "127.0.0.1:4000", []string{"198.51.100.1, 203.0.113.7, 10.1.2.3"}, "", "203.0.113.7"},
		"untrusted hop stops the walk":   {loop, "127.0.0.1:4000", []string{"203.0.113.7, 10.1.2.3"}, "", "10.1.2.3"},
		"every hop trusted":              {chain, "127.0.0.1:4000", []string{"10.0.0.1, 10.0.0.2"}, "", "10.0.0.1"},
		"garbage hop":                    {chain, "127.0.0.1:4000", []string{"203.0.113.7, nonsense, 10.0.0.2"}, "", "10.0.0.2"},
		"garbage right after the peer":   {loop, "127.0.0.1:4000", []string{"nonsense"}, "", "127.0.0.1"},
		"empty XFF":                      {loop, "127.0.0.1:4000", []string{""}, "", "127.0.0.1"},
		"garbage X-Real-IP":              {loop, "127.0.0.1:4000", nil, "nonsense", "127.0.0.1"},
		"hop with a port":                {loop, "127.0.0.1:4000", []string{"203.0.113.7:5555"}, "", "203.0.113.7"},
		"bracketed IPv6 hop with a port": {loop, "127.0.0.1:4000", []string{"[2001:db8::5]:443"}, "", "2001:db8::5"},
		"bracketed IPv6 hop":             {loop, "127.0.0.1:4000", []string{"[2001:db8::5]"}, "", "2001:db8::5"},
		"IPv4-mapped hop":                {loop, "127.0.0.1:4000", []string{"::ffff:203.0.113.7"}, "", "203.0.113.7"},
		"IPv4-mapped loopback peer":      {loop, "[::ffff:127.0.0.1]:4000", []string{"203.0.113.7"}, "", "203.0.113.7"},
		"zone dropped":                   {loop, "127.0.0.1:4000", []string{"fe80::1%eth0"}, "", "fe80::1"},
		"spaces around hops":             {loop, "127.0.0.1:4000", []string{"  203.0.113.7  "}, "", "203.0.113.7"},
		"no proxy trusted":               {Rule{}, "127.0.0.1:4000", []string{"203.0.113.7"}, "", "127.0.0.1"},
		"trusted list empty":             {New(nil), "127.0.0.1:4000", []string{"203.0.113.7"}, "", "127.0.0.1"},
		"peer without a port":            {loop, "203.0.113.7", nil, "", "203.0.113.7"},
		"peer not an address":            {loop, "pipe", []string{"203.0.113.7"}, "", ""},
		"loopback client behind a proxy": {loop, "127.0.0.1:4000", []string{"127.0.0.5"}, "", "127.0.0.5"},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			for _, l := range c.xff {
				r.Header.Add("X-Forwarded-For", l)
			}
			if c.real != "" {
				r.Header.Set("X-Real-IP", c.real)
			}
			if got := c.rule.String(r); got != c.want {
				t.Errorf("client of %s (XFF %q, X-Real-IP %q) = %q, want %q", c.remote, c.xff, c.real, got, c.want)
			}
		})
	}
}

// A header of any length costs a bounded walk, and its answer is one of
// the last hops, never an address from far to the left.
func TestLongChainIsBounded(t *testing.T) {
	chain := New([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}) // trusts everything: the walk never stops early
	hops := make([]string, 100000)
	for i := range hops {
		hops[i] = "10.0.0.1"
	}
	hops[0] = "203.0.113.7"
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Forwarded-For", strings.Join(hops, ","))
	if got := chain.String(r); got != "10.0.0.1" {
		t.Fatalf("client %q, want the left-most hop looked at (10.0.0.1)", got)
	}
}

func TestTrusted(t *testing.T) {
	r := New([]netip.Prefix{netip.MustParsePrefix("10.1.2.3/16"), {}})
	for addr, want := range map[string]bool{
		"10.1.200.1":      true, // the prefix is masked
		"10.2.0.1":        false,
		"::ffff:10.1.0.9": true, // IPv4-mapped
		"127.0.0.1":       false,
		"2001:db8::1":     false,
	} {
		if got := r.Trusted(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", addr, got, want)
		}
	}
}
