package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
)

// FieldError is one invalid setting. Field is "Section.key", with nested
// keys and indexes as in "RehabRTC.ice_servers[0].urls".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Limits checked by Validate.
const (
	MaxSessionsLimit = 10000 // upper bound of WebRTC.max_sessions
	MinAPIKeyLen     = 32    // minimum length of each RehabRTC.api_keys entry
	MaxGatewayHosts  = 64    // entries of RehabRTC.gateway.hosts
	MaxProxies       = 64    // entries of RehabRTC.trusted_proxies
	MaxNAT1To1IPs    = 16    // entries of RehabRTC.sfu.nat_1to1_ips
	MaxStringLen     = 4096  // bytes of any string setting
	MaxListLen       = 256   // entries of any list setting
)

// Validate checks every field and returns all problems at once, joined with
// errors.Join; each is a *FieldError. It does no I/O: files such as
// tls_cert are not opened and working_directory may be relative.
func (c *Config) Validate() error { return errors.Join(c.validate()...) }

func (c *Config) validate() []error {
	var v checker
	v.service(&c.Service)
	v.backend(&c.Backend)
	v.redis(&c.Redis)
	v.webRTC(&c.WebRTC)
	v.rehabRTC(&c.RehabRTC)
	v.portOverlaps(c)
	v.lengths(reflect.ValueOf(c).Elem(), "")
	v.cluster(c)
	return v.errs
}

type checker struct{ errs []error }

func (v *checker) add(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *checker) port(field string, p int) bool {
	if p < 1 || p > 65535 {
		v.add(field, "must be between 1 and 65535 (got %d)", p)
		return false
	}
	return true
}

func (v *checker) host(field, h string) {
	if msg := hostProblem(h); msg != "" {
		v.add(field, "%s (got %q)", msg, h)
	}
}

// hostProblem says what is wrong with a host name or IP literal, or "".
func hostProblem(h string) string {
	switch {
	case h == "":
		return "must not be empty"
	case strings.Contains(h, "://"):
		return "must be a host name or IP address, without scheme"
	case strings.ContainsAny(h, " \t\r\n"):
		return "must not contain spaces"
	case strings.ContainsAny(h, "/?#"):
		return "must be a host name or IP address, without path"
	case strings.HasPrefix(h, "["):
		return "must be written without brackets"
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return ""
	}
	if strings.Contains(h, ":") {
		return "must not include a port"
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._", r)) {
			return fmt.Sprintf("invalid character %q in host name", r)
		}
	}
	return ""
}

func (v *checker) service(s *Service) {
	if strings.TrimSpace(s.Name) == "" {
		v.add("Service.name", "must not be empty")
	}
	if s.Hostname != "" {
		v.host("Service.hostname", s.Hostname)
	}
	v.port("Service.port", s.Port)
}

func (v *checker) backend(b *Backend) {
	switch {
	case b.Hostname != "":
		v.host("Backend.hostname", b.Hostname)
		v.port("Backend.port", b.Port)
	case b.Port != 0:
		v.add("Backend.hostname", "must be set when Backend.port is set (empty means no OpenTera backend)")
	}
	if b.CAFile != "" && !b.VerifyTLS {
		v.add("Backend.ca_file", "has no effect with Backend.verify_tls false: remove one of them")
	}
}

func (v *checker) redis(r *Redis) {
	switch {
	case r.Hostname != "":
		v.host("Redis.hostname", r.Hostname)
		v.port("Redis.port", r.Port)
	case r.Port != 0:
		v.add("Redis.hostname", "must be set when Redis.port is set (empty means no Redis)")
	}
	if r.DB < 0 {
		v.add("Redis.db", "must not be negative (got %d)", r.DB)
	}
}

func (v *checker) webRTC(w *WebRTC) {
	v.host("WebRTC.hostname", w.Hostname)
	v.port("WebRTC.external_port", w.ExternalPort)
	baseOK := v.port("WebRTC.local_base_port", w.LocalBasePort)
	if w.MaxSessions < 1 || w.MaxSessions > MaxSessionsLimit {
		v.add("WebRTC.max_sessions", "must be between 1 and %d (got %d)", MaxSessionsLimit, w.MaxSessions)
	} else if last := w.LocalBasePort + w.MaxSessions - 1; baseOK && last > 65535 {
		v.add("WebRTC.max_sessions", "session ports %d-%d go past 65535", w.LocalBasePort, last)
	}
}

func (v *checker) rehabRTC(r *RehabRTC) {
	if strings.TrimSpace(r.DataDir) == "" {
		v.add("RehabRTC.data_dir", "must not be empty")
	}
	for i, k := range r.APIKeys {
		field := fmt.Sprintf("RehabRTC.api_keys[%d]", i)
		switch {
		case len(k) < MinAPIKeyLen:
			v.add(field, "must be at least %d characters (got %d)", MinAPIKeyLen, len(k))
		case strings.TrimSpace(k) != k:
			v.add(field, "must not begin or end with spaces")
		}
	}
	if _, err := netip.ParseAddr(r.SessionBind); err != nil {
		v.add("RehabRTC.session_bind", "must be an IP address such as 127.0.0.1 (got %q)", r.SessionBind)
	}
	v.gateway(&r.Gateway)
	v.oneOf("RehabRTC.url_scheme", r.URLScheme, "", "http", "https")
	for i, s := range r.ICEServers {
		v.iceServer(fmt.Sprintf("RehabRTC.ice_servers[%d]", i), s)
	}
	v.turn(&r.TURN)
	v.oneOf("RehabRTC.log_level", r.LogLevel, "debug", "info", "warn", "error")
	v.oneOf("RehabRTC.log_format", r.LogFormat, "text", "json")
	if r.PersonalDataDays < 0 || r.PersonalDataDays > MaxPersonalDataDays {
		v.add("RehabRTC.personal_data_days", "must be between 0 and %d (got %d)", MaxPersonalDataDays, r.PersonalDataDays)
	}
	v.ehrc(&r.EHRC)
	if p := r.PeerRateLimit.PerSecond; !(p > 0 && p <= MaxPeerRate) {
		v.add("RehabRTC.peer_rate_limit.messages_per_second", "must be above 0 and at most %g (got %g)", float64(MaxPeerRate), p)
	}
	if b := r.PeerRateLimit.Burst; !(b >= 1 && b <= MaxPeerRate) {
		v.add("RehabRTC.peer_rate_limit.burst", "must be between 1 and %g (got %g)", float64(MaxPeerRate), b)
	}
	v.trustedProxies(r.TrustedProxies)
	v.oneOf("RehabRTC.media_mode", r.MediaMode, MediaMesh, MediaSFU, MediaAuto)
	v.sfu(&r.SFU)
}

// trustedProxies checks RehabRTC.trusted_proxies: CIDRs, and none so wide
// that any client could forward its own address (0.0.0.0/0, ::/0).
func (v *checker) trustedProxies(list []string) {
	const f = "RehabRTC.trusted_proxies"
	if len(list) > MaxProxies {
		v.add(f, "at most %d CIDRs (got %d)", MaxProxies, len(list))
	}
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			v.add(fmt.Sprintf("%s[%d]", f, i), "must be a CIDR such as 10.0.0.5/32 or 127.0.0.0/8 (got %q)", s)
		case p.Bits() == 0:
			v.add(fmt.Sprintf("%s[%d]", f, i), "must not trust every address: list the proxies' own addresses (got %q)", s)
		}
	}
}

func (v *checker) sfu(s *SFU) {
	if s.Bind != "" {
		if _, err := netip.ParseAddr(s.Bind); err != nil {
			v.add("RehabRTC.sfu.bind", "must be an IP address such as 0.0.0.0, or empty for every interface (got %q)", s.Bind)
		}
	}
	for _, f := range []struct {
		name string
		port int
	}{{"RehabRTC.sfu.udp_port", s.UDPPort}, {"RehabRTC.sfu.tcp_port", s.TCPPort}} {
		if f.port < 0 || f.port > 65535 {
			v.add(f.name, "must be between 0 (a free port) and 65535 (got %d)", f.port)
		}
	}
	if len(s.NAT1To1IPs) > MaxNAT1To1IPs {
		v.add("RehabRTC.sfu.nat_1to1_ips", "at most %d addresses (got %d)", MaxNAT1To1IPs, len(s.NAT1To1IPs))
	}
	for i, ip := range s.NAT1To1IPs {
		if a, err := netip.ParseAddr(ip); err != nil || a.Zone() != "" {
			v.add(fmt.Sprintf("RehabRTC.sfu.nat_1to1_ips[%d]", i), "must be an IP address (got %q)", ip)
		}
	}
}

func (v *checker) oneOf(field, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	v.add(field, "must be one of %s (got %q)", strings.Join(quoted, ", "), got)
}

func (v *checker) gateway(g *Gateway) {
	if g.Listen != "" {
		if _, err := listenPort(g.Listen); err != nil {
			v.add("RehabRTC.gateway.listen", "%v", err)
		}
	}
	switch {
	case g.TLSCert != "" && g.TLSKey == "":
		v.add("RehabRTC.gateway.tls_key", "must be set when tls_cert is set")
	case g.TLSCert == "" && g.TLSKey != "":
		v.add("RehabRTC.gateway.tls_cert", "must be set when tls_key is set")
	}
	if len(g.Hosts) > MaxGatewayHosts {
		v.add("RehabRTC.gateway.hosts", "at most %d names (got %d)", MaxGatewayHosts, len(g.Hosts))
	}
	for i, h := range g.Hosts {
		v.host(fmt.Sprintf("RehabRTC.gateway.hosts[%d]", i), h)
	}
}

// listenPort checks a listen address "host:port" and returns its port
// (0 means any free port).
func listenPort(addr string) (int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("must be host:port such as \":40075\" (got %q)", addr)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("port must be a number between 0 and 65535 (got %q)", p)
	}
	if h != "" {
		if msg := hostProblem(h); msg != "" {
			return 0, fmt.Errorf("host %s (got %q)", msg, h)
		}
	}
	return n, nil
}

func (v *checker) iceServer(field string, s ICEServer) {
	if len(s.URLs) == 0 {
		v.add(field+".urls", "must list at least one URL")
	}
	turn := false
	for _, u := range s.URLs {
		scheme, rest, _ := strings.Cut(u, ":")
		switch strings.ToLower(scheme) {
		case "turn", "turns":
			turn = true
		case "stun", "stuns":
		default:
			v.add(field+".urls", "%q must start with stun:, stuns:, turn: or turns:", u)
			continue
		}
		if rest == "" {
			v.add(field+".urls", "%q has no host", u)
		}
	}
	if turn && (s.Username == "" || s.Credential == "") {
		v.add(field, "turn: and turns: URLs need username and credential")
	}
}

// lengths bounds every string (MaxStringLen bytes) and every list
// (MaxListLen entries) of the configuration, so that no setting, however
// it got there, can make the service hold or log megabytes.
func (v *checker) lengths(val reflect.Value, path string) {
	switch val.Kind() {
	case reflect.String:
		if n := val.Len(); n > MaxStringLen {
			v.add(path, "at most %d bytes (got %d)", MaxStringLen, n)
		}
	case reflect.Slice:
		if n := val.Len(); n > MaxListLen {
			v.add(path, "at most %d entries (got %d)", MaxListLen, n)
			return
		}
		for i := range val.Len() {
			v.lengths(val.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Struct:
		for i := range val.NumField() {
			f := val.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			if path != "" {
				name = path + "." + name
			}
			v.lengths(val.Field(i), name)
		}
	}
}

// Bounds of RehabRTC.turn settings.
const (
	MinCredentialTTL = 60            // seconds: renewals need time to arrive
	MaxCredentialTTL = 24 * 3600     // seconds
	MaxTURNLifetime  = 7 * 24 * 3600 // seconds
	MinTURNSecretLen = 32            // characters of the external TURN secret
)

func (v *checker) turn(t *TURN) {
	const f = "RehabRTC.turn."
	if t.Enabled {
		v.turnServer(t)
	}
	v.turnExternal(&t.External)
	if (t.Enabled || len(t.External.URLs) > 0) && (t.CredentialTTL < MinCredentialTTL || t.CredentialTTL > MaxCredentialTTL) {
		v.add(f+"credential_ttl", "must be between %d and %d seconds (got %d)", MinCredentialTTL, MaxCredentialTTL, t.CredentialTTL)
	}
}

func (v *checker) turnServer(t *TURN) {
	const f = "RehabRTC.turn."
	if _, err := listenPort(t.Listen); err != nil || t.Listen == "" {
		v.add(f+"listen", "must be host:port such as \":3478\" (got %q)", t.Listen)
	}
	if t.Port != 0 {
		v.port(f+"port", t.Port)
	}
	if t.TLSListen != "" {
		if _, err := listenPort(t.TLSListen); err != nil {
			v.add(f+"tls_listen", "%v", err)
		}
	}
	switch {
	case (t.TLSCert == "") != (t.TLSKey == ""):
		v.add(f+"tls_cert", "tls_cert and tls_key must be set together")
	}
	if t.RelayIP != "" {
		if a, err := netip.ParseAddr(t.RelayIP); err != nil || a.IsUnspecified() || a.IsMulticast() {
			v.add(f+"relay_ip", "must be a unicast IP address such as 203.0.113.7 (got %q)", t.RelayIP)
		}
	}
	if t.RelayBind != "" {
		if _, err := netip.ParseAddr(t.RelayBind); err != nil {
			v.add(f+"relay_bind", "must be an IP address (got %q)", t.RelayBind)
		}
	}
	if v.port(f+"relay_port_min", t.RelayPortMin) && v.port(f+"relay_port_max", t.RelayPortMax) && t.RelayPortMin > t.RelayPortMax {
		v.add(f+"relay_port_max", "must not be below relay_port_min (%d > %d)", t.RelayPortMin, t.RelayPortMax)
	}
	if strings.TrimSpace(t.Realm) == "" {
		v.add(f+"realm", "must not be empty")
	}
	if t.MaxLifetime < 60 || t.MaxLifetime > MaxTURNLifetime {
		v.add(f+"max_lifetime", "must be between 60 and %d seconds (got %d)", MaxTURNLifetime, t.MaxLifetime)
	}
	if t.MaxPerPeer < 1 {
		v.add(f+"max_allocations_per_peer", "must be at least 1 (got %d)", t.MaxPerPeer)
	}
	if t.MaxPerSession < t.MaxPerPeer {
		v.add(f+"max_allocations_per_session", "must be at least max_allocations_per_peer (got %d)", t.MaxPerSession)
	}
	for i, p := range t.AllowPeers {
		if _, err := netip.ParsePrefix(p); err != nil {
			v.add(fmt.Sprintf(f+"allow_peers[%d]", i), "must be a CIDR prefix such as 10.20.0.0/16 (got %q)", p)
		}
	}
	if t.ReadLoops < 0 || t.ReadLoops > 256 {
		v.add(f+"read_loops", "must be between 0 and 256 (got %d)", t.ReadLoops)
	}
	if t.SocketBuffer < 0 || t.SocketBuffer > 1<<30 {
		v.add(f+"socket_buffer", "must be between 0 and 1073741824 bytes (got %d)", t.SocketBuffer)
	}
}

func (v *checker) turnExternal(e *External) {
	const f = "RehabRTC.turn.external."
	for _, u := range e.URLs {
		scheme, rest, _ := strings.Cut(u, ":")
		if s := strings.ToLower(scheme); (s != "turn" && s != "turns") || rest == "" {
			v.add(f+"urls", "%q must be a turn: or turns: URL with a host", u)
		}
	}
	switch {
	case len(e.URLs) > 0 && len(e.Secret) < MinTURNSecretLen:
		v.add(f+"secret", "must be at least %d characters when urls are set (got %d); set REHABRTC_TURN_SECRET", MinTURNSecretLen, len(e.Secret))
	case len(e.URLs) == 0 && e.Secret != "":
		v.add(f+"urls", "must list the servers the secret is for")
	}
}

// portOverlaps reports listeners whose port falls in the session port pool.
func (v *checker) portOverlaps(c *Config) {
	first, n := c.WebRTC.LocalBasePort, c.WebRTC.MaxSessions
	last := first + n - 1
	in := func(p int) bool { return p >= first && p <= last }
	if n < 1 || first < 1 {
		return
	}
	if in(c.Service.Port) {
		v.add("WebRTC.local_base_port", "session ports %d-%d include Service.port %d", first, last, c.Service.Port)
	}
	if g := c.RehabRTC.Gateway; g.Enabled {
		if p, err := listenPort(c.GatewayAddr()); err == nil && in(p) {
			v.add("WebRTC.local_base_port", "session ports %d-%d include the gateway port %d", first, last, p)
		}
	}
	if t := c.RehabRTC.TURN; t.Enabled {
		if p, err := listenPort(t.Listen); err == nil && in(p) {
			v.add("WebRTC.local_base_port", "session ports %d-%d include the TURN port %d", first, last, p)
		}
	}
}
