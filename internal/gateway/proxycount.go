package gateway

import (
	"net/http"
	"strings"
	"sync/atomic"
)

// ProxyCounts counts the requests and WebSockets proxied to another node
// of a cluster (for the node's metrics).
type ProxyCounts struct {
	Requests, WebSockets atomic.Int64
}

// Count counts r, a WebSocket upgrade or a plain request; nil counts
// nothing.
func (c *ProxyCounts) Count(r *http.Request) {
	if c == nil {
		return
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		c.WebSockets.Add(1)
		return
	}
	c.Requests.Add(1)
}

// CountProxied makes the gateway count in c what it proxies to other
// nodes. Call it before serving.
func (g *Gateway) CountProxied(c *ProxyCounts) *Gateway {
	g.proxied = c
	return g
}
