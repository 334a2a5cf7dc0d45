package config

import (
	"encoding/json"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// writeConfig writes content to a fresh file and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func noEnv(string) string { return "" }

func TestDefault(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	for name, tt := range map[string]struct{ got, want any }{
		"Service.name":              {c.Service.Name, "VideoRehabService"},
		"Service.hostname":          {c.Service.Hostname, "127.0.0.1"},
		"Service.port":              {c.Service.Port, 4070},
		"Service.debug_mode":        {c.Service.DebugMode, false},
		"Backend":                   {c.Backend, Backend{VerifyTLS: true}},
		"Redis":                     {c.Redis, Redis{}},
		"WebRTC":                    {c.WebRTC, WebRTC{Hostname: "127.0.0.1", ExternalPort: 40075, LocalBasePort: 8080, MaxSessions: 50}},
		"RehabRTC.data_dir":         {c.RehabRTC.DataDir, "./rehabrtc-data"},
		"RehabRTC.api_keys":         {c.RehabRTC.APIKeys, []string{}},
		"RehabRTC.session_bind":     {c.RehabRTC.SessionBind, "127.0.0.1"},
		"RehabRTC.gateway":          {c.RehabRTC.Gateway, Gateway{Enabled: true, Listen: ":40075", Hosts: []string{}}},
		"RehabRTC.url_scheme":       {c.RehabRTC.URLScheme, ""},
		"RehabRTC.ice_servers":      {c.RehabRTC.ICEServers, []ICEServer{}},
		"RehabRTC.log_level":        {c.RehabRTC.LogLevel, "info"},
		"RehabRTC.log_format":       {c.RehabRTC.LogFormat, "text"},
		"RehabRTC.busy_reply":       {c.RehabRTC.BusyReply, false},
		"RehabRTC.peer_rate_limit":  {c.RehabRTC.PeerRateLimit, PeerRateLimit{PerSecond: 100, Burst: 120}},
		"RehabRTC.trusted_proxies":  {c.RehabRTC.TrustedProxies, []string{"127.0.0.0/8", "::1/128"}},
		"TrustedProxyPrefixes()":    {c.TrustedProxyPrefixes(), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		"ServiceAddr()":             {c.ServiceAddr(), "127.0.0.1:4070"},
		"GatewayAddr()":             {c.GatewayAddr(), ":40075"},
		"URLScheme()":               {c.URLScheme(), "http"},
		"RedisEnabled()":            {c.RedisEnabled(), false},
		"BackendEnabled()":          {c.BackendEnabled(), false},
		"GatewayTLS()":              {c.GatewayTLS(), false},
		"fresh value on every call": {Default() != Default(), true},
	} {
		t.Run(name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		edit                 func(*Config)
		service, gw, scheme  string
		redis, backend, gtls bool
	}{
		"defaults": {edit: func(*Config) {}, service: "127.0.0.1:4070", gw: ":40075", scheme: "http"},
		"listen derived from external_port": {
			edit:    func(c *Config) { c.RehabRTC.Gateway.Listen = ""; c.WebRTC.ExternalPort = 8443 },
			service: "127.0.0.1:4070", gw: ":8443", scheme: "http",
		},
		"gateway TLS": {
			edit:    func(c *Config) { c.RehabRTC.Gateway.TLSCert, c.RehabRTC.Gateway.TLSKey = "c.pem", "k.pem" },
			service: "127.0.0.1:4070", gw: ":40075", scheme: "https", gtls: true,
		},
		"gateway disabled: proxy in front does TLS": {
			edit:    func(c *Config) { c.RehabRTC.Gateway.Enabled = false },
			service: "127.0.0.1:4070", gw: ":40075", scheme: "https",
		},
		"explicit scheme wins": {
			edit:    func(c *Config) { c.RehabRTC.Gateway.Enabled = false; c.RehabRTC.URLScheme = "http" },
			service: "127.0.0.1:4070", gw: ":40075", scheme: "http",
		},
		"IPv6 service host, Redis and Backend": {
			edit: func(c *Config) {
				c.Service.Hostname = "::1"
				c.Redis.Hostname = "cache"
				c.Backend.Hostname = "proxy"
			},
			service: "[::1]:4070", gw: ":40075", scheme: "http", redis: true, backend: true,
		},
		"empty service host listens everywhere": {
			edit:    func(c *Config) { c.Service.Hostname = "" },
			service: ":4070", gw: ":40075", scheme: "http",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.edit(c)
			if got := c.ServiceAddr(); got != tt.service {
				t.Errorf("ServiceAddr() = %q, want %q", got, tt.service)
			}
			if got := c.GatewayAddr(); got != tt.gw {
				t.Errorf("GatewayAddr() = %q, want %q", got, tt.gw)
			}
			if got := c.URLScheme(); got != tt.scheme {
				t.Errorf("URLScheme() = %q, want %q", got, tt.scheme)
			}
			if got := c.RedisEnabled(); got != tt.redis {
				t.Errorf("RedisEnabled() = %v, want %v", got, tt.redis)
			}
			if got := c.BackendEnabled(); got != tt.backend {
				t.Errorf("BackendEnabled() = %v, want %v", got, tt.backend)
			}
			if got := c.GatewayTLS(); got != tt.gtls {
				t.Errorf("GatewayTLS() = %v, want %v", got, tt.gtls)
			}
		})
	}
}

// custom is a configuration that sets every key to a non-default value.
func custom() *Config {
	c := Default()
	c.Service = Service{Name: "Other", Hostname: "10.0.0.2", Port: 4071, DebugMode: true}
	c.Backend = Backend{Hostname: "proxy", Port: 443, VerifyTLS: false}
	c.Redis = Redis{Hostname: "cache", Port: 6380, DB: 3, Username: "u", Password: "redis-secret"}
	c.WebRTC = WebRTC{
		Hostname: "rehab.example.org", ExternalPort: 443, LocalBasePort: 9000, MaxSessions: 10,
		WorkingDirectory: "../../../easyrtc", Executable: "node", Script: "server.js",
	}
	c.RehabRTC = RehabRTC{
		DataDir:     "/var/lib/rehabrtc",
		APIKeys:     []string{strings.Repeat("k", 32), strings.Repeat("j", 40)},
		SessionBind: "::1",
		Gateway:     Gateway{Enabled: true, Listen: "0.0.0.0:8443", TLSCert: "c.pem", TLSKey: "k.pem", Hosts: []string{"rehab.example.net", "10.1.2.3"}},
		URLScheme:   "https",
		ICEServers: []ICEServer{
			{URLs: StringList{"stun:stun.example.org:3478"}},
			{URLs: StringList{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"}, Username: "u", Credential: "turn-secret"},
		},
		LogLevel:      "debug",
		LogFormat:     "json",
		BusyReply:     true,
		PeerRateLimit: PeerRateLimit{PerSecond: 500, Burst: 1e9},
		Cluster: Cluster{Enabled: true, Name: "clinic", NodeID: "node-1", InternalAddr: "10.0.0.2:4071", LeaseTimeMS: 3000,
			Redis: ClusterRedis{Addrs: []string{"10.0.0.9:26379"}, MasterName: "main", DB: 2, Username: "c", Password: "cluster-secret"}},
		TURN: TURN{
			Enabled: true, Listen: "0.0.0.0:3479", Port: 3480, RelayIP: "203.0.113.7", RelayBind: "10.0.0.2",
			RelayPortMin: 50000, RelayPortMax: 50999, GatewayTLS: false, TLSListen: ":5349", TLSCert: "t.pem", TLSKey: "tk.pem",
			Realm: "clinic", CredentialTTL: 300, MaxLifetime: 3600, MaxPerPeer: 4, MaxPerSession: 40,
			AllowPeers: []string{"10.20.0.0/16"}, ReadLoops: 3, SocketBuffer: 1 << 20,
			External: External{URLs: StringList{"turns:coturn.example.org:443?transport=tcp"}, Secret: strings.Repeat("s", 32)},
		},
		MediaMode: MediaAuto,
		SFU:       SFU{Bind: "0.0.0.0", UDPPort: 40077, TCPPort: 40078, NAT1To1IPs: []string{"203.0.113.7"}},
	}
	return c
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]*Config{"default": Default(), "custom": custom()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			b, err := c.JSON()
			if err != nil {
				t.Fatal(err)
			}
			got, err := LoadEnv(writeConfig(t, string(b)), noEnv)
			if err != nil {
				t.Fatalf("LoadEnv(JSON()) = %v\n%s", err, b)
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("round trip changed the config:\ngot  %+v\nwant %+v", got, c)
			}
		})
	}
}

func TestJSONHasEveryKey(t *testing.T) {
	t.Parallel()
	c := Default()
	c.RehabRTC.APIKeys, c.RehabRTC.ICEServers = nil, nil // still rendered as []
	b, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "{\n  \"Service\": {\n    \"name\"") || !strings.HasSuffix(string(b), "}\n") {
		t.Errorf("JSON() is not indented with two spaces:\n%s", b)
	}
	var file map[string]map[string]any
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"Service":  {"debug_mode", "hostname", "name", "port"},
		"Backend":  {"ca_file", "hostname", "port", "verify_tls"},
		"Redis":    {"db", "hostname", "password", "port", "username"},
		"WebRTC":   {"executable", "external_port", "hostname", "local_base_port", "max_sessions", "script", "working_directory"},
		"RehabRTC": {"api_keys", "busy_reply", "cluster", "data_dir", "ehrc", "gateway", "ice_servers", "log_format", "log_level", "media_mode", "peer_rate_limit", "personal_data_days", "session_bind", "sfu", "trusted_proxies", "turn", "url_scheme"},
	}
	if len(file) != len(want) {
		t.Errorf("sections = %v, want %v", slices.Sorted(maps.Keys(file)), want)
	}
	for section, keys := range want {
		if got := slices.Sorted(maps.Keys(file[section])); !slices.Equal(got, keys) {
			t.Errorf("%s keys = %v, want %v", section, got, keys)
		}
	}
	gw, _ := file["RehabRTC"]["gateway"].(map[string]any)
	if got := slices.Sorted(maps.Keys(gw)); !slices.Equal(got, []string{"enabled", "hosts", "listen", "tls_cert", "tls_key"}) {
		t.Errorf("RehabRTC.gateway keys = %v", got)
	}
	turn, _ := file["RehabRTC"]["turn"].(map[string]any)
	if got := slices.Sorted(maps.Keys(turn)); !slices.Equal(got, []string{"allow_peers", "credential_ttl", "enabled", "external",
		"gateway_tls", "listen", "max_allocations_per_peer", "max_allocations_per_session", "max_lifetime", "port", "read_loops",
		"realm", "relay_bind", "relay_ip", "relay_port_max", "relay_port_min", "socket_buffer", "tls_cert", "tls_key", "tls_listen"}) {
		t.Errorf("RehabRTC.turn keys = %v", got)
	}
	for _, key := range []string{"api_keys", "ice_servers"} {
		if v, ok := file["RehabRTC"][key].([]any); !ok || len(v) != 0 {
			t.Errorf("RehabRTC.%s = %#v, want []", key, file["RehabRTC"][key])
		}
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	c := custom()
	r := c.Redacted()
	if r.Redis.Password != "<redacted>" {
		t.Errorf("Redis.password = %q", r.Redis.Password)
	}
	if !slices.Equal(r.RehabRTC.APIKeys, []string{"<redacted>", "<redacted>"}) {
		t.Errorf("api_keys = %q", r.RehabRTC.APIKeys)
	}
	if got := r.RehabRTC.ICEServers[1].Credential; got != "<redacted>" {
		t.Errorf("ice_servers[1].credential = %q", got)
	}
	if got := r.RehabRTC.ICEServers[0].Credential; got != "" {
		t.Errorf("empty credential became %q", got)
	}
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if got := r.RehabRTC.TURN.External.Secret; got != "<redacted>" {
		t.Errorf("turn.external.secret = %q", got)
	}
	for _, secret := range append([]string{"redis-secret", "turn-secret", "cluster-secret", c.RehabRTC.TURN.External.Secret}, c.RehabRTC.APIKeys...) {
		if strings.Contains(string(b), secret) {
			t.Errorf("redacted JSON contains %q", secret)
		}
	}
	if !reflect.DeepEqual(c, custom()) {
		t.Error("Redacted modified the original")
	}
	if d := Default().Redacted(); d.Redis.Password != "" {
		t.Errorf("unset password redacted to %q", d.Redis.Password)
	}
}

func TestStringList(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]StringList{
		`"stun:a"`:            {"stun:a"},
		`["stun:a","stun:b"]`: {"stun:a", "stun:b"},
		`[]`:                  {},
		`null`:                nil,
	} {
		t.Run(in, func(t *testing.T) {
			var got StringList
			if err := json.Unmarshal([]byte(in), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
	for _, in := range []string{`1`, `{}`, `[1]`, `true`} {
		t.Run(in, func(t *testing.T) {
			var got StringList
			if err := json.Unmarshal([]byte(in), &got); err == nil {
				t.Errorf("Unmarshal(%s) = %v, want error", in, got)
			}
		})
	}
}
