package relay

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/logging"
)

// chanListener is a net.Listener fed by [Server.ShareTLS]: TLS connections
// from the gateway's HTTPS port that speak STUN.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// push hands c to Accept; it closes c if the listener is closed first.
func (l *chanListener) push(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// Bounds on stream (TCP, TLS) connections, which pion/turn would keep
// forever: a connection must send its first bytes within firstRead and
// then some bytes every idleRead (clients refresh allocations, permissions
// and channels every few minutes); a listener holds at most maxConns.
const (
	firstRead = 10 * time.Second
	idleRead  = 15 * time.Minute
	maxConns  = 4096
)

// trackListener remembers the connections it accepted so Close can end
// them (pion/turn keeps serving accepted TCP connections after its
// listener is closed), caps them, and puts read deadlines on them.
type trackListener struct {
	net.Listener
	first  time.Duration
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func track(ln net.Listener, first time.Duration) *trackListener {
	return &trackListener{Listener: ln, first: first, conns: map[*trackedConn]struct{}{}}
}

func (l *trackListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, l: l, next: l.first}
		l.mu.Lock()
		switch {
		case l.closed:
			l.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		case len(l.conns) >= maxConns:
			l.mu.Unlock()
			c.Close() // over the cap: refuse this one, keep serving the others
			continue
		}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

// Close closes the listener and every connection it accepted.
func (l *trackListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[*trackedConn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
	return err
}

type trackedConn struct {
	net.Conn
	l    *trackListener
	once sync.Once
	next time.Duration // read deadline for the next Read; only pion's reader uses it
}

// Read gives the first read firstRead and each later one idleRead.
func (c *trackedConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.next))
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.next = idleRead
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// pionLogs sends pion/turn's warnings and errors to slog, both as
// warnings: they are about one client's connection (a peer that went away
// mid-write), never the service's health. Its debug, trace and info lines
// are dropped: they carry TURN usernames and addresses at a rate set by
// clients.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (pionLogger) Trace(string)                   {}
func (pionLogger) Tracef(string, ...any)          {}
func (pionLogger) Debug(string)                   {}
func (pionLogger) Debugf(string, ...any)          {}
func (pionLogger) Info(string)                    {}
func (pionLogger) Infof(string, ...any)           {}
func (l pionLogger) Warn(msg string)              { l.log.Warn(msg) }
func (l pionLogger) Warnf(f string, args ...any)  { l.log.Warn(fmt.Sprintf(f, args...)) }
func (l pionLogger) Error(msg string)             { l.log.Warn(msg) }
func (l pionLogger) Errorf(f string, args ...any) { l.log.Warn(fmt.Sprintf(f, args...)) }
