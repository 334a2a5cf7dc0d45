package relay

import (
	"context"
	"strings"
	"testing"
)

func TestRelayIP(t *testing.T) {
	for name, tt := range map[string]struct {
		relayIP, hostname string
		want, err         string
	}{
		"configured":        {"203.0.113.7", "rehab.example.org", "203.0.113.7", ""},
		"hostname is an IP": {"", "198.51.100.4", "198.51.100.4", ""},
		"mapped IPv4":       {"::ffff:198.51.100.4", "x", "198.51.100.4", ""},
		"resolves":          {"", "localhost", "127.0.0.1", ""},
		"does not resolve":  {"", "nothing.invalid", "", `WebRTC.hostname "nothing.invalid" does not resolve`},
		"bad relay_ip":      {"not-an-ip", "x", "", "RehabRTC.turn.relay_ip"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := RelayIP(context.Background(), tt.relayIP, tt.hostname)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("RelayIP = %v, %v; want an error with %q", got, err, tt.err)
				}
				if !strings.Contains(err.Error(), "relay_ip") {
					t.Errorf("error %q does not say what to set", err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("RelayIP = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}
