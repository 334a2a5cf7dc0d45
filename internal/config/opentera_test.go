package config

import "testing"

// TestOpenTeraGatewayDefault: a file with a Backend is an OpenTera install,
// whose nginx holds WebRTC.external_port, so the gateway is off unless the
// file turns it on; any other file keeps the gateway on by default.
func TestOpenTeraGatewayDefault(t *testing.T) {
	t.Parallel()
	const backend = `"Backend": {"hostname": "127.0.0.1", "port": 40075}, "Redis": {"hostname": "127.0.0.1", "port": 6379}`
	for name, tt := range map[string]struct {
		file string
		want bool
	}{
		"Backend, no RehabRTC":         {`{` + backend + `}`, false},
		"Backend, RehabRTC without it": {`{` + backend + `, "RehabRTC": {"gateway": {"listen": ":40076"}}}`, false},
		"Backend, gateway on":          {`{` + backend + `, "RehabRTC": {"gateway": {"enabled": true, "listen": ":40076"}}}`, true},
		"Backend, gateway off":         {`{` + backend + `, "RehabRTC": {"gateway": {"enabled": false}}}`, false},
		"Redis only":                   {`{"Redis": {"hostname": "127.0.0.1", "port": 6379}}`, true},
		"standalone":                   {`{"WebRTC": {"hostname": "rehab.example.org", "external_port": 443, "local_base_port": 8080, "max_sessions": 5}}`, true},
		"standalone, gateway off":      {`{"RehabRTC": {"gateway": {"enabled": false}}}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := LoadEnv(writeConfig(t, tt.file), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if c.RehabRTC.Gateway.Enabled != tt.want {
				t.Errorf("gateway enabled = %v, want %v", c.RehabRTC.Gateway.Enabled, tt.want)
			}
			if !tt.want && c.URLScheme() != "https" {
				t.Errorf("URL scheme %q behind a proxy, want https", c.URLScheme())
			}
		})
	}
}

func TestBackendCAFile(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Backend = Backend{Hostname: "127.0.0.1", Port: 40075, VerifyTLS: true, CAFile: "/etc/rehabrtc/ca.pem"}
	if err := c.Validate(); err != nil {
		t.Fatalf("CA file with verification: %v", err)
	}
	c.Backend.VerifyTLS = false
	if err := c.Validate(); err == nil || err.Error() != "Backend.ca_file: has no effect with Backend.verify_tls false: remove one of them" {
		t.Fatalf("CA file without verification: %v", err)
	}
}
