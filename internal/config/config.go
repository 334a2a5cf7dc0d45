// Package config defines rehabrtc's configuration: one JSON file whose
// Service, Backend, Redis and WebRTC sections are those of OpenTera's
// VideoRehabService.json (an unchanged OpenTera file loads and validates),
// plus a RehabRTC section for settings of our own.
//
// Load starts from Default, decodes the file strictly (unknown keys are
// errors), applies secrets from the environment, then runs Validate, which
// reports every invalid field at once. Errors name the file and the field as
// Section.key. Domain packages should receive plain values taken from a
// Config, never the *Config itself.
package config

import (
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Config is the whole configuration file. The JSON key of each field is
// given in its struct tag; the first four sections use OpenTera's names.
type Config struct {
	Service  Service  `json:"Service"`
	Backend  Backend  `json:"Backend"`
	Redis    Redis    `json:"Redis"`
	WebRTC   WebRTC   `json:"WebRTC"`
	RehabRTC RehabRTC `json:"RehabRTC"`
}

// Service is where the service's own HTTP API listens.
type Service struct {
	Name      string `json:"name"`       // OpenTera service key, e.g. "VideoRehabService"
	Hostname  string `json:"hostname"`   // "" listens on all interfaces
	Port      int    `json:"port"`       // 1..65535
	DebugMode bool   `json:"debug_mode"` // OpenTera's; accepted and ignored (RehabRTC.log_level decides)
}

// Backend is OpenTera's main server, reached over HTTPS. An empty Hostname
// means there is no OpenTera backend (standalone mode).
type Backend struct {
	Hostname  string `json:"hostname"`
	Port      int    `json:"port"`
	VerifyTLS bool   `json:"verify_tls"` // rehabrtc only; false only for self-signed dev certificates
	CAFile    string `json:"ca_file"`    // rehabrtc only; PEM file of CAs trusted for the main server, besides the system's
}

// Redis is the Redis server. An empty Hostname means Redis is not used.
type Redis struct {
	Hostname string `json:"hostname"`
	Port     int    `json:"port"`
	DB       int    `json:"db"`
	Username string `json:"username"`
	Password string `json:"password"` // secret: prefer REHABRTC_REDIS_PASSWORD
}

// WebRTC describes the public session URLs and the per-session port pool
// [LocalBasePort, LocalBasePort+MaxSessions).
type WebRTC struct {
	Hostname         string `json:"hostname"`          // external host written into session URLs, no scheme or port
	ExternalPort     int    `json:"external_port"`     // external port written into session URLs
	LocalBasePort    int    `json:"local_base_port"`   // first per-session port
	MaxSessions      int    `json:"max_sessions"`      // size of the port pool, 1..10000
	WorkingDirectory string `json:"working_directory"` // cwd of per-session processes; relative to the service's cwd
	Executable       string `json:"executable"`        // per-session program ("" = sessions run in-process)
	Script           string `json:"script"`            // argument given to Executable, e.g. "server.js"
}

// RehabRTC holds the settings OpenTera does not have.
type RehabRTC struct {
	DataDir     string      `json:"data_dir"`     // embedded database and generated keys
	APIKeys     []string    `json:"api_keys"`     // secret: prefer REHABRTC_API_KEYS; empty = generate at first start
	SessionBind string      `json:"session_bind"` // IP literal the per-session listeners bind to
	Gateway     Gateway     `json:"gateway"`
	URLScheme   string      `json:"url_scheme"`  // "", "http" or "https"; see Config.URLScheme
	ICEServers  []ICEServer `json:"ice_servers"` // given to browsers; empty = host candidates only
	LogLevel    string      `json:"log_level"`   // "debug", "info", "warn" or "error"
	LogFormat   string      `json:"log_format"`  // "text" or "json"
	BusyReply   bool        `json:"busy_reply"`
	EHRC        EHRC        `json:"ehrc"` // the EHRC-compatible consultation API
	// PeerRateLimit is each WebSocket client's message budget (docs/protocol.md).
	PeerRateLimit PeerRateLimit `json:"peer_rate_limit"`
	Cluster       Cluster       `json:"cluster"` // several nodes sharing sessions through Redis (docs/scale-out.md)
	TURN          TURN          `json:"turn"`    // the embedded TURN server and external TURN (docs/network.md)
	// PersonalDataDays is how long a stopped session keeps the names and
	// languages of its people (docs/security.md); 0 = purge at once.
	PersonalDataDays int `json:"personal_data_days"`
	// TrustedProxies are the CIDRs of reverse proxies whose
	// X-Forwarded-For (or X-Real-IP) names the client for every
	// per-address limit; empty = trust none (default: loopback).
	TrustedProxies []string `json:"trusted_proxies"`
	// MediaMode is how sessions carry media unless a session (its
	// session_parameters) or its OpenTera session type says otherwise:
	// "mesh" (browser to browser), "sfu" (through the server) or "auto"
	// (the default: mesh at two people, the server from the third).
	MediaMode string `json:"media_mode"`
	SFU       SFU    `json:"sfu"`
}

// Media modes of RehabRTC.media_mode.
const (
	MediaMesh = "mesh"
	MediaSFU  = "sfu"
	MediaAuto = "auto"
)

// The SFU's default media ports: fixed, so that a firewall can be opened
// for them once. Below the kernel's ephemeral range (no outgoing
// connection holds them at start), clear of TURN (3478), the session
// pool (local_base_port, 8080 up) and the relay range (49152 up); LiveKit
// uses the same two for the same purpose, so firewall rules written for
// an SFU often name them already.
const (
	DefaultSFUUDPPort = 7882
	DefaultSFUTCPPort = 7881
)

// SFU is where the server's media sockets listen: every session shares one
// UDP port (ICE UDP mux) and one TCP port (ICE-TCP). Sessions in child
// processes (WebRTC.executable) have no SFU.
type SFU struct {
	Bind    string `json:"bind"`     // IP the media sockets bind to; "" = every interface
	UDPPort int    `json:"udp_port"` // default 7882; 0 = a free port chosen at start (tests)
	TCPPort int    `json:"tcp_port"` // ICE-TCP, for networks that block UDP; default 7881; 0 = a free port
	// NAT1To1IPs are the public addresses announced instead of the host's
	// own, for a cloud host behind 1:1 NAT.
	NAT1To1IPs []string `json:"nat_1to1_ips"`
	// OwnRead makes the SFU read and decrypt publishers' SRTP itself, in
	// front of pion's receive path (fewer CPU-µs per upstream packet);
	// default true. false leaves every publisher on pion's path (publish
	// connections then answer the DTLS role pion picks).
	OwnRead bool `json:"own_read"`
}

// TURN is the embedded TURN server, plus external TURN servers (coturn)
// that share a secret with rehabrtc. Every admitted peer gets short-lived
// credentials for both in its welcome (docs/network.md).
type TURN struct {
	Enabled bool   `json:"enabled"` // false: nothing listens, no embedded TURN credentials are handed out
	Listen  string `json:"listen"`  // host:port of TURN/UDP and TURN/TCP (the same port)
	// Port is the TURN port written into the URLs handed to browsers;
	// 0 = the listen port (set it when a NAT maps another port).
	Port int `json:"port"`
	// RelayIP is the address relayed media comes from, as browsers reach it;
	// "" = the address WebRTC.hostname resolves to.
	RelayIP string `json:"relay_ip"`
	// RelayBind is the local address relay sockets bind to; "" = relay_ip
	// when it is an address of this host, else all interfaces (1:1 NAT).
	RelayBind    string `json:"relay_bind"`
	RelayPortMin int    `json:"relay_port_min"` // relay ports [relay_port_min, relay_port_max]
	RelayPortMax int    `json:"relay_port_max"`
	// GatewayTLS serves TURN over TLS on the gateway's HTTPS port when the
	// gateway serves TLS itself: a TLS connection that speaks STUN goes to TURN.
	GatewayTLS bool   `json:"gateway_tls"`
	TLSListen  string `json:"tls_listen"` // a separate TURNS port (host:port; "" = none), with the gateway's certificate or tls_cert/tls_key
	TLSCert    string `json:"tls_cert"`   // PEM files for tls_listen; empty = the gateway's
	TLSKey     string `json:"tls_key"`
	Realm      string `json:"realm"`
	// CredentialTTL is the lifetime of handed-out credentials in seconds;
	// peers get new ones over their WebSocket before it ends.
	CredentialTTL int `json:"credential_ttl"`
	// MaxLifetime caps an allocation's total lifetime in seconds.
	MaxLifetime   int      `json:"max_lifetime"`
	MaxPerPeer    int      `json:"max_allocations_per_peer"`
	MaxPerSession int      `json:"max_allocations_per_session"`
	AllowPeers    []string `json:"allow_peers"`   // CIDR prefixes a relay may reach although private or loopback
	ReadLoops     int      `json:"read_loops"`    // UDP sockets (and read loops) on the TURN port; 0 = one per CPU
	SocketBuffer  int      `json:"socket_buffer"` // bytes of receive and send buffer per UDP socket; 0 = the kernel's
	External      External `json:"external"`
}

// External lists TURN servers run by the operator (coturn with
// use-auth-secret): rehabrtc mints time-limited credentials for them with
// the shared secret (TURN REST API scheme).
type External struct {
	URLs   StringList `json:"urls"`   // turn: or turns: URLs; empty = none
	Secret string     `json:"secret"` // secret: prefer REHABRTC_TURN_SECRET
}

// PeerRateLimit is a token bucket: Burst messages at once, PerSecond on
// average. A message costs one token plus one per full 16 KiB.
type PeerRateLimit struct {
	PerSecond float64 `json:"messages_per_second"`
	Burst     float64 `json:"burst"`
}

// Defaults of [PeerRateLimit] (the hub's own defaults) and the largest value
// of either field, which means no practical limit (for benchmarks).
const (
	DefaultPeerRatePerSecond = 100
	DefaultPeerRateBurst     = 120
	MaxPeerRate              = 1e9
)

// Gateway is the public listener that routes /rehab/…, /webrtc/{port}/… and
// /websocket/{port}/… (what OpenTera's nginx did).
type Gateway struct {
	Enabled bool   `json:"enabled"`
	Listen  string `json:"listen"`   // host:port; "" = ":" + WebRTC.external_port
	TLSCert string `json:"tls_cert"` // PEM file; set together with TLSKey
	TLSKey  string `json:"tls_key"`  // PEM file; set together with TLSCert
	// Hosts are the public host names the gateway answers besides
	// WebRTC.hostname and loopback; any other Host header gets 421 (the
	// shape of DNS rebinding). Names only: no scheme, no port.
	Hosts []string `json:"hosts"`
}

// DefaultPersonalDataDays and MaxPersonalDataDays bound
// RehabRTC.personal_data_days.
const (
	DefaultPersonalDataDays = 30
	MaxPersonalDataDays     = 3650
)

// PersonalDataRetention is RehabRTC.personal_data_days as a duration.
func (r *RehabRTC) PersonalDataRetention() time.Duration {
	return time.Duration(r.PersonalDataDays) * 24 * time.Hour
}

// ICEServer is one entry of RTCConfiguration.iceServers.
type ICEServer struct {
	URLs       StringList `json:"urls"` // a string or an array of strings in JSON
	Username   string     `json:"username"`
	Credential string     `json:"credential"` // secret
}

// Default returns a new standalone configuration: no Backend, no Redis, the
// gateway enabled on :40075, and OpenTera's values elsewhere.
func Default() *Config {
	return &Config{
		Service: Service{Name: "VideoRehabService", Hostname: "127.0.0.1", Port: 4070},
		Backend: Backend{VerifyTLS: true},
		WebRTC: WebRTC{
			Hostname:      "127.0.0.1",
			ExternalPort:  40075,
			LocalBasePort: 8080,
			MaxSessions:   50,
		},
		RehabRTC: RehabRTC{
			DataDir:     "./rehabrtc-data",
			APIKeys:     []string{},
			SessionBind: "127.0.0.1",
			Gateway:     Gateway{Enabled: true, Listen: ":40075", Hosts: []string{}},
			ICEServers:  []ICEServer{},
			LogLevel:    "info",
			LogFormat:   "text",
			EHRC:        EHRC{AllowedOrigins: []string{}, Compat: EHRCCompat{TrustedBackends: []string{}}},
			PeerRateLimit: PeerRateLimit{
				PerSecond: DefaultPeerRatePerSecond,
				Burst:     DefaultPeerRateBurst,
			},
			Cluster:          DefaultCluster(),
			PersonalDataDays: DefaultPersonalDataDays,
			TURN: TURN{
				Enabled:       true,
				Listen:        ":3478",
				RelayPortMin:  49152,
				RelayPortMax:  65535,
				GatewayTLS:    true,
				Realm:         "rehabrtc",
				CredentialTTL: 600,
				MaxLifetime:   8 * 3600,
				MaxPerPeer:    16,
				MaxPerSession: 128,
				AllowPeers:    []string{},
				SocketBuffer:  4 << 20,
				External:      External{URLs: StringList{}},
			},
			TrustedProxies: []string{"127.0.0.0/8", "::1/128"},
			MediaMode:      MediaAuto,
			SFU:            SFU{UDPPort: DefaultSFUUDPPort, TCPPort: DefaultSFUTCPPort, NAT1To1IPs: []string{}, OwnRead: true},
		},
	}
}

// TrustedProxyPrefixes returns RehabRTC.trusted_proxies parsed and
// masked; Validate has checked them.
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	return prefixes(c.RehabRTC.TrustedProxies)
}

// ServiceAddr is the address the service's HTTP API listens on, e.g.
// "127.0.0.1:4070".
func (c *Config) ServiceAddr() string {
	return net.JoinHostPort(c.Service.Hostname, strconv.Itoa(c.Service.Port))
}

// GatewayAddr is the address the gateway listens on: RehabRTC.gateway.listen,
// or ":" + WebRTC.external_port when that is empty.
func (c *Config) GatewayAddr() string {
	if c.RehabRTC.Gateway.Listen != "" {
		return c.RehabRTC.Gateway.Listen
	}
	return ":" + strconv.Itoa(c.WebRTC.ExternalPort)
}

// GatewayTLS reports whether the gateway serves TLS itself.
func (c *Config) GatewayTLS() bool {
	return c.RehabRTC.Gateway.TLSCert != "" && c.RehabRTC.Gateway.TLSKey != ""
}

// URLScheme is the scheme of the public session URLs: RehabRTC.url_scheme if
// set; otherwise "https" when the gateway serves TLS or is disabled (a proxy
// such as nginx in front terminates TLS), else "http".
func (c *Config) URLScheme() string {
	if c.RehabRTC.URLScheme != "" {
		return c.RehabRTC.URLScheme
	}
	if !c.RehabRTC.Gateway.Enabled || c.GatewayTLS() {
		return "https"
	}
	return "http"
}

// RedisEnabled reports whether a Redis server is configured.
func (c *Config) RedisEnabled() bool { return c.Redis.Hostname != "" }

// BackendEnabled reports whether an OpenTera main server is configured.
func (c *Config) BackendEnabled() bool { return c.Backend.Hostname != "" }
