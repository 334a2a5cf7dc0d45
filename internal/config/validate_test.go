package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// fieldErrors returns the *FieldError values joined in err.
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v is not joined", err)
	}
	var out []*FieldError
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a *FieldError", e)
		}
		out = append(out, fe)
	}
	return out
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 32)
	for name, tt := range map[string]struct {
		edit  func(*Config)
		field string
		msg   string
	}{
		"Service.name empty":     {func(c *Config) { c.Service.Name = " " }, "Service.name", "must not be empty"},
		"Service.hostname URL":   {func(c *Config) { c.Service.Hostname = "http://a" }, "Service.hostname", `must be a host name or IP address, without scheme (got "http://a")`},
		"Service.port 0":         {func(c *Config) { c.Service.Port = 0 }, "Service.port", "must be between 1 and 65535 (got 0)"},
		"Service.port too large": {func(c *Config) { c.Service.Port = 65536 }, "Service.port", "must be between 1 and 65535 (got 65536)"},

		"Backend.port missing": {func(c *Config) { c.Backend.Hostname = "proxy" }, "Backend.port", "must be between 1 and 65535 (got 0)"},
		"Backend.hostname missing": {func(c *Config) { c.Backend.Port = 40075 }, "Backend.hostname",
			"must be set when Backend.port is set (empty means no OpenTera backend)"},
		"Backend.hostname path": {func(c *Config) { c.Backend.Hostname, c.Backend.Port = "proxy/api", 1 }, "Backend.hostname",
			`must be a host name or IP address, without path (got "proxy/api")`},

		"Redis.port missing": {func(c *Config) { c.Redis.Hostname = "cache" }, "Redis.port", "must be between 1 and 65535 (got 0)"},
		"Redis.port out of range": {func(c *Config) { c.Redis.Hostname, c.Redis.Port = "cache", 70000 }, "Redis.port",
			"must be between 1 and 65535 (got 70000)"},
		"Redis.hostname missing": {func(c *Config) { c.Redis.Port = 6379 }, "Redis.hostname", "must be set when Redis.port is set (empty means no Redis)"},
		"Redis.db negative":      {func(c *Config) { c.Redis.DB = -1 }, "Redis.db", "must not be negative (got -1)"},

		"RehabRTC.media_mode":       {func(c *Config) { c.RehabRTC.MediaMode = "p2p" }, "RehabRTC.media_mode", `must be one of "mesh", "sfu", "auto" (got "p2p")`},
		"RehabRTC.sfu.bind":         {func(c *Config) { c.RehabRTC.SFU.Bind = "any" }, "RehabRTC.sfu.bind", `must be an IP address such as 0.0.0.0, or empty for every interface (got "any")`},
		"RehabRTC.sfu.udp_port":     {func(c *Config) { c.RehabRTC.SFU.UDPPort = 70000 }, "RehabRTC.sfu.udp_port", "must be between 0 (a free port) and 65535 (got 70000)"},
		"RehabRTC.sfu.tcp_port":     {func(c *Config) { c.RehabRTC.SFU.TCPPort = -1 }, "RehabRTC.sfu.tcp_port", "must be between 0 (a free port) and 65535 (got -1)"},
		"RehabRTC.sfu.nat_1to1_ips": {func(c *Config) { c.RehabRTC.SFU.NAT1To1IPs = []string{"host.example"} }, "RehabRTC.sfu.nat_1to1_ips[0]", `must be an IP address (got "host.example")`},

		"WebRTC.hostname empty":    {func(c *Config) { c.WebRTC.Hostname = "" }, "WebRTC.hostname", `must not be empty (got "")`},
		"WebRTC.hostname scheme":   {func(c *Config) { c.WebRTC.Hostname = "https://rehab.org" }, "WebRTC.hostname", `must be a host name or IP address, without scheme (got "https://rehab.org")`},
		"WebRTC.hostname path":     {func(c *Config) { c.WebRTC.Hostname = "rehab.org/x" }, "WebRTC.hostname", `must be a host name or IP address, without path (got "rehab.org/x")`},
		"WebRTC.hostname space":    {func(c *Config) { c.WebRTC.Hostname = "rehab org" }, "WebRTC.hostname", `must not contain spaces (got "rehab org")`},
		"WebRTC.hostname port":     {func(c *Config) { c.WebRTC.Hostname = "rehab.org:443" }, "WebRTC.hostname", `must not include a port (got "rehab.org:443")`},
		"WebRTC.hostname brackets": {func(c *Config) { c.WebRTC.Hostname = "[::1]" }, "WebRTC.hostname", `must be written without brackets (got "[::1]")`},
		"WebRTC.hostname char":     {func(c *Config) { c.WebRTC.Hostname = "a!b" }, "WebRTC.hostname", `invalid character '!' in host name (got "a!b")`},
		"WebRTC.external_port 0":   {func(c *Config) { c.WebRTC.ExternalPort = 0 }, "WebRTC.external_port", "must be between 1 and 65535 (got 0)"},
		"WebRTC.external_port big": {func(c *Config) { c.WebRTC.ExternalPort = 65536 }, "WebRTC.external_port", "must be between 1 and 65535 (got 65536)"},
		"WebRTC.local_base_port 0": {func(c *Config) { c.WebRTC.LocalBasePort = 0 }, "WebRTC.local_base_port", "must be between 1 and 65535 (got 0)"},
		"WebRTC.max_sessions 0":    {func(c *Config) { c.WebRTC.MaxSessions = 0 }, "WebRTC.max_sessions", "must be between 1 and 10000 (got 0)"},
		"WebRTC.max_sessions big":  {func(c *Config) { c.WebRTC.MaxSessions = 10001 }, "WebRTC.max_sessions", "must be between 1 and 10000 (got 10001)"},
		"WebRTC port pool past 65535": {func(c *Config) { c.WebRTC.LocalBasePort = 65500 }, "WebRTC.max_sessions",
			"session ports 65500-65549 go past 65535"},
		"pool includes Service.port": {func(c *Config) { c.Service.Port = 8129 }, "WebRTC.local_base_port",
			"session ports 8080-8129 include Service.port 8129"},
		"pool includes gateway port": {func(c *Config) { c.RehabRTC.Gateway.Listen = ":8080" }, "WebRTC.local_base_port",
			"session ports 8080-8129 include the gateway port 8080"},
		"pool includes derived gateway port": {func(c *Config) { c.RehabRTC.Gateway.Listen, c.WebRTC.ExternalPort = "", 8100 },
			"WebRTC.local_base_port", "session ports 8080-8129 include the gateway port 8100"},

		"data_dir empty":    {func(c *Config) { c.RehabRTC.DataDir = "" }, "RehabRTC.data_dir", "must not be empty"},
		"api key too short": {func(c *Config) { c.RehabRTC.APIKeys = []string{long, "short"} }, "RehabRTC.api_keys[1]", "must be at least 32 characters (got 5)"},
		"api key spaces":    {func(c *Config) { c.RehabRTC.APIKeys = []string{" " + long} }, "RehabRTC.api_keys[0]", "must not begin or end with spaces"},
		"peer rate zero": {func(c *Config) { c.RehabRTC.PeerRateLimit.PerSecond = 0 }, "RehabRTC.peer_rate_limit.messages_per_second",
			"must be above 0 and at most 1e+09 (got 0)"},
		"peer burst below one": {func(c *Config) { c.RehabRTC.PeerRateLimit.Burst = 0.5 }, "RehabRTC.peer_rate_limit.burst",
			"must be between 1 and 1e+09 (got 0.5)"},
		"session_bind name": {func(c *Config) { c.RehabRTC.SessionBind = "localhost" }, "RehabRTC.session_bind", `must be an IP address such as 127.0.0.1 (got "localhost")`},
		"session_bind empty": {func(c *Config) { c.RehabRTC.SessionBind = "" }, "RehabRTC.session_bind",
			`must be an IP address such as 127.0.0.1 (got "")`},
		"gateway.listen no port": {func(c *Config) { c.RehabRTC.Gateway.Listen = "40075" }, "RehabRTC.gateway.listen",
			`must be host:port such as ":40075" (got "40075")`},
		"gateway.listen named port": {func(c *Config) { c.RehabRTC.Gateway.Listen = ":https" }, "RehabRTC.gateway.listen",
			`port must be a number between 0 and 65535 (got "https")`},
		"gateway.listen port range": {func(c *Config) { c.RehabRTC.Gateway.Listen = ":65536" }, "RehabRTC.gateway.listen",
			`port must be a number between 0 and 65535 (got "65536")`},
		"gateway.listen bad host": {func(c *Config) { c.RehabRTC.Gateway.Listen = "a b:1" }, "RehabRTC.gateway.listen",
			`host must not contain spaces (got "a b")`},
		"gateway.tls_cert only": {func(c *Config) { c.RehabRTC.Gateway.TLSCert = "c.pem" }, "RehabRTC.gateway.tls_key", "must be set when tls_cert is set"},
		"gateway.tls_key only":  {func(c *Config) { c.RehabRTC.Gateway.TLSKey = "k.pem" }, "RehabRTC.gateway.tls_cert", "must be set when tls_key is set"},
		"gateway.hosts with port": {func(c *Config) { c.RehabRTC.Gateway.Hosts = []string{"ok.example", "a.example:443"} }, "RehabRTC.gateway.hosts[1]",
			"must not include a port (got \"a.example:443\")"},
		"gateway.hosts with scheme": {func(c *Config) { c.RehabRTC.Gateway.Hosts = []string{"https://a.example"} }, "RehabRTC.gateway.hosts[0]",
			"must be a host name or IP address, without scheme (got \"https://a.example\")"},
		"gateway.hosts too many": {func(c *Config) { c.RehabRTC.Gateway.Hosts = make([]string, 65); fill(c.RehabRTC.Gateway.Hosts, "h") }, "RehabRTC.gateway.hosts",
			"at most 64 names (got 65)"},
		"trusted_proxies not a CIDR": {func(c *Config) { c.RehabRTC.TrustedProxies = []string{"127.0.0.0/8", "10.0.0.5"} }, "RehabRTC.trusted_proxies[1]",
			`must be a CIDR such as 10.0.0.5/32 or 127.0.0.0/8 (got "10.0.0.5")`},
		"trusted_proxies everyone": {func(c *Config) { c.RehabRTC.TrustedProxies = []string{"::/0"} }, "RehabRTC.trusted_proxies[0]",
			`must not trust every address: list the proxies' own addresses (got "::/0")`},
		"trusted_proxies too many": {func(c *Config) {
			c.RehabRTC.TrustedProxies = make([]string, 65)
			fill(c.RehabRTC.TrustedProxies, "10.0.0.1/32")
		}, "RehabRTC.trusted_proxies",
			"at most 64 CIDRs (got 65)"},
		"url_scheme":     {func(c *Config) { c.RehabRTC.URLScheme = "HTTPS" }, "RehabRTC.url_scheme", `must be one of "", "http", "https" (got "HTTPS")`},
		"ice urls empty": {func(c *Config) { c.RehabRTC.ICEServers = []ICEServer{{}} }, "RehabRTC.ice_servers[0].urls", "must list at least one URL"},
		"ice url scheme": {func(c *Config) {
			c.RehabRTC.ICEServers = []ICEServer{{URLs: StringList{"stun:a"}}, {URLs: StringList{"stun:b", "https://c"}}}
		}, "RehabRTC.ice_servers[1].urls", `"https://c" must start with stun:, stuns:, turn: or turns:`},
		"ice url no host": {func(c *Config) { c.RehabRTC.ICEServers = []ICEServer{{URLs: StringList{"stun:"}}} },
			"RehabRTC.ice_servers[0].urls", `"stun:" has no host`},
		"turn without credential": {func(c *Config) {
			c.RehabRTC.ICEServers = []ICEServer{{URLs: StringList{"turns:t:5349"}, Username: "u"}}
		}, "RehabRTC.ice_servers[0]", "turn: and turns: URLs need username and credential"},
		"turn listen":     {func(c *Config) { c.RehabRTC.TURN.Listen = "3478" }, "RehabRTC.turn.listen", `must be host:port such as ":3478" (got "3478")`},
		"turn relay_ip":   {func(c *Config) { c.RehabRTC.TURN.RelayIP = "0.0.0.0" }, "RehabRTC.turn.relay_ip", `must be a unicast IP address such as 203.0.113.7 (got "0.0.0.0")`},
		"turn port range": {func(c *Config) { c.RehabRTC.TURN.RelayPortMin = 60000; c.RehabRTC.TURN.RelayPortMax = 50000 }, "RehabRTC.turn.relay_port_max", "must not be below relay_port_min (60000 > 50000)"},
		"turn ttl":        {func(c *Config) { c.RehabRTC.TURN.CredentialTTL = 5 }, "RehabRTC.turn.credential_ttl", "must be between 60 and 86400 seconds (got 5)"},
		"turn allow":      {func(c *Config) { c.RehabRTC.TURN.AllowPeers = []string{"10.0.0.1"} }, "RehabRTC.turn.allow_peers[0]", `must be a CIDR prefix such as 10.20.0.0/16 (got "10.0.0.1")`},
		"turn quota":      {func(c *Config) { c.RehabRTC.TURN.MaxPerSession = 2 }, "RehabRTC.turn.max_allocations_per_session", "must be at least max_allocations_per_peer (got 2)"},
		"turn in pool":    {func(c *Config) { c.RehabRTC.TURN.Listen = ":8081" }, "WebRTC.local_base_port", "session ports 8080-8129 include the TURN port 8081"},
		"turn external secret": {func(c *Config) { c.RehabRTC.TURN.External.URLs = StringList{"turn:coturn:3478"} }, "RehabRTC.turn.external.secret",
			"must be at least 32 characters when urls are set (got 0); set REHABRTC_TURN_SECRET"},
		"turn external url": {func(c *Config) {
			c.RehabRTC.TURN.External = External{URLs: StringList{"stun:x"}, Secret: strings.Repeat("s", 32)}
		}, "RehabRTC.turn.external.urls", `"stun:x" must be a turn: or turns: URL with a host`},
		"log_level":          {func(c *Config) { c.RehabRTC.LogLevel = "verbose" }, "RehabRTC.log_level", `must be one of "debug", "info", "warn", "error" (got "verbose")`},
		"log_format":         {func(c *Config) { c.RehabRTC.LogFormat = "xml" }, "RehabRTC.log_format", `must be one of "text", "json" (got "xml")`},
		"personal_data_days": {func(c *Config) { c.RehabRTC.PersonalDataDays = -1 }, "RehabRTC.personal_data_days", "must be between 0 and 3650 (got -1)"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.edit(c)
			got := fieldErrors(t, c.Validate())
			if len(got) != 1 || got[0].Field != tt.field || got[0].Msg != tt.msg {
				t.Errorf("Validate() = %v\nwant %s: %s", got, tt.field, tt.msg)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(*Config){
		"IPv6 hosts": func(c *Config) {
			c.WebRTC.Hostname, c.Service.Hostname, c.RehabRTC.SessionBind = "2001:db8::1", "::1", "::"
			c.RehabRTC.Gateway.Listen = "[::]:443"
		},
		"host names": func(c *Config) {
			c.WebRTC.Hostname, c.Backend.Hostname, c.Backend.Port = "rehab-1.example_org.ca", "proxy", 443
		},
		"gateway on any free port":      func(c *Config) { c.RehabRTC.Gateway.Listen = "127.0.0.1:0" },
		"disabled gateway in port pool": func(c *Config) { c.RehabRTC.Gateway.Enabled, c.RehabRTC.Gateway.Listen = false, ":8080" },
		"last port 65535":               func(c *Config) { c.WebRTC.LocalBasePort, c.WebRTC.MaxSessions = 65486, 50 },
		"max_sessions 10000":            func(c *Config) { c.WebRTC.LocalBasePort, c.WebRTC.MaxSessions = 20000, 10000 },
		"bind all interfaces":           func(c *Config) { c.RehabRTC.SessionBind = "0.0.0.0" },
		"no trusted proxy":              func(c *Config) { c.RehabRTC.TrustedProxies = []string{} },
		"proxies elsewhere":             func(c *Config) { c.RehabRTC.TrustedProxies = []string{"10.0.0.5/32", "fd00::/8"} },
		"ICE servers": func(c *Config) {
			c.RehabRTC.ICEServers = []ICEServer{
				{URLs: StringList{"STUN:stun.example.org"}},
				{URLs: StringList{"turn:t:3478?transport=tcp"}, Username: "u", Credential: "c"},
			}
		},
		"OpenTera process mode": func(c *Config) {
			c.WebRTC.WorkingDirectory, c.WebRTC.Executable, c.WebRTC.Script = "../../../easyrtc", "node", "server.js"
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			edit(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Service.Name = ""
	c.Redis.Hostname = "cache"
	c.WebRTC.MaxSessions = 0
	c.RehabRTC.LogFormat = "yaml"
	c.RehabRTC.Gateway.TLSKey = "k.pem"
	var fields []string
	for _, fe := range fieldErrors(t, c.Validate()) {
		fields = append(fields, fe.Field)
	}
	want := []string{"Service.name", "Redis.port", "WebRTC.max_sessions", "RehabRTC.gateway.tls_cert", "RehabRTC.log_format"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
}

func fill(s []string, v string) {
	for i := range s {
		s[i] = v
	}
}
