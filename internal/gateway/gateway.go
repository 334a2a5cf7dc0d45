// Package gateway is the public entry point on WebRTC.external_port. It does
// what OpenTera's nginx rules did, without the hard-coded port regex:
// /rehab/… goes to the service, /webrtc/{port}/… and /websocket/{port}/… go
// to that session: straight to its handler when it runs in this process,
// through a reverse proxy to its port otherwise. Handlers mounted with
// [Gateway.Mount] (the EHRC consultation API) take their paths first.
package gateway

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/rehabrtc/rehabrtc/internal/web"
)

// Sessions finds the handler of the session on a port. ok is false when no
// session runs there; a nil handler with ok means "proxy to the port".
type Sessions interface {
	Handler(port int) (h http.Handler, ok bool)
}

// Homes finds the node that serves a session port when it is not this
// one (a cluster). addr is that node's internal host:port; moving means a
// lost node held it and its session is being restored elsewhere.
type Homes interface {
	Home(ctx context.Context, port int) (addr string, moving bool, err error)
}

// Gateway routes public requests.
type Gateway struct {
	service   http.Handler
	sessions  Sessions
	homes     Homes        // nil: a single node
	proxied   *ProxyCounts // nil: not counted
	proxyHost string
	mounts    []mount
}

// WithHomes makes the gateway proxy a session that runs on another node of
// the cluster to that node's internal address, path unchanged; the home
// checks the key. Call it before serving.
func (g *Gateway) WithHomes(h Homes) *Gateway {
	g.homes = h
	return g
}

// mount is a handler for the paths its match accepts.
type mount struct {
	match func(path string) bool
	h     http.Handler
}

// Mount sends the requests whose path match accepts to h, unchanged and
// before the built-in routes: the EHRC API answers at root paths of its
// own (/api/create-room, /create-room, /socket.io/, /ehrc/ws/…), as EHRC
// apps expect. Call it before serving.
func (g *Gateway) Mount(match func(path string) bool, h http.Handler) {
	g.mounts = append(g.mounts, mount{match, h})
}

// New returns a gateway. proxyHost is where out-of-process sessions listen
// (their ports on that host).
func New(service http.Handler, sessions Sessions, proxyHost string) *Gateway {
	return &Gateway{service: service, sessions: sessions, proxyHost: proxyHost}
}

// Prefer sends the requests whose path match accepts to h, unchanged, and
// every other request to next: what Mount does on the public port, for
// another listener (the service port serves the EHRC paths too).
func Prefer(match func(path string) bool, h, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if match(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	for _, m := range g.mounts {
		if m.match(p) {
			m.h.ServeHTTP(w, r)
			return
		}
	}
	switch {
	case p == "/" || p == "/rehab":
		http.Redirect(w, r, "/rehab/", http.StatusFound)
	case strings.HasPrefix(p, "/rehab/"):
		g.toService(w, r)
	case strings.HasPrefix(p, "/webrtc/"):
		g.toSession(w, r, "/webrtc/", true)
	case strings.HasPrefix(p, "/websocket/"):
		g.toSession(w, r, "/websocket/", false)
	default:
		web.SecurityHeaders(http.NotFoundHandler()).ServeHTTP(w, r)
	}
}

// toService strips /rehab. Metrics stay on the service port (loopback):
// they are not for the public.
func (g *Gateway) toService(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/rehab")
	if rest == "/metrics" {
		web.SecurityHeaders(http.NotFoundHandler()).ServeHTTP(w, r)
		return
	}
	serveWithPath(g.service, w, r, rest)
}

// toSession sends /webrtc/{port}/x to the session as /x, and
// /websocket/{port}/x unchanged (nginx's rules do the same).
func (g *Gateway) toSession(w http.ResponseWriter, r *http.Request, prefix string, strip bool) {
	portStr, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, prefix), "/")
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		web.SecurityHeaders(http.NotFoundHandler()).ServeHTTP(w, r)
		return
	}
	h, ok := g.sessions.Handler(port)
	if !ok && g.homes != nil {
		g.toHome(w, r, port, rest)
		return
	}
	if !ok {
		noSession(w, r, rest)
		return
	}
	path := r.URL.Path
	if strip {
		path = "/" + rest
	}
	if h == nil {
		g.proxy(port).ServeHTTP(w, withPath(r, path))
		return
	}
	serveWithPath(h, w, r, path)
}

// noSession answers for a port where nothing runs: a page link gets the
// plain-words 403 page (the link is dead), anything else a 404.
func noSession(w http.ResponseWriter, r *http.Request, rest string) {
	switch rest {
	case "users", "participants", "devices":
		web.SecurityHeaders(http.HandlerFunc(web.Denied)).ServeHTTP(w, r)
	case "status":
		web.DeniedStatus(w)
	default:
		web.SecurityHeaders(http.NotFoundHandler()).ServeHTTP(w, r)
	}
}

// toHome proxies a request for a session another node serves to that
// node, unchanged (its internal listener routes it as this gateway would).
// While the session moves after its node's loss, the answer is 503 with
// Retry-After: pages retry and land on the new home.
func (g *Gateway) toHome(w http.ResponseWriter, r *http.Request, port int, rest string) {
	addr, moving, err := g.homes.Home(r.Context(), port)
	switch {
	case err != nil || moving:
		w.Header().Set("Retry-After", "1")
		web.SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "session is moving to another server, try again in a moment", http.StatusServiceUnavailable)
		})).ServeHTTP(w, r)
	case addr == "":
		noSession(w, r, rest)
	default:
		g.proxied.Count(r)
		target := &url.URL{Scheme: "http", Host: addr}
		(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			// The Host the browser used, not the node's internal address:
			// the home's same-origin check of a WebSocket compares the
			// page's Origin with it (a browser's upgrade got 403 otherwise).
			pr.Out.Host = pr.In.Host
		}}).ServeHTTP(w, r)
	}
}

func (g *Gateway) proxy(port int) http.Handler {
	target := &url.URL{Scheme: "http", Host: net.JoinHostPort(g.proxyHost, strconv.Itoa(port))}
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.SetXForwarded()
	}}
}

func serveWithPath(h http.Handler, w http.ResponseWriter, r *http.Request, path string) {
	h.ServeHTTP(w, withPath(r, path))
}

func withPath(r *http.Request, path string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = path, ""
	r2.URL = &u
	return r2
}
