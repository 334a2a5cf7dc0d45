package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// CheckHost answers 421 Misdirected Request to any request whose Host
// header is not one of names (the public host names: WebRTC.hostname and
// RehabRTC.gateway.hosts) nor a loopback name, before next sees it: a page
// or a WebSocket upgrade reached through a name we do not serve is the
// shape of DNS rebinding, where a hostile page's own name resolves to this
// server. Names compare case-insensitively, without port or trailing dot.
func CheckHost(names []string, next http.Handler) http.Handler {
	allowed := make(map[string]bool, len(names))
	for _, n := range names {
		if n = canonicalHost(n); n != "" {
			allowed[n] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := hostOnly(r.Host)
		if allowed[h] || isLoopback(h) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusMisdirectedRequest)
		w.Write([]byte("421 misdirected request: this server does not answer for that host name " +
			"(see WebRTC.hostname and RehabRTC.gateway.hosts)\n"))
	})
}

// hostOnly is the canonical host of a Host header: without port, brackets
// or trailing dot, lower case; "" when there is none.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return canonicalHost(h)
}

func canonicalHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String()
	}
	return h
}

// isLoopback: "localhost" and loopback IP literals; a client using them is
// on this machine.
func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
