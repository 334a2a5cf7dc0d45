package hub

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// ServeHTTP upgrades r to a WebSocket (same origin only, no compression)
// and serves the connection in a goroutine of the hub, then returns, so
// that net/http frees the request, its buffers and the handler's deep stack,
// which would otherwise stay with every idle peer (docs/performance.md, W3).
// [Hub.Close] waits for that goroutine. The client address
// (Config.ClientAddress) counts against the per-address cap on connections
// that have not joined yet.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, cork, err := h.upgrade(w, r, nil)
	if err != nil {
		return // Accept has answered the client
	}
	// The request context ends when this handler returns: the hub closes
	// the connection itself when the session ends.
	ctx := context.WithoutCancel(r.Context())
	p, err := h.open(c, h.clientKey(r), cork)
	if err != nil {
		return // refused, and told why
	}
	go func() { // tracked since open: Close waits for it
		if err := h.run(ctx, p); err != nil {
			h.log.Debug("connection ended", logKeyErr, err)
		}
	}()
}

// ServeRequest is ServeHTTP for a caller that needs its own accept options
// or client address, or must know when the connection ends: it upgrades r
// with opts (nil: same origin only, no compression), counts the connection
// under addr for the per-address cap on connections that have not joined
// yet ("" = the total cap only), and serves it with ServeHTTP's corked
// writes, in the caller's goroutine. It returns what Serve returns, once
// the connection has ended, or nil if the upgrade failed (Accept has then
// answered the client).
func (h *Hub) ServeRequest(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions, addr string) error {
	c, cork, err := h.upgrade(w, r, opts)
	if err != nil {
		return nil
	}
	return h.serve(r.Context(), c, addr, cork)
}

// upgrade is websocket.Accept through a corkConn.
func (h *Hub) upgrade(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) (*websocket.Conn, *corkConn, error) {
	cork := &corkConn{timeout: h.cfg.WriteTimeout, bufs: &h.corkBufs}
	c, err := websocket.Accept(corkHijacker{w, cork}, r, opts)
	return c, cork, err
}

// Accept upgrades r like websocket.Accept with default options (same origin
// only, no compression), for a caller that then calls Serve. Prefer
// ServeHTTP or ServeRequest, which also apply the per-address cap and cork
// writes.
func (h *Hub) Accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	return websocket.Accept(w, r, nil)
}

// Serve runs one client connection until it ends, and returns only when
// every goroutine it started is done. ctx is the request context: Admit gets
// it (cancelled early if the connection ends), and when it ends the
// connection is closed with 1001. Serve owns c and always closes it. The
// connection counts against the total cap on connections that have not
// joined yet, not against a per-address one (use ServeHTTP for that).
//
// The returned error is for the caller's logs; the client has already been
// told what went wrong. It is nil for normal ends (the client left, Kick,
// Close, a newer connection replacing this one), ErrClosed if the hub was
// closed, a websocket.CloseError for the faults that close the connection
// with a code (websocket.CloseStatus reads it), or the read error of a
// connection that broke.
func (h *Hub) Serve(ctx context.Context, c *websocket.Conn) error {
	return h.serve(ctx, c, "", nil)
}

// serve runs c; cork is nil unless c comes from upgrade.
func (h *Hub) serve(ctx context.Context, c *websocket.Conn, addr string, cork *corkConn) error {
	p, err := h.open(c, addr, cork)
	if err != nil {
		return err
	}
	return h.run(ctx, p)
}

// open makes the peer of c and tracks it, or refuses c when the hub is
// closed or too many connections are pending.
func (h *Hub) open(c *websocket.Conn, addr string, cork *corkConn) (*peer, error) {
	p := newPeer(h, c, addr)
	p.cork = cork
	if end, ok := h.track(p); !ok {
		h.refuse(c, end)
		if end.fault {
			return nil, end.err()
		}
		return nil, ErrClosed
	}
	return p, nil
}

// run serves a tracked peer until its connection ends.
func (h *Hub) run(ctx context.Context, p *peer) error {
	defer h.untrack(p)
	p.conn.SetReadLimit(MaxFrame)

	var wg sync.WaitGroup
	wg.Go(p.writeLoop)
	stopWatch := p.watchContext(ctx, &wg)
	readErr := p.readLoop(ctx)
	h.leave(p)
	if p.joined {
		h.mediaLeft(p)
	}
	p.shutdown(endReadDone) // no-op if the hub ended it first
	if p.joined && h.cfg.Policy != nil {
		h.cfg.Policy.Left(Peer{p})
	}
	stopWatch()
	wg.Wait() // the writer, and the context watcher if it ran

	end := p.ending()
	if p.joined {
		p.log().Info("peer left", logKeyClose, end.reason, logKeyErr, readErr)
		if h.cfg.Observer != nil {
			h.cfg.Observer.PeerLeft(p.info)
		}
	}
	switch {
	case end.fault:
		return end.err()
	case end.client:
		return normalEnd(readErr)
	}
	return nil
}

// watchContext closes the connection with 1001 when ctx ends. The returned
// stop function must be called before waiting on wg.
func (p *peer) watchContext(ctx context.Context, wg *sync.WaitGroup) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	wg.Add(1) // held until the function has run or can no longer run
	stopFunc := context.AfterFunc(ctx, func() {
		defer wg.Done()
		p.shutdown(endGoingAway)
	})
	return func() {
		if stopFunc() {
			wg.Done()
		}
	}
}

// normalEnd hides the errors that mean the client simply went away.
func normalEnd(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return nil
	}
	return err
}

// refuse answers a connection that is not served: the hub is closed or too
// many connections wait to join. No writer runs, so Serve's goroutine writes.
func (h *Hub) refuse(c *websocket.Conn, end ending) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.WriteTimeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, end.notice); err != nil {
		_ = c.CloseNow()
		return
	}
	_ = c.Close(end.code, end.reason)
}

// readLoop is the connection's only reader. It returns the error that ended
// reading: the client closed, the connection broke, or the writer closed it.
func (p *peer) readLoop(ctx context.Context) error {
	for {
		// A context that is never cancelled: the writer unblocks the read by
		// closing the connection.
		typ, r, err := p.conn.Reader(context.Background())
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			p.shutdown(endBinary)
			return errors.New("binary frame")
		}
		// A buffer from the hub's pool per message: no garbage per message,
		// and an idle peer holds none.
		bp := p.hub.readBuf()
		*bp, err = readAll(r, (*bp)[:0])
		if err == nil {
			p.handle(ctx, *bp)
		}
		if cap(*bp) <= MaxFrame {
			p.hub.readBufs.Put(bp)
		}
		if errors.Is(err, websocket.ErrMessageTooBig) {
			p.shutdown(endTooBig) // coder/websocket has already sent 1009
		}
		if err != nil {
			return err
		}
	}
}

// readAll reads one message into buf, growing it as needed.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func (h *Hub) readBuf() *[]byte {
	if bp, ok := h.readBufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 2048) // fits ICE candidates and small SDP
	return &b
}

// clientKey is the key under which the per-address cap counts r:
// Config.ClientAddress, an IPv6 address by its /64.
func (h *Hub) clientKey(r *http.Request) string {
	if h.cfg.ClientAddress == nil {
		return clientAddr(r)
	}
	a := h.cfg.ClientAddress(r)
	ip, err := netip.ParseAddr(a)
	if err != nil {
		return a
	}
	if ip = ip.Unmap(); ip.Is6() && !ip.IsLoopback() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}

// clientAddr is the address a request comes from, as the per-address cap
// counts it: the host of RemoteAddr or, when that is a loopback address
// (the gateway, or nginx on the same host), the last X-Forwarded-For hop,
// which that proxy wrote. A loopback request without one gets "", which
// only the total cap counts: a local proxy that does not say who its
// clients are must not put them all under one address's cap. IPv6
// addresses count per /64, what one subscriber usually gets.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if ip.IsLoopback() {
		ip = netip.Addr{}
		if hops := r.Header.Values("X-Forwarded-For"); len(hops) > 0 {
			last := hops[len(hops)-1]
			ip, _ = netip.ParseAddr(strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:]))
		}
		if !ip.IsValid() {
			return ""
		}
	}
	ip = ip.Unmap()
	if ip.Is6() && !ip.IsLoopback() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}
