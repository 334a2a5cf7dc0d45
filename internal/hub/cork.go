package hub

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// corkConn lets the writer send a burst of frames in one write to the
// socket: coder/websocket flushes every message, so while the writer holds
// the connection corked, what it flushes is gathered, and uncork writes it
// all at once. Writes from other goroutines (pongs, pings, close frames)
// go through in order, gathered too while corked. Kept because the relay
// benchmark (W4) needs it: docs/performance.md.
type corkConn struct {
	net.Conn
	timeout time.Duration // write deadline of one gathered write
	bufs    *sync.Pool    // *[]byte gathering buffers, shared by the hub's peers

	// timedOut is set once a gathered write outlasted the deadline: the
	// writer's error may no longer say so (coder/websocket reports
	// net.ErrClosed when the connection was closed meanwhile).
	timedOut atomic.Bool

	mu     sync.Mutex // guards the following; held while writing to Conn
	corked bool
	buf    *[]byte // from bufs while gathering; nil otherwise, so idle peers hold none
}

// maxCork bounds what is gathered before it is written anyway.
const maxCork = 64 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf, _ = c.bufs.Get().(*[]byte)
		if c.buf == nil {
			c.buf = new([]byte)
		}
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= maxCork {
		return len(p), c.flushLocked()
	}
	return len(p), nil
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was gathered, under the write deadline.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	b := c.buf
	if b == nil {
		return nil
	}
	c.buf = nil
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.Conn.Write(*b)
	_ = c.Conn.SetWriteDeadline(time.Time{})
	if cap(*b) <= 2*maxCork {
		*b = (*b)[:0]
		c.bufs.Put(b)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.timedOut.Store(true)
		return errWriteTimeout
	}
	return err
}

// Buffer sizes of connections upgraded by ServeHTTP. net/http hands a
// hijacked connection 4 KiB read and write buffers, kept for the life of
// the connection; an idle peer needs far less. Larger frames bypass them,
// and the corkConn gathers each burst whatever the write buffer's size.
const (
	upgradeReadBuf  = 1 << 10
	upgradeWriteBuf = 512
)

// corkHijacker hands coder/websocket's Accept the connection wrapped in a
// corkConn, with small buffers.
type corkHijacker struct {
	http.ResponseWriter
	cork *corkConn
}

func (h corkHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func (h corkHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil { // the 101 response
		return nil, nil, err
	}
	h.cork.Conn = c
	r := brw.Reader
	if n := r.Buffered(); n <= upgradeReadBuf {
		// Keep what the client sent right after the handshake (e.g. its
		// join) buffered in the new reader, where coder/websocket looks.
		early, _ := r.Peek(n)
		r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), c), upgradeReadBuf)
		if _, err := r.Peek(n); err != nil {
			return nil, nil, err
		}
	}
	return c, bufio.NewReadWriter(r, bufio.NewWriterSize(h.cork, upgradeWriteBuf)), nil
}
