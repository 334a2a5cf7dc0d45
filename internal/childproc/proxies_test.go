package childproc

import (
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// A native child learns RehabRTC.trusted_proxies on its command line (no
// secret), so that its hub names clients by the same rule as the parent;
// with none configured it gets no flag (it trusts loopback, the gateway).
func TestNativeCommandTrustedProxies(t *testing.T) {
	spec := session.RunSpec{Port: 9001, SessionID: 7}
	for _, tt := range []struct {
		proxies []string
		want    string // "" = no flag
	}{
		{[]string{"127.0.0.0/8", "10.0.0.5/32"}, "--trusted-proxies=127.0.0.0/8,10.0.0.5/32"},
		{nil, ""},
	} {
		r := &Runner{Executable: "rehabrtc", Script: "signal", Mode: Native, TrustedProxies: tt.proxies}
		cmd, cleanup, err := r.command(spec, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		cleanup()
		has := slices.ContainsFunc(cmd.Args, func(a string) bool { return strings.HasPrefix(a, "--trusted-proxies") })
		if tt.want == "" && has || tt.want != "" && !slices.Contains(cmd.Args, tt.want) {
			t.Errorf("proxies %v: args %q, want %q", tt.proxies, cmd.Args, tt.want)
		}
	}
}
