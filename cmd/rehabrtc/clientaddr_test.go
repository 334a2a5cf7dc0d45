package main

import (
	"net/http"
	"testing"
)

// TestServeCountsClientsBehindProxy: serve wires the one client-address
// rule (RehabRTC.trusted_proxies) into the API-key backoff. Requests come
// from 127.0.0.1, as from nginx on the same machine: with the default
// (loopback trusted), each forwarded client counts apart; with no proxy
// trusted, the header is ignored and every request counts as 127.0.0.1.
func TestServeCountsClientsBehindProxy(t *testing.T) {
	for name, tc := range map[string]struct {
		trusted   []string
		otherWait bool // whether the second forwarded client must wait too
	}{
		"loopback trusted (default)": {nil, false},
		"no proxy trusted":           {[]string{}, true},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir(), 2)
			if tc.trusted != nil {
				cfg.RehabRTC.TrustedProxies = tc.trusted
			}
			ts := startServer(t, cfg)
			defer ts.stop()
			guess := func(client string) int {
				t.Helper()
				req, _ := http.NewRequest("GET", ts.service+"/api/sessions", nil)
				req.Header.Set("Authorization", "Bearer a-wrong-key-of-some-length-0000000")
				req.Header.Set("X-Forwarded-For", client)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			for range 6 { // 5 free, the 6th sets a wait
				guess("203.0.113.1")
			}
			if code := guess("203.0.113.1"); code != http.StatusTooManyRequests {
				t.Fatalf("the guesser: %d, want 429", code)
			}
			want := http.StatusUnauthorized
			if tc.otherWait {
				want = http.StatusTooManyRequests
			}
			if code := guess("203.0.113.2"); code != want {
				t.Fatalf("another client behind the proxy: %d, want %d", code, want)
			}
		})
	}
}

// A child trusts loopback (the gateway forwards to it) and the CIDRs of
// --trusted-proxies; a bad CIDR or one trusting everyone is refused.
func TestChildTrusted(t *testing.T) {
	for _, tt := range []struct {
		flag string
		n    int // prefixes trusted; -1 = error
	}{
		{"", 2},
		{"127.0.0.0/8,::1/128", 4},
		{" 10.0.0.5/32 , fd00::/8 ", 4},
		{"10.0.0.5", -1},
		{"0.0.0.0/0", -1},
	} {
		got, err := childTrusted(tt.flag)
		if tt.n < 0 && err == nil || tt.n >= 0 && (err != nil || len(got) != tt.n) {
			t.Errorf("childTrusted(%q) = %v, %v; want %d prefixes", tt.flag, got, err, tt.n)
		}
	}
}
