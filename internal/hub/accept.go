package hub

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// Buffer sizes of connections upgraded by [Hub.Accept]. net/http hands a
// hijacked connection 4 KiB read and write buffers, kept for the life of
// the connection; an idle peer needs far less. Reads of frames larger
// than the read buffer go straight to the message buffer, and every batch
// of writes is gathered by the coalescer whatever the write buffer size.
const (
	acceptReadBuf  = 1 << 10
	acceptWriteBuf = 512
)

// Accept upgrades r to a WebSocket like websocket.Accept with default
// options (same origin only, no compression) and prepares the connection
// for [Hub.Serve]: each batch of queued frames is then written to the
// socket in one write instead of one per frame, and the connection keeps
// small buffers. The result must be passed to Serve, which may run in a
// goroutine of its own: once Accept has returned, the handler can return
// and let net/http free the request (use a context that the end of the
// request does not cancel, e.g. context.WithoutCancel(r.Context())).
func (h *Hub) Accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	co := new(coalescer)
	c, err := websocket.Accept(hijacker{w, co}, r, nil)
	if err != nil {
		return nil, err // Accept has answered the client
	}
	h.accepted.Store(c, co)
	return c, nil
}

// takeCoalescer returns the coalescer of a connection from Accept, or nil.
func (h *Hub) takeCoalescer(c *websocket.Conn) *coalescer {
	if co, ok := h.accepted.LoadAndDelete(c); ok {
		return co.(*coalescer)
	}
	return nil
}

// hijacker gives coder/websocket small buffers that write through the
// coalescer.
type hijacker struct {
	http.ResponseWriter
	co *coalescer
}

func (h hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		return nil, nil, err
	}
	h.co.conn = c
	w := bufio.NewWriterSize(h.co, acceptWriteBuf)
	r := brw.Reader
	if n := r.Buffered(); n <= acceptReadBuf {
		// Keep what the client sent after the handshake (e.g. its join):
		// copy it into the new reader's buffer before handing it over.
		b, _ := r.Peek(n)
		early := bytes.Clone(b)
		r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(early), c), acceptReadBuf)
		if n > 0 {
			if _, err := r.Peek(n); err != nil {
				return nil, nil, err
			}
		}
	}
	return c, bufio.NewReadWriter(r, w), nil
}

// coalescer sits between coder/websocket's buffered writer and the socket.
// While the writer holds it, around a batch, what coder/websocket flushes
// is gathered instead of written, and release writes it all at once.
// Otherwise (pongs, pings and close frames written by other goroutines)
// writes go straight through; either way they keep their order. The
// gathering buffer comes from a pool and goes back after each batch, so an
// idle peer holds none.
type coalescer struct {
	conn net.Conn
	mu   sync.Mutex // guards the following; held while writing to conn
	held bool
	buf  *[]byte
}

// maxCoalesce bounds what is gathered before it is written anyway.
const maxCoalesce = 64 << 10

var coalescePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4<<10)
	return &b
}}

func (co *coalescer) Write(p []byte) (int, error) {
	co.mu.Lock()
	defer co.mu.Unlock()
	if !co.held {
		return co.conn.Write(p)
	}
	if co.buf == nil {
		co.buf = coalescePool.Get().(*[]byte)
	}
	*co.buf = append(*co.buf, p...)
	if len(*co.buf) >= maxCoalesce {
		return len(p), co.flushLocked()
	}
	return len(p), nil
}

// hold starts gathering.
func (co *coalescer) hold() {
	co.mu.Lock()
	co.held = true
	co.mu.Unlock()
}

// release writes what was gathered and stops gathering.
func (co *coalescer) release() error {
	co.mu.Lock()
	defer co.mu.Unlock()
	co.held = false
	return co.flushLocked()
}

func (co *coalescer) flushLocked() error {
	b := co.buf
	if b == nil {
		return nil
	}
	co.buf = nil
	_, err := co.conn.Write(*b)
	if cap(*b) <= maxCoalesce+maxCoalesce/2 {
		*b = (*b)[:0]
		coalescePool.Put(b)
	}
	return err
}
