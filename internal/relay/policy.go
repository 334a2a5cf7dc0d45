package relay

import (
	"net"
	"net/netip"
)

// peerPolicy decides which peer addresses a relay may reach: not the
// service's own networks (loopback, private, link-local, CGNAT), nor
// multicast, broadcast or unspecified addresses, so the relay cannot be
// used to scan or reach what sits behind it. The relay's own address is
// allowed (two relayed browsers meet there), and so is the allow list.
type peerPolicy struct {
	relay netip.Addr
	allow []netip.Prefix
}

// refused are ranges that netip's predicates do not cover.
var refused = [...]netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64 (RFC 8215)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("::ffff:0:0:0/96"), // SIIT
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds any IPv4 address
	netip.MustParsePrefix("2001::/32"),       // Teredo: embeds any IPv4 address
	netip.MustParsePrefix("::/128"),          // unspecified (also IsUnspecified)
}

// nat64 is the well-known NAT64 prefix: the IPv4 address it embeds decides.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// allowed reports whether the relay may exchange packets with ip.
func (p *peerPolicy) allowed(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	if a == p.relay {
		return true
	}
	for _, pre := range p.allow {
		if pre.Contains(a) {
			return true
		}
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() ||
		a.IsInterfaceLocalMulticast() || a.IsLinkLocalMulticast() {
		return false
	}
	for _, pre := range refused {
		if pre.Contains(a) {
			return false
		}
	}
	return true
}
