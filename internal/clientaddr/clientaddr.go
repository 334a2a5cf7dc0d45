// Package clientaddr decides who the client of an HTTP request is, for
// every per-address limit of the service (API-key backoff, EHRC room
// creation and member caps, pending Engine.IO sessions), by one rule:
//
//   - the TCP peer, unless it is a trusted proxy (RehabRTC.trusted_proxies,
//     loopback by default);
//   - from a trusted proxy, the right-most address of X-Forwarded-For that
//     is not itself a trusted proxy: every hop to its right was added by a
//     proxy we trust, and the hop it names is the first one we cannot vouch
//     for, so a client cannot choose it by sending its own header;
//   - from a trusted proxy that sent no X-Forwarded-For, its X-Real-IP;
//   - otherwise the peer itself.
//
// Without the rule, every client behind OpenTera's nginx shares nginx's
// address, and one flooder locks everyone out.
package clientaddr

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Loopback returns the default trusted proxies: a reverse proxy on this
// machine (deploy/nginx, OpenTera's nginx), and the gateway.
func Loopback() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// maxHops bounds the X-Forwarded-For entries looked at: a longer chain is
// not a real deployment, and the walk must stay cheap whatever is sent.
const maxHops = 32

// Rule decides client addresses. The zero Rule trusts no proxy: the
// client is always the TCP peer.
type Rule struct {
	trusted []netip.Prefix
}

// New returns the rule that trusts the proxies in trusted (nil or empty:
// none).
func New(trusted []netip.Prefix) Rule {
	out := make([]netip.Prefix, 0, len(trusted))
	for _, p := range trusted {
		if p.IsValid() {
			out = append(out, p.Masked())
		}
	}
	return Rule{trusted: out}
}

// Trusted reports whether a is one of the trusted proxies.
func (r Rule) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr is the client address of req; false when even the TCP peer is not
// an IP address (an in-memory test connection, say).
func (r Rule) Addr(req *http.Request) (netip.Addr, bool) {
	peer, ok := parse(hostOf(req.RemoteAddr))
	if !ok || !r.Trusted(peer) {
		return peer, ok
	}
	if hops := req.Header.Values("X-Forwarded-For"); len(hops) > 0 {
		return r.rightmostUntrusted(hops, peer), true
	}
	if real, ok := parse(req.Header.Get("X-Real-IP")); ok {
		return real, true
	}
	return peer, true
}

// String is Addr as text ("" when unknown), the form the limits' hooks
// (socketio.Options.ClientAddress, ehrc.Config.ClientAddress) take.
func (r Rule) String(req *http.Request) string {
	if a, ok := r.Addr(req); ok {
		return a.String()
	}
	return ""
}

// rightmostUntrusted walks the X-Forwarded-For hops (every header line,
// in order) from the right: the first address that is not a trusted proxy
// is the client. An entry that is not an address stops the walk: the
// trusted proxy to its right is then the last hop that can be accounted
// for, and so is the client. So is it when every hop is trusted.
func (r Rule) rightmostUntrusted(lines []string, peer netip.Addr) netip.Addr {
	last := peer
	seen := 0
	for i := len(lines) - 1; i >= 0; i-- {
		hops := strings.Split(lines[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			if seen++; seen > maxHops {
				return last
			}
			a, ok := parse(hops[j])
			if !ok {
				return last
			}
			if !r.Trusted(a) {
				return a
			}
			last = a
		}
	}
	return last
}

// hostOf is the host part of a RemoteAddr ("ip:port"; a bare IP is kept).
func hostOf(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// parse reads one address as headers carry it: spaces around, IPv6 in
// brackets or not, with a port or not (some proxies add one); zones and
// IPv4-mapped forms are dropped so that one host is one address.
func parse(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		s = ap.Addr().String()
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
