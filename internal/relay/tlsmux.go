package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// handshakeTimeout bounds a TLS handshake plus the first bytes after it.
const handshakeTimeout = 10 * time.Second

// stunCookie is the magic cookie at bytes 4..8 of every STUN message.
const stunCookie = 0x2112A442

// isSTUN reports whether b (at least 8 bytes) starts a STUN message: the
// two top bits are zero and the magic cookie follows the length. An HTTP
// request starts with a method name in ASCII letters, never like this.
func isSTUN(b []byte) bool {
	return len(b) >= 8 && b[0]&0xC0 == 0 && binary.BigEndian.Uint32(b[4:8]) == stunCookie
}

// ShareTLS serves TURN over TLS on ln, the gateway's HTTPS listener: it
// terminates TLS with conf, reads the first 8 bytes, and hands a
// connection that speaks STUN to the TURN server and any other to the
// returned listener, for the HTTP server (as plain connections: TLS is
// already done). The server must have been made with Config.SharedTLS.
// HTTP/2 is not offered on a shared port (the HTTP server only negotiates
// it on a *tls.Conn); conf.NextProtos should be http/1.1 only.
// Closing the returned listener closes ln; Close of the Server waits for
// the goroutines.
func (s *Server) ShareTLS(ln net.Listener, conf *tls.Config) (net.Listener, error) {
	if s.shared == nil {
		return nil, fmt.Errorf("relay: ShareTLS needs Config.SharedTLS")
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &tlsMux{raw: ln, conf: conf, turn: s.shared, http: newChanListener(ln.Addr()), ctx: ctx, cancel: cancel}
	s.muxMu.Lock()
	s.muxes = append(s.muxes, m)
	s.muxMu.Unlock()
	s.wg.Go(func() { m.acceptLoop(&s.wg) })
	return m, nil
}

// tlsMux sorts the connections of one TLS listener between TURN and HTTP.
type tlsMux struct {
	raw    net.Listener
	conf   *tls.Config
	turn   *chanListener
	http   *chanListener
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

func (m *tlsMux) acceptLoop(wg *sync.WaitGroup) {
	defer m.Close()
	for {
		c, err := m.raw.Accept()
		if err != nil {
			return
		}
		wg.Go(func() { m.sort(c) })
	}
}

// sort hand-shakes and peeks at one connection.
func (m *tlsMux) sort(c net.Conn) {
	tc := tls.Server(c, m.conf)
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(m.ctx, func() { c.Close() })
	var head [8]byte
	_, err := io.ReadFull(tc, head[:]) // hand-shakes first
	stop()
	if err != nil {
		tc.Close()
		return
	}
	c.SetDeadline(time.Time{})
	pc := &peekedConn{Conn: tc, r: io.MultiReader(bytes.NewReader(head[:]), tc)}
	if isSTUN(head[:]) {
		m.turn.push(pc)
		return
	}
	m.http.push(pc)
}

// Accept returns the next HTTP connection.
func (m *tlsMux) Accept() (net.Conn, error) { return m.http.Accept() }

// Close stops accepting, on both sides of the mux.
func (m *tlsMux) Close() error {
	var err error
	m.once.Do(func() {
		m.cancel()
		err = m.raw.Close()
		m.http.Close()
	})
	return err
}

func (m *tlsMux) Addr() net.Addr { return m.raw.Addr() }

// peekedConn replays the bytes read to sort the connection.
type peekedConn struct {
	net.Conn
	r io.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
