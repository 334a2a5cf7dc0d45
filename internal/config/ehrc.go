package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// EHRC configures the EHRC-compatible consultation API (docs/ehrc.md).
type EHRC struct {
	// AllowedOrigins are the browser origins ("https://app.example.org")
	// of EHRC apps served from elsewhere: CORS and WebSocket upgrades.
	// Empty = same origin only.
	AllowedOrigins []string   `json:"allowed_origins"`
	Compat         EHRCCompat `json:"compat"`
}

// EHRCCompat lets an unchanged EHRC backend and app work, with weaker
// checks that serve warns about at start-up.
type EHRCCompat struct {
	Enabled bool `json:"enabled"`
	// TrustedBackends are CIDRs ("10.0.0.5/32") from which namespaces are
	// created and removed without the API key.
	TrustedBackends []string `json:"trusted_backends"`
}

// MaxOrigins bounds RehabRTC.ehrc.allowed_origins and
// RehabRTC.ehrc.compat.trusted_backends.
const MaxOrigins = 64

// TrustedPrefixes returns compat.trusted_backends parsed; Validate has
// checked them.
func (e *EHRC) TrustedPrefixes() []netip.Prefix { return prefixes(e.Compat.TrustedBackends) }

// prefixes parses CIDRs, masked, skipping any that do not parse.
func prefixes(cidrs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range cidrs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

func (v *checker) ehrc(e *EHRC) {
	const f = "RehabRTC.ehrc."
	if len(e.AllowedOrigins) > MaxOrigins {
		v.add(f+"allowed_origins", "at most %d origins (got %d)", MaxOrigins, len(e.AllowedOrigins))
	}
	for i, o := range e.AllowedOrigins {
		if msg := originProblem(o); msg != "" {
			v.add(fmt.Sprintf("%sallowed_origins[%d]", f, i), "%s (got %q)", msg, o)
		}
	}
	c := &e.Compat
	if len(c.TrustedBackends) > MaxOrigins {
		v.add(f+"compat.trusted_backends", "at most %d CIDRs (got %d)", MaxOrigins, len(c.TrustedBackends))
	}
	for i, s := range c.TrustedBackends {
		if _, err := netip.ParsePrefix(s); err != nil {
			v.add(fmt.Sprintf("%scompat.trusted_backends[%d]", f, i), "must be a CIDR such as 10.0.0.5/32 (got %q)", s)
		}
	}
	if c.Enabled && len(c.TrustedBackends) == 0 && len(e.AllowedOrigins) == 0 {
		v.add(f+"compat.enabled", "needs compat.trusted_backends (the EHRC backend's addresses) or allowed_origins (the EHRC app's origins)")
	}
}

// originProblem says what is wrong with a browser origin, or "": scheme
// http or https, a host, an optional port, nothing else, no wildcard.
func originProblem(o string) string {
	u, err := url.Parse(o)
	switch {
	case err != nil || u.Scheme == "" || u.Host == "":
		return "must be an origin such as https://app.example.org"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must start with http:// or https://"
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#"):
		return "must be scheme://host[:port] only, without path, query or trailing slash"
	case strings.ContainsAny(u.Host, "*?[]\\") && !strings.HasPrefix(u.Host, "["):
		return "must not contain wildcards: list each origin"
	case u.Scheme+"://"+u.Host != o:
		return "must be written scheme://host[:port] in lower-case scheme"
	}
	return ""
}
